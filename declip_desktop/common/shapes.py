"""The shapes of analyst annotations, in image pixels: checking them, their size, and the
probability map's statistics inside them (numpy/cv2 only; shared by the case store, the GUI and
the reports, so all three state the same numbers).

Coordinates are those of the evidence image as decoded for analysis (EXIF orientation applied),
with pixel *edges* on integers: pixel (i, j) covers [i, i+1) × [j, j+1), the image spans
[0, width] × [0, height].

- box: `[x, y, w, h]`, integers, w and h ≥ 1, inside the image; it covers the pixels
  x … x+w−1, y … y+h−1.
- lasso: `[[x, y], …]`, at least 3 distinct points, each inside [0, width] × [0, height],
  rounded to 1/100 px; a closed polygon with a non-zero area. A pixel belongs to it when its
  centre lies inside (even-odd rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

KINDS = ("box", "lasso")
#: A freehand lasso is simplified by the GUI; more points than this is not a drawing.
MAX_POLYGON_POINTS = 5000


class ShapeError(ValueError):
    """A shape that cannot be stored; the message says what is wrong and what to give instead."""


@dataclass(frozen=True)
class Shape:
    kind: str  # "box" | "lasso"
    box: tuple[int, int, int, int] | None = None  # x, y, w, h
    points: tuple[tuple[float, float], ...] | None = None

    def geometry(self) -> dict[str, Any]:
        """The JSON form stored and audit-logged."""
        if self.kind == "box":
            return {"box": list(self.box)}
        return {"points": [[x, y] for x, y in self.points]}

    def bbox(self) -> tuple[int, int, int, int]:
        """Smallest pixel box (x, y, w, h) that holds the shape."""
        if self.kind == "box":
            return self.box
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        x0, y0 = math.floor(min(xs)), math.floor(min(ys))
        x1, y1 = math.ceil(max(xs)), math.ceil(max(ys))
        return x0, y0, max(1, x1 - x0), max(1, y1 - y0)

    def area_px(self) -> float:
        """Area in image pixels² (a lasso's polygon area, shoelace formula)."""
        if self.kind == "box":
            return float(self.box[2] * self.box[3])
        return _polygon_area(self.points)

    def describe(self) -> str:
        """'box x, y  w×h' or 'lasso of n points, bounding box x, y  w×h'."""
        x, y, w, h = self.bbox()
        if self.kind == "box":
            return f"box {x}, {y}  {w}×{h}"
        return f"lasso of {len(self.points)} points in {x}, {y}  {w}×{h}"

    def pixel_mask(self, width: int, height: int) -> tuple[int, int, np.ndarray]:
        """(x0, y0, mask): the pixels of the shape within its bounding box, clipped to the image
        (bool array, rows × columns), so a small shape on a 200 MP image costs only its own box."""
        x, y, w, h = self.bbox()
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(width, x + w), min(height, y + h)
        if x1 <= x0 or y1 <= y0:
            return x0, y0, np.zeros((0, 0), dtype=bool)
        if self.kind == "box":
            return x0, y0, np.ones((y1 - y0, x1 - x0), dtype=bool)
        return x0, y0, _polygon_mask(self.points, x0, y0, x1 - x0, y1 - y0)

    def scaled(self, sx: float, sy: float) -> "Shape":
        """The same shape in another raster's pixels (a map stored at another size than the image)."""
        if self.kind == "box":
            x, y, w, h = self.box
            x0, y0 = math.floor(x * sx), math.floor(y * sy)
            return Shape("box", box=(x0, y0, max(1, math.ceil((x + w) * sx) - x0), max(1, math.ceil((y + h) * sy) - y0)))
        return Shape("lasso", points=tuple((px * sx, py * sy) for px, py in self.points))


def _polygon_mask(points, x0: int, y0: int, width: int, height: int) -> np.ndarray:  # noqa: ANN001
    """Pixels of the `width` × `height` window at (x0, y0) whose centre lies inside the polygon
    (even-odd rule, so a lasso that crosses itself behaves as drawn). A scanline per pixel row:
    exact, unlike a rasterizer that also fills the pixels its edges touch."""
    pts = np.asarray(points, dtype=np.float64)
    xa, ya = pts[:, 0], pts[:, 1]
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    keep = ya != yb  # horizontal edges cross no row centre
    xa, ya, xb, yb = xa[keep], ya[keep], xb[keep], yb[keep]
    low, high = np.minimum(ya, yb), np.maximum(ya, yb)
    slope = (xb - xa) / (yb - ya)
    mask = np.zeros((height, width), dtype=bool)
    for row in range(height):
        yc = y0 + row + 0.5
        hit = (low <= yc) & (yc < high)
        if not hit.any():
            continue
        xs = np.sort(xa[hit] + (yc - ya[hit]) * slope[hit])
        # Pixel i is inside a span [a, b) when a <= i + 0.5 < b.
        starts = np.clip(np.ceil(xs[0::2] - 0.5 - x0), 0, width).astype(int)
        ends = np.clip(np.ceil(xs[1::2] - 0.5 - x0), 0, width).astype(int)
        for start, end in zip(starts, ends):
            mask[row, start:end] = True
    return mask


def _polygon_area(points) -> float:  # noqa: ANN001
    total = 0.0
    n = len(points)
    for i in range(n):
        x1, y1 = points[i]
        x2, y2 = points[(i + 1) % n]
        total += x1 * y2 - x2 * y1
    return abs(total) / 2.0


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise ShapeError(f"{what} is {value!r}, not a number. Give pixel coordinates as numbers.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ShapeError(f"{what} is {value!r}, not a number. Give pixel coordinates as numbers.") from None
    if not math.isfinite(number):
        raise ShapeError(f"{what} is {value!r}. Coordinates must be finite numbers (no NaN or infinity).")
    return number


def _check_box(values: Any, width: int, height: int) -> Shape:
    if not isinstance(values, (list, tuple)) or len(values) != 4:
        raise ShapeError(f"a box needs four numbers x, y, width, height; got {values!r}.")
    x, y, w, h = (_number(v, name) for v, name in zip(values, ("box x", "box y", "box width", "box height")))
    if any(v != int(v) for v in (x, y, w, h)):
        raise ShapeError(f"a box is given in whole image pixels; got {values!r}. Round it to integers.")
    x, y, w, h = int(x), int(y), int(w), int(h)
    if w < 1 or h < 1:
        raise ShapeError(f"the box {x}, {y}  {w}×{h} is empty: width and height must be at least 1 pixel.")
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise ShapeError(f"the box {x}, {y}  {w}×{h} reaches outside the {width}×{height} image "
                         f"(x + width ≤ {width}, y + height ≤ {height}). Draw it inside the image.")
    return Shape("box", box=(x, y, w, h))


def _check_points(values: Any, width: int, height: int) -> Shape:
    if not isinstance(values, (list, tuple)):
        raise ShapeError(f"a lasso needs a list of [x, y] points; got {values!r}.")
    if len(values) > MAX_POLYGON_POINTS:
        raise ShapeError(f"a lasso of {len(values)} points is more than the {MAX_POLYGON_POINTS} allowed. Simplify it.")
    points: list[tuple[float, float]] = []
    for i, point in enumerate(values, start=1):
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            raise ShapeError(f"lasso point {i} is {point!r}; each point is a pair x, y.")
        x, y = _number(point[0], f"lasso point {i} x"), _number(point[1], f"lasso point {i} y")
        if not (0.0 <= x <= width and 0.0 <= y <= height):
            raise ShapeError(f"lasso point {i} ({x:g}, {y:g}) lies outside the {width}×{height} image "
                             f"(0 … {width}, 0 … {height}). Draw the lasso inside the image.")
        p = (round(x, 2), round(y, 2))
        if not points or points[-1] != p:
            points.append(p)
    if len(points) > 1 and points[0] == points[-1]:
        points.pop()  # a closed ring given with its first point repeated
    if len(set(points)) < 3:
        raise ShapeError(f"a lasso needs at least 3 distinct points; got {len(set(points))}.")
    if _polygon_area(points) < 1e-6:
        raise ShapeError("the lasso's points lie on one line: it encloses no area. Draw around the region.")
    return Shape("lasso", points=tuple(points))


def check_shape(kind: str, geometry: Any, width: int | None, height: int | None) -> Shape:
    """The shape, checked against an image of `width` × `height` pixels, or ShapeError.

    `geometry` is `{"box": [x, y, w, h]}` or `{"points": [[x, y], …]}` (or the bare list)."""
    if kind not in KINDS:
        raise ShapeError(f"unknown annotation kind {kind!r}. Use one of: {', '.join(KINDS)}.")
    if not width or not height or width < 1 or height < 1:
        raise ShapeError("the image's size is not known, so the shape cannot be checked. Re-import the image.")
    key = "box" if kind == "box" else "points"
    values = geometry.get(key) if isinstance(geometry, dict) else geometry
    if values is None:
        raise ShapeError(f"a {kind} annotation needs its {key!r}; got {geometry!r}.")
    return _check_box(values, width, height) if kind == "box" else _check_points(values, width, height)


def _floats(text: str, what: str) -> list[float]:
    parts = [p.strip() for p in str(text).replace(";", ",").split(",")]
    if not parts or any(p == "" for p in parts):
        raise ShapeError(f"{what} {text!r} is not a comma-separated list of numbers.")
    return [_number(p, what) for p in parts]


def parse_box(text: str) -> list[float]:
    """'X,Y,W,H' → [x, y, w, h] (checked against the image later, by `check_shape`)."""
    values = _floats(text, "the box")
    if len(values) != 4:
        raise ShapeError(f"the box {text!r} has {len(values)} numbers; give four: X,Y,W,H.")
    return values


def parse_polygon(text: str) -> list[list[float]]:
    """'X1,Y1,X2,Y2,…' → [[x1, y1], …]."""
    values = _floats(text, "the polygon")
    if len(values) % 2:
        raise ShapeError(f"the polygon {text!r} has an odd count of numbers ({len(values)}); give pairs X,Y.")
    return [[values[i], values[i + 1]] for i in range(0, len(values), 2)]


@dataclass(frozen=True)
class MapStats:
    """The probability map inside a shape: pixels counted, mean and max probability (0 … 1)."""

    pixels: int
    mean: float | None
    max: float | None


def map_stats(shape: Shape, prob_map: np.ndarray, width: int, height: int) -> MapStats:
    """Mean and max of the map over the shape's pixels. The map is normally at the image's size;
    one stored at another size is read at the shape scaled to it (no resampling of the map)."""
    prob = np.asarray(prob_map)
    mh, mw = prob.shape[:2]
    if (mw, mh) != (width, height):
        shape = shape.scaled(mw / width, mh / height)
    x0, y0, mask = shape.pixel_mask(mw, mh)
    if mask.size == 0 or not mask.any():
        return MapStats(0, None, None)
    values = prob[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]][mask].astype(np.float64)
    return MapStats(int(values.size), float(values.mean()), float(values.max()))


__all__ = ["KINDS", "MAX_POLYGON_POINTS", "MapStats", "Shape", "ShapeError", "check_shape", "map_stats",
           "parse_box", "parse_polygon"]
