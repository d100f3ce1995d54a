"""Native-resolution (tiled) analysis: the model over overlapping tiles, blended into one map.

DeCLIP squashes a whole photo to 224×224, so on a 12-megapixel image each of its 16×16
patches covers ~250×190 pixels and the resize itself wipes out fine generator traces. Here
the model sees the image's own pixels instead, one `tile`×`tile` window at a time (the
model's input size, so each tile is preprocessed exactly like a squash input that needs no
resize), optionally also at one or two coarser scales. Where the tiles go and how they are
weighted is `common.tiling_plan` (shared with the time estimates of the GUI and the CLI).

Blending happens on a canvas at the model's output resolution (256/224 of the working image
for DeCLIP, 1/2 for the starter), so an image that is exactly one tile gives the very map and
score of the squash. Scales are resized to the finest canvas and averaged; the score is the
same read-out as the squash's (`preprocess.image_score`, the top 1 % of the blended canvas);
the map is resized to the image's H×W like every other map.

`tiled_map` takes the forward function (the Localizer's, so device, precision, fast mode and
the non-finite check are the same as for the squash) and calls it on batches of tiles;
`should_stop()` is checked before every batch (raising `common.errors.AnalysisStopped`) and
`on_tile(done, total)` is called after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from declip_desktop.common.errors import AnalysisStopped
from declip_desktop.common.score_meaning import DEFAULT_TOP_FRACTION
from declip_desktop.common.tiling_plan import TilingOptions, plan_tiles, ramp_weights

#: forward(B×3×S×S normalized float32) -> (B×h×w probabilities on the CPU, per-image count of
#: non-finite logits, seconds)
Forward = Callable[[torch.Tensor], tuple[torch.Tensor, Sequence[int], float]]


class NonFiniteTiles(ValueError):
    """The network returned NaN/Inf on some tiles (`count` values in all)."""

    def __init__(self, count: int):
        super().__init__(f"{count} non-finite values in the tiles' maps")
        self.count = count


@dataclass
class TiledMap:
    """The blended map of one image: float32 H×W in [0, 1] at the image's size, its score, the
    number of forward passes and their time, and what to record (`parameters`)."""

    prob_map: np.ndarray
    score: float
    passes: int
    seconds: float
    parameters: dict


def _normalize(crop: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    # The same float32 operations, in the same order, as `preprocess.to_input_tensor`: a tile
    # is bit-identical to a squash input of an image that is already the model's size.
    x = crop.astype(np.float32) / np.float32(255.0)
    return ((x - mean) / std).transpose(2, 0, 1)


class _Canvas:
    """Weighted sums of tile maps for one scale, at the model's output resolution."""

    def __init__(self, height: int, width: int, tile: int, overlap_px: int, out_h: int, out_w: int):
        self.ry, self.rx = out_h / tile, out_w / tile
        self.h, self.w = max(out_h, int(round(height * self.ry))), max(out_w, int(round(width * self.rx)))
        self.out_h, self.out_w = out_h, out_w
        self.ramp_y, self.ramp_x = int(round(overlap_px * self.ry)), int(round(overlap_px * self.rx))
        self.acc = np.zeros((self.h, self.w), dtype=np.float32)
        self.weight = np.zeros((self.h, self.w), dtype=np.float32)

    def add(self, y: int, x: int, prob: np.ndarray) -> None:
        cy = min(int(round(y * self.ry)), self.h - self.out_h)
        cx = min(int(round(x * self.rx)), self.w - self.out_w)
        wy = ramp_weights(self.out_h, self.ramp_y, cy > 0, cy + self.out_h < self.h)
        wx = ramp_weights(self.out_w, self.ramp_x, cx > 0, cx + self.out_w < self.w)
        window = np.outer(wy, wx).astype(np.float32)
        self.acc[cy:cy + self.out_h, cx:cx + self.out_w] += window * prob
        self.weight[cy:cy + self.out_h, cx:cx + self.out_w] += window

    def blended(self) -> np.ndarray:
        if not np.all(self.weight > 0):  # the plan covers every pixel; this would be a bug
            raise AssertionError("tiling left canvas pixels without any tile")
        return np.clip(self.acc / self.weight, 0.0, 1.0)


