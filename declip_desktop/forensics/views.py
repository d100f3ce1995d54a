"""The classical views, by name, each with how to read it and its limits.

`compute_view(name, rgb, **params)` returns a `ViewResult`; `VIEWS[name]` describes a
view (title, explanation, parameters and their defaults). Maps are float32 H×W in
[0, 1] (shown with a colour map over the photo, like the DeCLIP heat map); "rgb" views
are H×W×3 uint8 images shown instead of the photo.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from declip_desktop.forensics import copymove, dct_maps, noise, recompress
from declip_desktop.forensics.orientation import to_display, to_file

VIEW_VERSION = 3  # bump when any view's output changes, so cached views are recomputed
#: Views tied to the JPEG 8×8 grid of the stored pixels: computed in file orientation.
GRID_VIEWS = frozenset({"ela", "jpeg_ghost", "jpeg_grid", "double_jpeg"})


@dataclass(frozen=True)
class ViewSpec:
    name: str
    title: str
    kind: str  # "map" | "rgb"
    explanation: str
    defaults: dict[str, Any] = field(default_factory=dict)


@dataclass
class ViewResult:
    name: str
    title: str
    kind: str
    data: np.ndarray
    explanation: str
    parameters: dict[str, Any]
    seconds: float
    extras: dict[str, Any] = field(default_factory=dict)
    cached: bool = False  # True when read back from a case's view cache


VIEWS: dict[str, ViewSpec] = {v.name: v for v in (
    ViewSpec("ela", "Error level analysis", "map",
             "Shows how much each pixel changes when the image is saved once more as JPEG at the chosen quality. "
             "Regions with another compression history than their surroundings (pasted from another file, "
             "retouched, never compressed) often stand out brighter or darker. How to read it: compare similar "
             "surfaces (sky with sky, skin with skin); edges and fine texture are always bright. Limits: "
             "recompression by social networks evens it out; high-contrast edges, text and noise look "
             "suspicious without being edited; not meaningful for images that were never JPEG.",
             {"quality": 90}),
    ViewSpec("noise_residual", "Noise residual", "map",
             "What remains after removing the image's content with a 3×3 median filter: mostly sensor noise "
             "and fine texture. A pasted, smoothed or generated region often has a different grain. Limits: "
             "texture and edges dominate the residual; strong JPEG compression and denoising erase noise "
             "everywhere.", {}),
    ViewSpec("noise_level", "Local noise level", "map",
             "Estimated noise standard deviation per 32×32 block (robust median of a high-pass); mid-scale "
             "(0.5) is the image's typical level. A block of very different level (much smoother or noisier) "
             "is worth a look. Limits: dark and bright areas, out-of-focus background and heavy texture change "
             "the level naturally; it cannot tell edits from denoising or sharpening.", {"block": 32}),
    ViewSpec("jpeg_ghost", "JPEG ghosts", "map",
             "The image is re-saved at a range of JPEG qualities; each block shows the quality at which it "
             "changed least (dark = low, bright = high), or, with a chosen quality, how much it changed "
             "there (dark = a 'ghost': the block was saved at about that quality). A region previously "
             "saved at another quality than the rest shows another level. Limits: needs the pasted region "
             "and the rest to have been compressed at clearly different qualities; flat areas change little "
             "at any quality and read as noise.", {"quality": None, "last_quality": None}),
    ViewSpec("jpeg_grid", "JPEG block grid", "map",
             "Where the faint 8×8 JPEG block grid sits at another offset than in the rest of the picture "
             "(bright tiles), that part came from another JPEG or was moved. The whole image's grid offset "
             "is given; one away from (0, 0) means the image was cropped after compression. Limits: needs "
             "visible block artefacts (medium or low quality); smooth or very detailed areas give no grid; "
             "resizing destroys it.", {}),
    ViewSpec("double_jpeg", "Double-compression map", "map",
             "For a JPEG saved twice, the DCT coefficient histograms have periodic gaps. Blocks whose "
             "coefficients do not fit that double-compressed pattern (bright) may come from a source "
             "compressed only once, e.g. pasted before the last save. Limits: needs a JPEG whose earlier and "
             "last qualities differ (nothing to see for a single save); flat blocks carry no evidence; "
             "cropping the image after the first save misaligns the grid and weakens it.", {}),
    ViewSpec("copy_move", "Copy-move (clone) detection", "rgb",
             "Keypoints matched against the same image, grouped by a consistent rotation/scale/shift: each "
             "colour outlines two regions that are copies of each other, joined by lines between matched "
             "points. Limits: repeated patterns (windows, tiles, crowds) match genuinely; flat or blurred "
             "clones without keypoints and very small copies are missed; it cannot tell which region is the "
             "original.", {"max_side": copymove.DEFAULT_MAX_SIDE}),
    ViewSpec("luminance_gradient", "Luminance gradient", "rgb",
             "Direction and strength of brightness change: red/green encode horizontal/vertical direction, "
             "blue the strength. Objects lit from another direction, soft pasted edges and clone-stamp "
             "smudges look different from their surroundings. Limits: interpretation is visual and "
             "subjective; noise and texture make it busy.", {}),
)}


def _compute(name: str, rgb: np.ndarray, params: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    if name == "ela":
        return recompress.error_level(rgb, int(params["quality"])), {}
    if name == "noise_residual":
        return noise.noise_residual(rgb), {}
    if name == "noise_level":
        return noise.noise_level(rgb, int(params["block"]))
    if name == "jpeg_ghost":
        return recompress.jpeg_ghosts(rgb, quality=params.get("quality"), last_quality=params.get("last_quality"))
    if name == "jpeg_grid":
        return dct_maps.grid_alignment(rgb)
    if name == "double_jpeg":
        return dct_maps.double_compression(rgb, params.get("luma_table"))
    if name == "copy_move":
        clusters = copymove.find_clones(rgb, max_side=int(params["max_side"]))
        return copymove.render_clones(rgb, clusters), {"clusters": [c.as_dict() for c in clusters]}
    if name == "luminance_gradient":
        return noise.luminance_gradient(rgb), {}
    raise KeyError(name)


def compute_view(name: str, rgb: np.ndarray, orientation: int = 1, **params: Any) -> ViewResult:
    """Compute view `name` of `rgb` (H×W×3 uint8, upright). Unknown names and bad parameters raise
    ValueError. `orientation`: the file's EXIF orientation (1…8); GRID_VIEWS are computed on the
    stored pixels and their map turned upright (their grid offsets refer to the stored pixels).

    `double_jpeg` takes `luma_table` (the file's 64-value luminance quantization table);
    `jpeg_ghost` takes `last_quality` (the file's estimated JPEG quality)."""
    spec = VIEWS.get(name)
    if spec is None:
        raise ValueError(f"unknown view {name!r}; known views: {', '.join(VIEWS)}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"views take an H×W×3 uint8 image, got {rgb.dtype} {rgb.shape}")
    merged = {**spec.defaults, **{k: v for k, v in params.items() if v is not None or k in spec.defaults}}
    start = time.perf_counter()
    turned = name in GRID_VIEWS and orientation not in (None, 1)
    data, extras = _compute(name, to_file(rgb, orientation) if turned else rgb, merged)
    if turned:
        data = to_display(data, orientation)
    shown = {k: v for k, v in merged.items() if k != "luma_table"}
    return ViewResult(name, spec.title, spec.kind, data, spec.explanation, shown,
                      round(time.perf_counter() - start, 4), extras)
