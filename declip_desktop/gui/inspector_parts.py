"""Pieces the inspector widget is drawn with: the colour scale, the regions table model,
photo decoding and the details text (kept apart so `gui.inspector` stays one job: layout and
rendering of `gui.inspector_model.InspectorModel`)."""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QLinearGradient, QPainter, QPen
from PIL import Image, ImageOps
from PySide6.QtWidgets import QSizePolicy, QWidget

from declip_desktop.common.facts import DEFAULT_THRESHOLD
from declip_desktop.common.score_meaning import score_meaning
from declip_desktop.common.images import load_rgb
from declip_desktop.gui.render import DisplayMap, colormap_rgb


@dataclass
class Loaded:
    """What the background loader hands back for one evidence item."""

    evidence_id: int
    levels: list[QImage]
    prob_map: np.ndarray | None
    display: DisplayMap | None
    map_error: str | None
    file_state: str | None = None  # gui.integrity state when the file is not the imported evidence


def decode_to_qimage(path) -> QImage:  # a path or the file's bytes
    """Decode exactly as the model saw the photo (EXIF orientation, 8-bit RGB)."""
    rgb = load_rgb(path)
    h, w, _ = rgb.shape
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return image.convertToFormat(QImage.Format.Format_RGB32)  # a copy: independent of `rgb`


#: Long side asked of the preview decode. The JPEG decoder reduces by 1/2, 1/4 or 1/8 and keeps
#: at least this size, so a 9000-px photo comes out at 1/8 (1125 px: enough for "fit" in a 1280-px
#: window; each halving of the reduction costs about 2× the decode time).
PREVIEW_MAX_SIDE = 1024
#: Images up to this many pixels decode in full fast enough: no preview step.
PREVIEW_MIN_PIXELS = 8_000_000


def decode_preview(data: bytes, max_side: int = PREVIEW_MAX_SIDE) -> QImage | None:
    """A quick, reduced decode of a large JPEG (the decoder's DCT scaling, 1/2 … 1/8) or TIFF
    (an embedded reduced page or pyramid level, or every k-th strip: `common.reduced_decode`),
    orientation applied; None for small images and formats without a fast reduced decode.
    Never raises: a preview that cannot be made is simply skipped (the full decode reports errors)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height < PREVIEW_MIN_PIXELS:
                return None
            if img.format == "TIFF":
                return tiff_preview(data, max_side)
            if img.format != "JPEG":
                return None
            # draft() keeps both sides at least the size asked: ask the photo's own aspect ratio,
            # or the short side limits the reduction (1/4 instead of 1/8 for a 3:2 photo).
            scale = max_side / max(img.size)
            img.draft("RGB", (max(1, int(img.width * scale)), max(1, int(img.height * scale))))
            oriented = ImageOps.exif_transpose(img) or img
            rgb = oriented.convert("RGB")
            if max(rgb.size) > 2 * max_side:  # a JPEG too small for the 1/8 reduction to reach max_side
                rgb.thumbnail((2 * max_side, 2 * max_side))
            arr = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    h, w, _ = arr.shape
    return QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).convertToFormat(QImage.Format.Format_RGB32)


def tiff_preview(source, max_side: int = PREVIEW_MAX_SIDE) -> QImage | None:  # bytes or a path
    from declip_desktop.common.reduced_decode import reduced_tiff

    arr = reduced_tiff(source, max_side)
    return None if arr is None else rgb_qimage(arr)


def rgb_qimage(arr: np.ndarray) -> QImage:
    """An H×W×3 uint8 array as a QImage that owns its pixels."""
    arr = np.ascontiguousarray(arr)
    h, w, _ = arr.shape
    return QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).convertToFormat(QImage.Format.Format_RGB32)


def qimage_rgb(image: QImage) -> np.ndarray:
    """A QImage's pixels as an H×W×3 uint8 RGB array (a copy)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = rgb.height(), rgb.width(), rgb.bytesPerLine()
    return np.frombuffer(rgb.constBits(), np.uint8, count=stride * h).reshape(h, stride)[:, : 3 * w] \
        .reshape(h, w, 3).copy()


