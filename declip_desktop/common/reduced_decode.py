"""Reduced decodes of large TIFFs for a quick preview: read far less than the whole image.

A 54-megapixel TIFF takes seconds to decode in full. Two layouts let a preview skip most of it:

- a **reduced-resolution copy inside the file**: a pyramid level (SubIFDs, as OME-TIFF and
  scanners write them) or a page marked "reduced-resolution image" (NewSubfileType bit 0). The
  smallest one whose long side is at least `max_side` is decoded instead of the full image;
- **strips** (the classic TIFF layout: bands of rows, each compressed on its own): only every
  k-th strip is decoded and its first row kept, and columns are taken with the same step, so a
  1024-pixel preview of a 6000-row image reads about one strip in six.

A tiled TIFF without a pyramid has no cheap reduction (every tile holds full-resolution pixels);
it gets no preview here (the inspector then uses the preview cached in the case, see
`cases.previews`). Anything unusual (planar configuration "separate", CMYK or YCbCr, floating
point, a compression tifffile cannot decode) returns None as well: the full decode, which follows
in any case, handles it and reports errors. This module never raises for bad input.

Returned arrays are H×W×3 uint8 RGB with the TIFF Orientation tag applied, as `common.images.load_rgb`
applies it, so the preview lines up with the full decode that replaces it.
"""

from __future__ import annotations

import io
import logging
import os

import numpy as np

try:
    import tifffile
except ImportError:  # pragma: no cover - a dependency; without it there is simply no TIFF preview
    tifffile = None

log = logging.getLogger(__name__)

#: TIFF Orientation value -> how to turn the stored pixels upright (as PIL's exif_transpose does).
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}
#: Photometric interpretations whose samples are already what we show (0 = WhiteIsZero is inverted).
_GRAY, _RGB, _PALETTE = (0, 1), 2, 3


def orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """`arr` (H×W×C) turned upright for a TIFF/EXIF Orientation value (1 or unknown: unchanged)."""
    turn = _ORIENT.get(int(orientation or 1))
    return np.ascontiguousarray(turn(arr)) if turn else arr


def reduced_tiff(source: bytes | str | os.PathLike, max_side: int) -> np.ndarray | None:
    """A preview of a TIFF (its bytes, or its path: then only the parts used are read) whose long
    side is about `max_side` (at least `max_side // 2`), or None when the file has no cheap
    reduction (see the module docstring)."""
    if tifffile is None:  # the dependency is declared; a broken install only loses the preview
        return None
    try:
        with tifffile.TiffFile(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source) as tif:
            page = tif.pages[0]
            orientation = _tag(page, "Orientation", 1)
            level = _reduced_level(tif, page, max_side)
            if level is not None:
                arr = _to_rgb(level.asarray(), level)
            elif not page.is_tiled and page.planarconfig == 1:
                arr = _strided_strips(tif.filehandle, page, max_side)
            else:
                return None
    except Exception as exc:  # noqa: BLE001 - a hostile or exotic file: no preview, the full decode reports it
        log.debug("no reduced TIFF decode: %s", exc)
        return None
    if arr is None or arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
        return None
    return orient(arr, orientation)


def _tag(page, name: str, default):  # noqa: ANN001, ANN202 - tifffile page
    tag = page.tags.get(name)
    return default if tag is None else tag.value


def _reduced_level(tif, page, max_side: int):  # noqa: ANN001, ANN202 - tifffile objects
    """The smallest reduced copy (pyramid level or reduced page) with a long side ≥ max_side."""
    full_side = max(page.shape[:2])
    candidates = []
    try:
        levels = tif.series[0].levels[1:] if tif.series else []
    except Exception:  # noqa: BLE001 - a series tifffile cannot assemble: look at the pages only
        levels = []
    candidates += [lv for lv in levels if lv.keyframe is not None]
    candidates += [p for p in tif.pages[1:] if getattr(p, "is_reduced", False)]
    usable = []
    for item in candidates:
        shape = item.shape if hasattr(item, "shape") else None
        if not shape or len(shape) < 2:
            continue
        side = max(shape[:2])
        if max_side <= side < full_side:
            usable.append((side, item))
    if not usable:
        return None
    return min(usable, key=lambda pair: pair[0])[1]


def _to_rgb(arr: np.ndarray, page) -> np.ndarray | None:  # noqa: ANN001 - tifffile page or series
    """8-bit RGB from what the page decodes to (gray, palette, RGB(A), 8 or 16 bits); None otherwise."""
    keyframe = getattr(page, "keyframe", page)
    photometric = int(getattr(keyframe, "photometric", -1))
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    elif arr.dtype != np.uint8:
        return None
    if photometric == _PALETTE:
        cmap = getattr(keyframe, "colormap", None)
        if cmap is None or arr.ndim != 2:
            return None
        lut = (np.asarray(cmap).T >> 8).astype(np.uint8)
        return lut[arr]
    if photometric in _GRAY:
        gray = arr if arr.ndim == 2 else arr[..., 0]
        if photometric == 0:
            gray = 255 - gray
        return np.repeat(gray[..., None], 3, axis=2)
    if photometric == _RGB and arr.ndim == 3 and arr.shape[2] >= 3:
        return np.ascontiguousarray(arr[..., :3])  # alpha dropped: a preview, the full decode composes it
    return None


def _strided_strips(fh, page, max_side: int) -> np.ndarray | None:  # noqa: ANN001 - tifffile handle, page
    """Every k-th strip's first row, every k-th column: a nearest-neighbour reduction that decodes
    about 1/k of the strips."""
    height, width = page.shape[:2]
    rows_per_strip = int(page.rowsperstrip or height)
    offsets, counts = page.dataoffsets, page.databytecounts
    if not offsets or len(offsets) != -(-height // rows_per_strip):
        return None  # not one plane of contiguous strips
    step = max(1, max(height, width) // max_side)
    strip_step = max(1, step // rows_per_strip)
    if strip_step < 2:
        return None  # strips as tall as the step: no saving over the full decode
    step = strip_step * rows_per_strip  # the same step across, so the preview keeps the image's shape
    decode = _fast_inflate(page) or page.decode
    rows = []
    for index in range(0, len(offsets), strip_step):
        start, size = int(offsets[index]), int(counts[index])
        fh.seek(start)
        raw = fh.read(size)
        if len(raw) != size:
            return None  # a truncated file: the full decode says so
        segment, _, _ = decode(raw, index)
        if segment is None:
            return None
        plane = segment.reshape(-1, *segment.shape[-2:])  # (rows, width, samples)
        rows.append(plane[0, ::step])
    return _to_rgb(np.stack(rows), page)


def _fast_inflate(page):  # noqa: ANN001, ANN202 - tifffile page; a decode function or None
    """Deflate strips of 8-bit samples without a predictor, inflated with ISA-L (2–3× zlib's speed;
    the importer uses it for PNG too) straight into rows; None: let tifffile decode."""
    if int(page.compression) not in (8, 32946) or int(page.predictor or 1) != 1 or page.bitspersample != 8:
        return None
    try:
        from isal import isal_zlib as inflate
    except ImportError:
        import zlib as inflate
    width, samples = page.shape[1], page.samplesperpixel

    def decode(raw: bytes, _index: int):  # noqa: ANN202 - tifffile's (segment, indices, shape)
        flat = np.frombuffer(inflate.decompress(raw), np.uint8)
        rows = flat.size // (width * samples)
        return flat[: rows * width * samples].reshape(rows, width, samples), None, None

    return decode


__all__ = ["orient", "reduced_tiff"]
