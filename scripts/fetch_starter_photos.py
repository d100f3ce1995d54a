#!/usr/bin/env python3
"""Gather the photos the starter model is trained on, from package registries only.

Writes the photos into OUT (default data/photos, gitignored) plus OUT/SOURCES.json, which
records for every photo its package, upstream file, author and licence (copied into the
model card). Sources:
- scikit-image's bundled sample photos (skimage.data; already installed with the dev extras);
- scikit-learn's bundled sample images (sklearn.datasets.load_sample_image);
- Debian's `mate-backgrounds` package (nature photographs, GPL-2+), and the photographs among
  Debian's `lomiri-wallpapers-16.04` / `lomiri-wallpapers-20.04` (CC BY / CC BY-SA / CC0, per
  debian/copyright) and `plasma-workspace-wallpapers` (LGPL-3, per each wallpaper's
  metadata.json), fetched with `apt-get download` and unpacked with `dpkg -x` (no root needed);
- the photographs inside the puzzles of Debian's `jigzo-data` (GPL-2+ / GPL-2, per debian/copyright;
  the one CC BY-NC-SA photo is left out) and the photographs among OpenCV's sample images in Debian's
  `opencv-doc` (Apache-2.0 AND BSD-3-Clause, per debian/copyright; test charts, drawings, a painting, a
  press photo, a face and an image that is itself an edited sample are left out).
  The illustrations and renders in those packages are left out: the model is about photographs.
  Photos larger than 2048 px are downscaled (area filter) and stored as PNG: synthesis takes
  512-px crops at 0.5-1x scale, and a crop of a 5000-px photo would show only a featureless
  patch of it.

Usage: python scripts/fetch_starter_photos.py [--out data/photos] [--deb-cache data/debs]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
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
    with _unpacked_deb(MATE_PACKAGE, deb_cache, out) as (root, version, _):
        nature = root / "usr/share/backgrounds/mate/nature"
        for name, holders in MATE_NATURE.items():
            target = f"mate_{name}"
            shutil.copyfile(nature / name, out / target)
            sources[target] = {
                "package": f"Debian {MATE_PACKAGE} {version}", "upstream": f"/usr/share/backgrounds/mate/nature/{name}",
                "author": holders, "licence": "GPL-2+ (per debian/copyright)",
            }


LOMIRI_PACKAGES = {
    # package: {photo file in /usr/share/backgrounds: short name}; authors and licences are read
    # from the package's debian/copyright (DEP-5) so they cannot drift from what Debian ships.
    "lomiri-wallpapers-16.04": {
        "Bridge_by_Sander_Klootwijk.jpg": "Bridge", "Dragonfly_by_Bolly.jpg": "Dragonfly",
        "Picture_0B_by_freespace.jpg": "Fig", "Picture_1A_by_freespace.jpg": "Brushes",
        "Wine_by_Jakkub_Mede.jpg": "Wine", "aitzgorri_by_Aitzol_Berasategi.jpg": "Aitzgorri",
        "friends_by_Aitzol_Berasategi.jpg": "Friends", "greentock_by_Peter_Nerlich.jpg": "Greentock",
        "life_by_Aitzol_Berasategi.jpg": "Life", "picosdeeuropa_by_Aitzol_Berasategi.jpg": "PicosDeEuropa",
        "seeding_by_Clements_Engelhardt.jpg": "Seeding", "sunset_by_Aitzol_Berasategi.jpg": "Sunset",
        "free_by_Peter_Nerlich.jpg": "Free",
    },
    "lomiri-wallpapers-20.04": {"Kleiber_by_Lukas_Baubkus.jpg": "Kleiber"},
}
PLASMA_PACKAGE = "plasma-workspace-wallpapers"
PLASMA_PHOTOS = ("BytheWater", "ColdRipple", "EveningGlow", "FallenLeaf", "Grey", "Kite", "OneStandsOut",
                 "Path", "summer_1am")
JIGZO_PACKAGE = "jigzo-data"
# Puzzle file → short name. penguin-3x2.pzl is CC BY-NC-SA (debian/copyright): not used.
JIGZO_PUZZLES = {
    "bike-3x4": "Bike", "bird-2x3": "Bird", "blackberry-3x3": "Blackberry", "castle-6x3": "Castle",
    "clouds-4x4": "Clouds", "gorilla2-3x3": "Gorilla", "heli-4x3": "Heli", "horse-4x3": "Horse",
    "tobogan-4x3": "Tobogan", "train-2x2": "Train", "windmill-4x4": "Windmill",
}
OPENCV_PACKAGE = "opencv-doc"
OPENCV_PHOTOS = {  # file under /usr/share/doc/opencv-doc/examples → short name
    "data/fruits.jpg": "Fruits", "data/aloeL.jpg": "Aloe", "data/leuvenA.jpg": "Leuven",
    "data/building.jpg": "Building", "data/squirrel_cls.jpg": "Squirrel", "data/home.jpg": "Home",
    "alphamat/input_images/plant.jpg": "Plant",
}
MAX_SIDE = 2048


def _download_deb(package: str, deb_cache: Path) -> Path:
    deb_cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(deb_cache.glob(f"{package}_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", package], cwd=deb_cache, check=True)
        debs = sorted(deb_cache.glob(f"{package}_*.deb"))
    return debs[-1]


def _deb_version(deb: Path) -> str:
    return deb.name.split("_")[1].replace("%3a", ":")


@contextlib.contextmanager
def _unpacked_deb(package: str, deb_cache: Path, out: Path):
    """Download (once) and unpack a Debian package; yield (root, version, debian/copyright text).

    The copyright file is copied into OUT beside the photos, since it is where their licences come from.
    """
    deb = _download_deb(package, deb_cache)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg", "-x", str(deb), tmp], check=True)
        copyright_text = (Path(tmp) / f"usr/share/doc/{package}/copyright").read_text()
        (out / f"{package}.copyright").write_text(copyright_text)
        yield Path(tmp), _deb_version(deb), copyright_text


def _save_photo(src: Path, target: Path) -> None:
    """Copy a photo, downscaled to MAX_SIDE on its long side when larger (PNG: no new JPEG loss)."""
    with Image.open(src) as im:
        im = im.convert("RGB")
        if max(im.size) > MAX_SIDE:
            scale = MAX_SIDE / max(im.size)
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BOX)
        im.save(target)


def _pixel_count(path: Path) -> int:
    with Image.open(path) as im:
        return im.width * im.height


def _dep5_stanzas(text: str) -> dict[str, dict[str, str]]:
    """{file pattern: {"copyright": ..., "license": ...}} from a machine-readable debian/copyright."""
    out: dict[str, dict[str, str]] = {}
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        for pattern in fields.get("files", "").split():
            out[pattern] = {"copyright": fields.get("copyright", ""), "license": fields.get("license", "")}
    return out


def fetch_lomiri(out: Path, sources: dict, deb_cache: Path) -> None:
    for package, photos in LOMIRI_PACKAGES.items():
        with _unpacked_deb(package, deb_cache, out) as (root, version, copyright_text):
            stanzas = _dep5_stanzas(copyright_text)
            for name, short in photos.items():
                stanza = next((v for k, v in stanzas.items() if k.endswith("/" + name) or k == name), None)
                if stanza is None:
                    raise SystemExit(f"{package}: {name} has no stanza in debian/copyright; its licence is unknown")
                target = f"lomiri_{short}.png"
                _save_photo(root / "usr/share/backgrounds" / name, out / target)
                sources[target] = {
                    "package": f"Debian {package} {version}", "upstream": f"/usr/share/backgrounds/{name}",
                    "author": stanza["copyright"], "licence": f"{stanza['license']} (per debian/copyright)",
                }


def fetch_plasma(out: Path, sources: dict, deb_cache: Path) -> None:
    with _unpacked_deb(PLASMA_PACKAGE, deb_cache, out) as (root, version, _):
        for name in PLASMA_PHOTOS:
            folder = root / "usr/share/wallpapers" / name
            meta = json.loads((folder / "metadata.json").read_text())["KPlugin"]
            images = sorted((folder / "contents/images").iterdir(), key=_pixel_count)
            target = f"plasma_{name}.png"
            _save_photo(images[-1], out / target)
            sources[target] = {
                "package": f"Debian {PLASMA_PACKAGE} {version}",
                "upstream": f"/usr/share/wallpapers/{name}/contents/images/{images[-1].name}",
                "author": ", ".join(a["Name"] for a in meta.get("Authors", [])),
                "licence": f"{meta.get('License', 'see debian/copyright')} (per the wallpaper's metadata.json)",
            }


def _puzzle_photo(puzzle: bytes, name: str) -> Image.Image:
    """The photograph inside a jigzo .pzl file.

    A .pzl is a text header (the last line before the data names the photo's size: `image 0 0 W H`)
    followed by a JPEG thumbnail, a PNG of piece masks and, last, the photo as a JPEG in the top-left
    W×H of a 1024×1024 texture. Each step is checked so a changed format fails loudly.
    """
    starts = [m.start() for m in re.finditer(rb"\xff\xd8\xff", puzzle)]
    header = puzzle[: starts[0]].decode("latin-1") if starts else ""
    size = re.search(r"^image 0 0 (\d+) (\d+) ", header, flags=re.MULTILINE)
    if len(starts) < 2 or size is None:
        raise SystemExit(f"{JIGZO_PACKAGE}: {name} is not the expected puzzle format (no photo found)")
    texture = Image.open(io.BytesIO(puzzle[starts[-1]:]))
    texture.load()
    width, height = int(size.group(1)), int(size.group(2))
    if texture.width < width or texture.height < height:
        raise SystemExit(f"{JIGZO_PACKAGE}: {name}: texture {texture.size} smaller than the photo ({width}x{height})")
    return texture.convert("RGB").crop((0, 0, width, height))


def fetch_jigzo(out: Path, sources: dict, deb_cache: Path) -> None:
    with _unpacked_deb(JIGZO_PACKAGE, deb_cache, out) as (root, version, copyright_text):
        stanzas = _dep5_stanzas(copyright_text)
        for puzzle, short in JIGZO_PUZZLES.items():
            upstream = f"puzzles/00_default/{puzzle}.pzl"
            stanza = stanzas.get(upstream, stanzas["*"])  # photos without their own stanza fall under Files: *
            data = (root / "usr/share/games/jigzo" / upstream).read_bytes()
            target = f"jigzo_{short}.png"
            _puzzle_photo(data, puzzle).save(out / target)
            sources[target] = {
                "package": f"Debian {JIGZO_PACKAGE} {version}",
                "upstream": f"/usr/share/games/jigzo/{upstream} (the photo inside the puzzle)",
                "author": stanza["copyright"], "licence": f"{stanza['license']} (per debian/copyright)",
            }


def fetch_opencv(out: Path, sources: dict, deb_cache: Path) -> None:
    with _unpacked_deb(OPENCV_PACKAGE, deb_cache, out) as (root, version, copyright_text):
        doc = root / f"usr/share/doc/{OPENCV_PACKAGE}"
        stanza = _dep5_stanzas(copyright_text)["*"]  # samples/data has no stanza of its own
        for rel, short in OPENCV_PHOTOS.items():
            target = f"opencv_{short}.png"
            _save_photo(doc / "examples" / rel, out / target)
            sources[target] = {
                "package": f"Debian {OPENCV_PACKAGE} {version}",
                "upstream": f"/usr/share/doc/{OPENCV_PACKAGE}/examples/{rel} (OpenCV samples)",
                "author": stanza["copyright"], "licence": f"{stanza['license']} (per debian/copyright)",
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
        fetch_lomiri(args.out, sources, args.deb_cache)
        fetch_plasma(args.out, sources, args.deb_cache)
        fetch_jigzo(args.out, sources, args.deb_cache)
        fetch_opencv(args.out, sources, args.deb_cache)
    (args.out / "SOURCES.json").write_text(json.dumps(sources, indent=2, sort_keys=True) + "\n")
    print(f"{len(sources)} photos in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