class ColourScale(QWidget):
    """Horizontal colour bar 0 … 1 with a marker at the threshold."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._colormap = "inferno"
        self._threshold = DEFAULT_THRESHOLD
        self.setMinimumSize(140, 30)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Colour scale of the manipulation probability; the marker is the threshold")

    def set_colormap(self, name: str) -> None:
        self._colormap = name
        self.update()

    def set_threshold(self, value: float) -> None:
        self._threshold = value
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802
        painter = QPainter(self)
        bar = QRectF(4, 2, self.width() - 8, 12)
        gradient = QLinearGradient(bar.left(), 0, bar.right(), 0)
        table = colormap_rgb(self._colormap)
        for i in range(0, 256, 15):
            r, g, b = (int(v) for v in table[i])
            gradient.setColorAt(i / 255.0, QColor(r, g, b))
        r, g, b = (int(v) for v in table[255])
        gradient.setColorAt(1.0, QColor(r, g, b))
        painter.fillRect(bar, gradient)
        painter.setPen(self.palette().text().color())
        font = painter.font()
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.8))
        painter.setFont(font)
        for value, align in ((0.0, Qt.AlignmentFlag.AlignLeft), (0.5, Qt.AlignmentFlag.AlignHCenter), (1.0, Qt.AlignmentFlag.AlignRight)):
            x = bar.left() + value * bar.width()
            rect = QRectF(x - 20 if value > 0 else x, bar.bottom() + 1, 40 if value not in (0.0, 1.0) else 30, 14)
            if value == 1.0:
                rect.moveRight(x)
            painter.drawText(rect, align | Qt.AlignmentFlag.AlignTop, f"{value:g}")
        x = bar.left() + self._threshold * bar.width()
        pen = QPen(QColor(0, 229, 255))
        pen.setWidth(2)
        painter.setPen(pen)
        painter.drawLine(int(x), int(bar.top()) - 2, int(x), int(bar.bottom()) + 2)
        painter.end()


class RegionsModel(QAbstractTableModel):
    """Regions above the threshold; UserRole gives the numeric sort key."""

    HEADERS = ("#", "Area % (px)", "Box x, y  w×h", "Mean", "Max")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.regions: list = []
        #: Columns other areas add (`add_column`): (header, cell(region) -> (text, tooltip, alert)).
        self.extra_columns: list[tuple[str, Callable[[Any], tuple[str, str, bool]]]] = []

    def add_column(self, header: str, cell: Callable[[Any], tuple[str, str, bool]]) -> int:
        """Hook: a column whose cells `cell(region)` gives as (text, tooltip, alert: drawn in red)."""
        self.beginResetModel()
        self.extra_columns.append((header, cell))
        self.endResetModel()
        return len(self.HEADERS) + len(self.extra_columns) - 1

    def refresh_columns(self) -> None:
        """The added columns' data changed (e.g. computed in the background)."""
        if self.rowCount() and self.extra_columns:
            self.dataChanged.emit(self.index(0, len(self.HEADERS)),
                                  self.index(self.rowCount() - 1, self.columnCount() - 1))

    def set_regions(self, regions: list) -> None:
        self.beginResetModel()
        self.regions = list(regions)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.regions)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.HEADERS) + len(self.extra_columns)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section] if section < len(self.HEADERS) else \
                self.extra_columns[section - len(self.HEADERS)][0]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        region = self.regions[index.row()]
        col = index.column()
        # This class's own numbering (a subclass with more base columns maps its index to it first).
        if col >= len(RegionsModel.HEADERS):
            text, tip, alert = self.extra_columns[col - len(RegionsModel.HEADERS)][1](region)
            if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.UserRole):
                return text
            if role == Qt.ItemDataRole.ToolTipRole:
                return tip or None
            if role == Qt.ItemDataRole.ForegroundRole and alert:
                return QColor(185, 28, 28)
            return None
        x, y, w, h = region.bbox
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                str(region.index),
                f"{region.area_pct:.3f} ({region.area_px:,})",
                f"{x}, {y}  {w}×{h}",
                f"{region.mean_score:.3f}",
                f"{region.max_score:.3f}",
            )[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"Region {region.index}: {region.area_px:,} px ({region.area_pct:.4f} % of the image)\n"
                    f"bounding box x={x}, y={y}, width={w}, height={h}\n"
                    f"mean score {region.mean_score:.4f}, max score {region.max_score:.4f}")
        if role == Qt.ItemDataRole.UserRole:
            return (region.index, region.area_px, region.index, region.mean_score, region.max_score)[col]
        if role == Qt.ItemDataRole.TextAlignmentRole and col:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def details_html(ev, an) -> str:
    """The Details tab: the evidence's identity and metadata, and its latest analysis."""
    exif = (ev.metadata or {}).get("exif") or {}
    rows = [
        ("File", ev.original_name),
        ("Imported from", ev.original_path),
        ("Size", f"{ev.size:,} bytes"),
        ("Format", f"{ev.format}, {ev.width} × {ev.height} px"),
        ("SHA-256", _code(ev.sha256)),
        ("MD5", _code(ev.md5)),
        ("Imported", f"{ev.imported_at} by {ev.imported_by}"),
    ]
    camera = " ".join(str(exif[k]) for k in ("camera_make", "camera_model") if exif.get(k))
    rows += [
        ("Camera", camera or "—"),
        ("Captured", str(exif.get("captured") or "—")),
        ("Software", _software(ev.metadata or {})),
        ("Location", _location(ev.metadata or {})),
    ]
    parts = ["<h3>Evidence</h3>", _table(rows)]
    if an is not None:
        model_rows = [
            ("Model", an.model_name),
            ("Model SHA-256", _code(an.model_sha256)),
            ("Device", an.device or "—"),
            ("Seconds", f"{an.seconds:.2f}" if an.seconds is not None else "—"),
            ("Finished", an.finished or "—"),
            ("Software", an.software_version),
        ]
        params = an.parameters if isinstance(getattr(an, "parameters", None), dict) else {}
        if params.get("mode") == "tiled":  # native-resolution map (gui.inspector_tiling)
            scales = ", ".join(f"{float(v):g}" for v in params.get("scales") or [])
            model_rows.insert(1, ("Map", f"tiled: tiles of {params.get('tile')} px, overlap "
                                         f"{params.get('overlap')}, scales {scales}, {params.get('passes')} passes"))
        if an.ok:
            model_rows.insert(0, ("Image score", f"{an.score:.4f}" if an.score is not None else "—"))
            card = params.get("model_card")
            if isinstance(card, dict):  # results stored before card snapshots have no stated meaning
                model_rows.insert(1, ("Score means", score_meaning(card)))
        else:
            model_rows.insert(0, ("Error", _Html(f"<span style='color:#b91c1c'>{html.escape(str(an.error))}</span>")))
        parts += ["<h3>Analysis</h3>", _table(model_rows)]
    else:
        parts.append("<p><i>Not analysed yet.</i></p>")
    return "".join(parts)



