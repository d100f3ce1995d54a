"""What the inspector draws from a probability map, cheap enough to follow a slider.

The map of a 12-megapixel photo is 12 million floats; recomputing a full-resolution
mask and outlines on every slider step would take far longer than the 30 ms an
update may cost. So the view works on a *display copy*: the map resized to at most
`DISPLAY_MAX_SIDE` pixels on its long side and quantised to 256 levels. Then

- the heat overlay is an 8-bit indexed image whose colour table is the colour map;
- the mask at a threshold is the *same* indexed buffer with a two-colour table
  (levels above the threshold opaque, the rest transparent): changing the
  threshold only rewrites 256 table entries;
- the live outlines are the one-pixel edge of that display mask.

Region statistics for the table (area, bounding box, mean/max score) and the
vector outlines are computed on the full-resolution map in the background
(`compute_regions`), so the table always matches the reports and exports.

The display mask is quantised to 1/255 in probability and averaged over the
pixels one display pixel covers: it is a picture of the map, the table is the
measurement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from PySide6.QtCore import QByteArray, QDataStream, QIODevice, Qt
from PySide6.QtGui import QColor, QImage, QPainterPath

from declip_desktop.common.regions import COLORMAPS, Region, colorize, find_regions

#: Long side of the display copy of a map. DeCLIP predicts at 256×256 and the map is
#: only upsampled to the photo's size, so 1024 px holds all the detail the model has
#: (4× its output) while keeping a threshold update plus repaint well under 30 ms.
#: Region statistics and vector outlines always use the full-resolution map.
DISPLAY_MAX_SIDE = 1024

#: Colour of the mask fill and outlines (cyan reads well over photos and every colour map).
MASK_RGBA = (0, 229, 255, 110)
OUTLINE_RGBA = (0, 229, 255, 255)

#: Upper bound on the points turned into vector outlines (the largest regions first);
#: a noisy map would otherwise produce paths that take seconds to draw.
MAX_OUTLINE_POINTS = 200_000


@lru_cache(maxsize=len(COLORMAPS))
def colormap_table(name: str) -> tuple[int, ...]:
    """256 opaque ARGB values for a colour map, as QImage colour tables want them."""
    rgb = colorize(np.linspace(0.0, 1.0, 256, dtype=np.float32).reshape(1, 256), name)[0]
    return tuple(QColor(int(r), int(g), int(b)).rgba() for r, g, b in rgb)


def colormap_rgb(name: str) -> np.ndarray:
    """256×3 uint8 RGB table (for the colour scale widget)."""
    return colorize(np.linspace(0.0, 1.0, 256, dtype=np.float32).reshape(1, 256), name)[0]


def threshold_level(threshold: float) -> int:
    """Display level L is inside the mask when L/255 > threshold."""
    return int(math.floor(min(1.0, max(0.0, float(threshold))) * 255.0 + 1e-9))


def _rgba(values: tuple[int, int, int, int]) -> int:
    r, g, b, a = values
    return QColor(r, g, b, a).rgba()


class DisplayMap:
    """The display copy of one probability map and the images drawn from it."""

    def __init__(self, prob_map: np.ndarray, max_side: int = DISPLAY_MAX_SIDE):
        prob = np.asarray(prob_map, dtype=np.float32)
        if prob.ndim != 2:
            raise ValueError(f"probability map must be 2-D, got shape {prob.shape}")
        self.full_height, self.full_width = prob.shape
        scale = min(1.0, max_side / max(self.full_width, self.full_height))
        if scale < 1.0:
            size = (max(1, round(self.full_width * scale)), max(1, round(self.full_height * scale)))
            # INTER_AREA averages the pixels a display pixel covers: no aliasing speckle.
            small = cv2.resize(prob, size, interpolation=cv2.INTER_AREA)
        else:
            small = prob
        self.levels = np.ascontiguousarray(np.clip(small * 255.0 + 0.5, 0, 255).astype(np.uint8))
        self.height, self.width = self.levels.shape
        # QImage does not copy the buffer; these images keep `self.levels` alive through `self`.
        self._indexed = QImage(self.levels.data, self.width, self.height, self.width, QImage.Format.Format_Indexed8)
        self._edges = np.zeros_like(self.levels)
        self._edge_image = QImage(self._edges.data, self.width, self.height, self.width, QImage.Format.Format_Indexed8)
        self._edge_image.setColorTable([0, _rgba(OUTLINE_RGBA)])
        self._kernel = np.ones((3, 3), np.uint8)

    @property
    def scale(self) -> tuple[float, float]:
        """Factors from display-copy pixels to image pixels (x, y)."""
        return self.full_width / self.width, self.full_height / self.height

    def heat_image(self, colormap: str) -> QImage:
        """Opaque heat image at display resolution (opacity is applied by the view item)."""
        image = QImage(self._indexed)  # shallow copy shares the pixel buffer
        image.setColorTable(list(colormap_table(colormap)))
        return image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)

    def mask_image(self, threshold: float) -> QImage:
        """Translucent fill where the map is above `threshold`, transparent elsewhere."""
        level = threshold_level(threshold)
        fill = _rgba(MASK_RGBA)
        table = [0] * (level + 1) + [fill] * (255 - level)
        image = QImage(self._indexed)
        image.setColorTable(table)
        return image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)

    def edge_image(self, threshold: float) -> QImage:
        """One-pixel outline of the display mask (the live outline while the slider moves)."""
        level = threshold_level(threshold)
        _, mask = cv2.threshold(self.levels, level, 1, cv2.THRESH_BINARY)
        eroded = cv2.erode(mask, self._kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        np.subtract(mask, eroded, out=self._edges)
        return self._edge_image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)


@dataclass(frozen=True)
class RegionResult:
    """Full-resolution regions at one threshold, and their outlines as one path."""

    threshold: float
    regions: list[Region]
    outlines: QPainterPath
    truncated: bool  # True when some small regions' outlines were left out of the path
    mask_pct: float  # share of the image above the threshold, in percent


def path_from_contours(contours: list[np.ndarray]) -> QPainterPath:
    """One QPainterPath of closed polygons, built without a Python loop over points.

    Building it point by point (QPointF objects) holds the GIL long enough on large
    outlines to stall the UI thread; instead the path is read from Qt's own binary
    stream format (qint32 count; per element qint32 type, double x, double y;
    qint32 start; qint32 fill rule), laid out with numpy.
    """
    polys = [np.asarray(c, dtype=np.float64).reshape(-1, 2) for c in contours if len(c)]
    if not polys:
        return QPainterPath()
    closed = [np.vstack([p, p[:1]]) for p in polys]  # back to the first point: a closed outline
    lengths = np.fromiter((len(c) for c in closed), dtype=np.int64, count=len(closed))
    points = np.concatenate(closed) + 0.5  # contour points are pixel indices: outline through pixel centres
    records = np.empty(len(points), dtype=[("type", ">i4"), ("x", ">f8"), ("y", ">f8")])
    records["type"] = 1  # LineToElement
    records["type"][np.concatenate(([0], np.cumsum(lengths)[:-1]))] = 0  # MoveToElement starts each polygon
    records["x"] = points[:, 0]
    records["y"] = points[:, 1]
    data = QByteArray(
        np.array([len(points)], dtype=">i4").tobytes()
        + records.tobytes()
        + np.array([0, int(Qt.FillRule.WindingFill.value)], dtype=">i4").tobytes()
    )
    path = QPainterPath()
    stream = QDataStream(data, QIODevice.OpenModeFlag.ReadOnly)
    stream >> path  # noqa: B015 (QDataStream's read operator)
    return path


def compute_regions(prob_map: np.ndarray, threshold: float) -> RegionResult:
    """Regions table and vector outlines at full resolution (run off the UI thread).

    QPainterPath is a plain value type, so building it here, outside the GUI thread,
    is allowed.
    """
    regions = find_regions(prob_map, threshold)
    budget = MAX_OUTLINE_POINTS
    truncated = False
    contours: list[np.ndarray] = []
    for region in regions:
        for contour in region.contours:
            if len(contour) > budget:
                truncated = True
                break
            budget -= len(contour)
            contours.append(contour)
        if truncated:
            break
    path = path_from_contours(contours)
    # Counted directly: find_regions keeps at most its largest 1000 regions.
    mask_pct = 100.0 * float(np.count_nonzero(np.asarray(prob_map) > threshold)) / max(1, np.asarray(prob_map).size)
    return RegionResult(threshold, regions, path, truncated, mask_pct)