def tiled_map(image: Image.Image, forward: Forward, *, input_size: int, mean: Sequence[float],
              std: Sequence[float], options: TilingOptions | None = None, batch_size: int = 4,
              on_tile: Callable[[int, int], None] | None = None,
              should_stop: Callable[[], bool] | None = None,
              score_top_fraction: float = DEFAULT_TOP_FRACTION) -> TiledMap:
    """The tiled map of one 8-bit RGB PIL image; see the module docstring.

    Raises `AnalysisStopped` when `should_stop()` turns true between two batches, and
    `NonFiniteTiles` when the network returned NaN/Inf for any tile."""
    from declip_desktop.engine.preprocess import image_score, resize_map

    if image.mode != "RGB":
        raise ValueError(f"expected an RGB image, got mode {image.mode!r}")
    options = options or TilingOptions()
    plan = plan_tiles(image.height, image.width, input_size, options)
    tile = plan.tile
    m32, s32 = np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)
    pixels: list[np.ndarray] = []
    jobs: list[tuple[int, int, int]] = []
    for index, sp in enumerate(plan.scales):
        work = image if (sp.width, sp.height) == image.size else image.resize((sp.width, sp.height), Image.BILINEAR)
        pixels.append(np.asarray(work, dtype=np.uint8))
        jobs.extend((index, y, x) for y, x in sp.tiles())
    canvases: list[_Canvas | None] = [None] * len(plan.scales)
    total, done, seconds, bad_total = len(jobs), 0, 0.0, 0
    batch_size = max(1, int(batch_size))
    for start in range(0, total, batch_size):
        if should_stop is not None and should_stop():
            raise AnalysisStopped(f"stopped after {done} of {total} tiles")
        chunk = jobs[start:start + batch_size]
        batch = np.stack([_normalize(pixels[i][y:y + tile, x:x + tile], m32, s32) for i, y, x in chunk])
        prob, bad, secs = forward(torch.from_numpy(np.ascontiguousarray(batch)))
        seconds += secs
        bad_total += int(sum(int(b) for b in bad))
        for (i, y, x), p in zip(chunk, prob):
            if canvases[i] is None:
                sp = plan.scales[i]
                canvases[i] = _Canvas(sp.height, sp.width, tile, plan.overlap_px, int(p.shape[0]), int(p.shape[1]))
            canvases[i].add(y, x, p.numpy())
        done += len(chunk)
        if on_tile is not None:
            on_tile(done, total)
    if bad_total:
        raise NonFiniteTiles(bad_total)
    maps = [c.blended() for c in canvases if c is not None]
    combined = torch.from_numpy(maps[0])
    if len(maps) > 1:
        size = combined.shape
        resized = [combined] + [
            F.interpolate(torch.from_numpy(m)[None, None], size=size, mode="bilinear", align_corners=False,
                          antialias=True)[0, 0] for m in maps[1:]]
        combined = torch.stack(resized).mean(dim=0)
    parameters = {"mode": "tiled", **options.parameters(input_size), "passes": total,
                  "scales_run": [sp.scale for sp in plan.scales],
                  "tiles_per_scale": [[len(sp.ys), len(sp.xs)] for sp in plan.scales]}
    score = image_score(combined, score_top_fraction)
    return TiledMap(prob_map=resize_map(combined, image.height, image.width), score=score,
                    passes=total, seconds=seconds, parameters=parameters)


def seconds_per_pass(forward: Forward, input_size: int, batch_size: int) -> float:
    """A quick measurement for time estimates: one batch of `batch_size` mid-grey tiles,
    timed, divided by the batch size (includes the first-call overhead, so it errs long)."""
    t0 = time.perf_counter()
    forward(torch.zeros((max(1, int(batch_size)), 3, int(input_size), int(input_size)), dtype=torch.float32))
    return (time.perf_counter() - t0) / max(1, int(batch_size))


__all__ = ["NonFiniteTiles", "TiledMap", "seconds_per_pass", "tiled_map"]
