"""Image/mask folders for evaluation and training: layouts, pairing, mask polarity.

Two layouts are read:

* Dolos (the DeCLIP paper's data): `ROOT/fake/<generator>/images/<split>/*` with the masks
  in `ROOT/fake/<generator>/masks/<split>/<stem>.png`; masks are **black = manipulated**.
  `ROOT` may also be the `fake/<generator>` folder itself.
* Plain: `ROOT/images/*` and `ROOT/masks/*`, paired by file stem (`<stem>.png`,
  `<stem>_mask.*`, `<stem>_gt.*`, or AutoSplice's `<id>_<n>.jpg` → `<id>_mask.png`);
  masks are **white = manipulated**.

Masks are read like the authors read them — PIL `convert("L")`, inverted for Dolos,
`ToTensor() > 0.5` — so a pixel is manipulated when its grey level is ≥ 128 (white
polarity) or ≤ 127 (black polarity). Internally True / 1 = manipulated, always.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from declip_desktop.common.images import IMAGE_SUFFIXES

POLARITIES = ("white", "black")
MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".gif", ".webp")


class DatasetError(ValueError):
    """A data folder cannot be used as given (layout not recognised, split missing, ...)."""


@dataclass(frozen=True)
class Sample:
    """One image and its ground-truth mask (None when no mask was found for it)."""

    name: str  # file stem, unique within the set
    image: Path
    mask: Path | None


@dataclass(frozen=True)
class SampleSet:
    layout: str  # "dolos" | "plain" | "maps"
    root: Path
    polarity: str  # the mask polarity that applies ("white" = white is manipulated)
    samples: list[Sample]
    description: str  # e.g. "Dolos ldm/test"


# ----------------------------------------------------------------------------- masks


def load_mask(path: str | Path, polarity: str = "white") -> np.ndarray:
    """Read a ground-truth mask as a boolean H×W array, True = manipulated.

    Raises `DatasetError` with the file name when it is missing or not an image.
    """
    gray = _load_gray(path)
    if polarity == "black":
        return gray <= 127
    if polarity == "white":
        # ToTensor gives level/255; > 0.5 holds from 128 up.
        return gray >= 128
    raise ValueError(f"mask polarity must be one of {POLARITIES}, got {polarity!r}")


def load_soft_mask(path: str | Path, polarity: str, size: int) -> np.ndarray:
    """The training target: mask resized to size×size with PIL bilinear, *not* binarized.

    As the authors train (`Resize((256, 256))` then `ToTensor()` on the grey mask, Dolos
    masks inverted first): float32 in [0, 1], 1 = manipulated, soft at the edges.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            gray = im.convert("L")
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read the mask ({exc})") from exc
    if polarity == "black":
        gray = ImageOps.invert(gray)
    elif polarity != "white":
        raise ValueError(f"mask polarity must be one of {POLARITIES}, got {polarity!r}")
    resized = gray.resize((size, size), Image.BILINEAR)
    return (np.asarray(resized, dtype=np.float32) / np.float32(255.0)).astype(np.float32)


def _load_gray(path: str | Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: mask file not found")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"), dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read the mask ({exc})") from exc


# ----------------------------------------------------------------------------- discovery


def _files(folder: Path, suffixes) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."))


def index_by_stem(folder: Path, suffixes=MASK_SUFFIXES) -> dict[str, Path]:
    """stem → file; a stem present twice (x.png and x.jpg) is refused as ambiguous."""
    out: dict[str, Path] = {}
    for p in _files(folder, suffixes):
        if p.stem in out:
            raise DatasetError(f"{folder}: two files share the name {p.stem!r} ({out[p.stem].name}, {p.name}); keep one")
        out[p.stem] = p
    return out


def match_mask(stem: str, masks: dict[str, Path]) -> Path | None:
    """The mask of image `stem`: `stem.*`, `stem_mask.*`, `stem_gt.*`, or AutoSplice's naming
    (`<id>_<variant>.jpg` → `<id>_mask.png`, one mask shared by an image's variants)."""
    for key in (stem, f"{stem}_mask", f"{stem}_gt"):
        if key in masks:
            return masks[key]
    if "_" in stem:
        return masks.get(f"{stem.rsplit('_', 1)[0]}_mask")
    return None


def _pair(images: list[Path], masks: dict[str, Path]) -> list[Sample]:
    return [Sample(img.stem, img, match_mask(img.stem, masks)) for img in images]


def _pick(options: list[str], wanted: str | None, what: str, where: Path, prefer: str | None = None) -> str:
    if wanted is not None:
        if wanted not in options:
            raise DatasetError(f"{where}: no {what} {wanted!r}; found: {', '.join(options) or 'none'}")
        return wanted
    if len(options) == 1:
        return options[0]
    if prefer in options:
        return prefer
    raise DatasetError(f"{where}: several {what}s ({', '.join(options)}); choose one with --{what}")


def _subdirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def detect_layout(root: Path) -> str:
    if (root / "fake").is_dir() or ((root / "images").is_dir() and (root / "masks").is_dir() and _subdirs(root / "images")):
        return "dolos"
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return "plain"
    raise DatasetError(
        f"{root}: not a known layout. Expected Dolos (fake/<generator>/images|masks/<split>) "
        "or images/ + masks/ side by side"
    )


def find_samples(
    root: str | Path,
    *,
    generator: str | None = None,
    split: str | None = None,
    polarity: str | None = None,
    default_split: str = "test",
) -> SampleSet:
    """The image/mask pairs of a Dolos-layout or plain-layout folder.

    `polarity` overrides the layout's default (Dolos black, plain white).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: data folder not found")
    if polarity is not None and polarity not in POLARITIES:
        raise DatasetError(f"mask polarity must be white or black, got {polarity!r}")
    layout = detect_layout(root)
    if layout == "plain":
        images = _files(root / "images", IMAGE_SUFFIXES)
        samples = _pair(images, index_by_stem(root / "masks"))
        desc = f"plain {root.name}"
        pol = polarity or "white"
    else:
        if (root / "fake").is_dir():
            gen = _pick(_subdirs(root / "fake"), generator, "generator", root / "fake")
            base = root / "fake" / gen
        else:  # ROOT is fake/<generator> itself
            gen = root.name
            base = root
        sp = _pick(_subdirs(base / "images"), split, "split", base / "images", prefer=default_split)
        mask_dir = base / "masks" / sp
        images = _files(base / "images" / sp, IMAGE_SUFFIXES)
        samples = _pair(images, index_by_stem(mask_dir) if mask_dir.is_dir() else {})
        desc = f"Dolos {gen}/{sp}"
        pol = polarity or "black"
    if not samples:
        raise DatasetError(f"{root}: no images found ({desc})")
    _check_unique(samples, root)
    return SampleSet(layout, root, pol, samples, desc)


def _check_unique(samples: list[Sample], root: Path) -> None:
    seen: dict[str, Path] = {}
    for s in samples:
        if s.name in seen:
            raise DatasetError(f"{root}: two images share the name {s.name!r} ({seen[s.name].name}, {s.image.name})")
        seen[s.name] = s.image