class _Html(str):
    """A fragment this module wrote itself; every other value is escaped (file names and metadata
    come from the evidence, and a value starting with '<' must never become markup)."""


def _code(value: object) -> _Html:
    return _Html(f"<code>{html.escape(str(value))}</code>")


# PNG text chunks that name the program that wrote the file, in the order they are trusted.
_GENERATOR_CHUNKS = (
    ("parameters", "Stable Diffusion-style generator (PNG 'parameters' chunk)"),
    ("prompt", "ComfyUI (PNG 'prompt' chunk)"),
    ("workflow", "ComfyUI (PNG 'workflow' chunk)"),
)


def _software(meta: dict) -> str:
    """EXIF Software, else a PNG Software chunk, else a generator's PNG chunk (the Metadata tab has all)."""
    exif = meta.get("exif") or {}
    if exif.get("software"):
        return str(exif["software"])
    text = {str(k).lower(): v for k, v in (meta.get("text") or {}).items()}
    if text.get("software"):
        return str(text["software"])[:200]
    for key, label in _GENERATOR_CHUNKS:
        if key in text:
            return label
    return "—"


def _location(meta: dict) -> str:
    gps = meta.get("gps") or {}
    if "latitude" in gps and "longitude" in gps:
        return f"{gps['latitude']:.6f}, {gps['longitude']:.6f} (EXIF GPS)"
    return "—"


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(
        f"<tr><td style='color:#6b7280;padding-right:8px;white-space:nowrap'>{html.escape(k)}</td>"
        f"<td>{v if isinstance(v, _Html) else html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table cellspacing='2'>{body}</table>"
