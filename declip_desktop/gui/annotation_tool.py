"""Drawing annotations on the image view, and drawing the stored ones over the image.

`DrawingTool` watches the view's viewport while a tool (box or lasso) is on: a left-button drag
draws a rubber band, the release emits `shapeDrawn(kind, geometry)` in IMAGE pixels. The mouse
position is mapped through the view's own transform at sub-pixel precision (the event's logical
position, not a rounded QPoint), so the coordinates are right at any zoom and any
devicePixelRatio: the scene of `ImageView` is the image, one scene unit per image pixel.

- box: corners rounded to the nearest pixel edge and clamped to the image; a click without a
  drag (under one pixel) draws nothing.
- lasso: a point every `LASSO_STEP_PX` screen pixels of movement, clamped to the image; the
  polygon closes on release.

`AnnotationLayer` draws each annotation as a cosmetic outline (same width at every zoom) with a
dark halo and its label in a tag that keeps its size on screen.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem

from declip_desktop.common.shapes import MAX_POLYGON_POINTS

LASSO_STEP_PX = 3.0  # screen (logical) pixels between two lasso points
ANNOTATION_RGB = (0, 230, 118)
SELECTED_RGB = (255, 214, 0)
Z_ANNOTATIONS = 6  # above the regions' outlines (4) and the selection box (5)


class DrawingTool(QObject):
    shapeDrawn = Signal(str, object)  # kind, geometry ({"box": [x, y, w, h]} | {"points": [[x, y], …]})
    clickedAt = Signal(float, float)  # image point of a click with no tool on (to pick an annotation)

    def __init__(self, view):  # noqa: ANN001 - gui.image_view.ImageView
        super().__init__(view)
        self.view = view
        self.kind: str | None = None
        self._start: QPointF | None = None
        self._points: list[QPointF] = []
        self._press_pos: QPointF | None = None
        self.rubber = QGraphicsPathItem()
        pen = QPen(QColor(*SELECTED_RGB))
        pen.setCosmetic(True)
        pen.setWidthF(1.5)
        pen.setStyle(Qt.PenStyle.DashLine)
        self.rubber.setPen(pen)
        self.rubber.setZValue(Z_ANNOTATIONS + 1)
        self.rubber.setVisible(False)
        view.scene().addItem(self.rubber)
        view.viewport().installEventFilter(self)

    # ----- state ------------------------------------------------------------------------------
    def set_kind(self, kind: str | None) -> None:
        self.cancel()
        self.kind = kind
        self.view.setDragMode(self.view.DragMode.NoDrag if kind else self.view.DragMode.ScrollHandDrag)
        if kind:
            self.view.viewport().setCursor(Qt.CursorShape.CrossCursor)
        else:
            self.view.viewport().unsetCursor()

    @property
    def drawing(self) -> bool:
        return self._start is not None

    def cancel(self) -> None:
        self._start = None
        self._points = []
        self.rubber.setVisible(False)

    # ----- coordinates ------------------------------------------------------------------------
    def image_point(self, pos: QPointF) -> QPointF:
        """The image point under a viewport position (logical pixels, sub-pixel precision)."""
        inverse, _ok = self.view.viewportTransform().inverted()
        return inverse.map(QPointF(pos))

    def _clamped(self, point: QPointF) -> QPointF:
        w, h = self.view.image_size() or (0, 0)
        return QPointF(min(max(point.x(), 0.0), float(w)), min(max(point.y(), 0.0), float(h)))

    def box_geometry(self, a: QPointF, b: QPointF) -> dict | None:
        a, b = self._clamped(a), self._clamped(b)
        x0, x1 = sorted((round(a.x()), round(b.x())))
        y0, y1 = sorted((round(a.y()), round(b.y())))
        if x1 - x0 < 1 or y1 - y0 < 1:
            return None
        return {"box": [x0, y0, x1 - x0, y1 - y0]}

    def lasso_geometry(self, points: list[QPointF]) -> dict | None:
        if len(points) > MAX_POLYGON_POINTS:
            stride = math.ceil(len(points) / MAX_POLYGON_POINTS)
            points = points[::stride]
        pts = [[round(p.x(), 2), round(p.y(), 2)] for p in points]
        return {"points": pts} if len({tuple(p) for p in pts}) >= 3 else None

    # ----- events -----------------------------------------------------------------------------
    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt override)
        kind = event.type()
        if kind not in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove, QEvent.Type.MouseButtonRelease):
            return False
        if self.view.image_size() is None:
            return False
        if self.kind is None:
            self._watch_click(event)
            return False
        if kind == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            self.view.setFocus(Qt.FocusReason.MouseFocusReason)
            self._start = self._clamped(self.image_point(event.position()))
            self._points = [self._start]
            self._update_rubber(self._start)
            return True
        if kind == QEvent.Type.MouseMove and self._start is not None:
            point = self._clamped(self.image_point(event.position()))
            if self.kind == "lasso":
                step = LASSO_STEP_PX / max(1e-9, self.view.transform().m11())
                last = self._points[-1]
                if math.hypot(point.x() - last.x(), point.y() - last.y()) >= step:
                    self._points.append(point)
            self._update_rubber(point)
            return False  # the view still reports the cursor position
        if kind == QEvent.Type.MouseButtonRelease and event.button() == Qt.MouseButton.LeftButton \
                and self._start is not None:
            end = self._clamped(self.image_point(event.position()))
            if self.kind == "box":
                geometry = self.box_geometry(self._start, end)
            else:
                if end != self._points[-1]:
                    self._points.append(end)
                geometry = self.lasso_geometry(self._points)
            drawn = self.kind
            self.cancel()
            if geometry is not None:
                self.shapeDrawn.emit(drawn, geometry)
            return True
        return False

    def _watch_click(self, event) -> None:  # noqa: ANN001
        """A click (press and release within a few pixels) with no tool picks an annotation."""
        if event.type() == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            self._press_pos = QPointF(event.position())
        elif event.type() == QEvent.Type.MouseButtonRelease and self._press_pos is not None:
            moved = event.position() - self._press_pos
            self._press_pos = None
            if abs(moved.x()) + abs(moved.y()) <= 3:
                point = self.image_point(event.position())
                self.clickedAt.emit(point.x(), point.y())

    def _update_rubber(self, current: QPointF) -> None:
        path = QPainterPath()
        if self.kind == "box":
            path.addRect(QRectF(self._start, current).normalized())
        else:
            path.addPolygon(QPolygonF([*self._points, current]))
        self.rubber.setPath(path)
        self.rubber.setVisible(True)


def shape_path(annotation) -> QPainterPath:  # noqa: ANN001 - cases.annotations.Annotation
    """The annotation's outline in image (scene) coordinates."""
    path = QPainterPath()
    shape = annotation.shape
    if shape.kind == "box":
        x, y, w, h = shape.box
        path.addRect(QRectF(x, y, w, h))
    elif shape.points:
        path.addPolygon(QPolygonF([QPointF(x, y) for x, y in shape.points]))
        path.closeSubpath()
    return path


class _Tag(QGraphicsItem):
    """An annotation's label: white text on a dark box, the same size on screen at any zoom."""

    def __init__(self, text: str, rgb: tuple[int, int, int], parent: QGraphicsItem):
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self._text = text if len(text) <= 48 else text[:47] + "…"
        self._font = QFont()
        self._font.setPointSizeF(9.0)
        self._font.setBold(True)
        metrics = QFontMetricsF(self._font)
        self._rect = QRectF(0, -metrics.height() - 4, metrics.horizontalAdvance(self._text) + 8, metrics.height() + 4)
        self._rgb = rgb

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt override)
        return self._rect

    def paint(self, painter, option, widget=None) -> None:  # noqa: ANN001
        painter.fillRect(self._rect, QColor(0, 0, 0, 200))
        painter.setPen(QColor(*self._rgb))
        painter.setFont(self._font)
        painter.drawText(self._rect, int(Qt.AlignmentFlag.AlignCenter), self._text)


class AnnotationLayer:
    """One parent item (the inspector's "annotations" layer) holding an outline and a tag per annotation."""

    def __init__(self):
        self.root = QGraphicsPathItem()  # draws nothing itself; shown or hidden as the layer
        self.root.setZValue(Z_ANNOTATIONS)
        self.items: dict[int, QGraphicsPathItem] = {}

    def set_annotations(self, annotations: list, selected: int | None = None) -> None:
        for child in list(self.root.childItems()):
            child.setParentItem(None)
            if child.scene() is not None:
                child.scene().removeItem(child)
        self.items = {}
        for number, annotation in enumerate(annotations, start=1):
            rgb = SELECTED_RGB if annotation.id == selected else ANNOTATION_RGB
            path = shape_path(annotation)
            halo = QGraphicsPathItem(path, self.root)
            halo_pen = QPen(QColor(0, 0, 0, 180))
            halo_pen.setCosmetic(True)
            halo_pen.setWidthF(4.0)
            halo.setPen(halo_pen)
            outline = QGraphicsPathItem(path, self.root)
            pen = QPen(QColor(*rgb))
            pen.setCosmetic(True)
            pen.setWidthF(2.5 if annotation.id == selected else 1.8)
            outline.setPen(pen)
            outline.setBrush(QBrush(QColor(*rgb, 40)) if annotation.id == selected else QBrush())
            outline.setToolTip(f"Annotation A{annotation.id}: {annotation.label}\n{annotation.shape.describe()}\n"
                               f"by {annotation.author}, {annotation.created_at}")
            tag = _Tag(f"A{annotation.id} {annotation.label}", rgb, self.root)
            box = path.boundingRect()
            tag.setPos(box.left(), box.top())
            self.items[annotation.id] = outline

    def annotation_at(self, x: float, y: float) -> int | None:
        """The annotation whose shape holds the image point (the smallest one when nested)."""
        hits = [(path.path().boundingRect().width() * path.path().boundingRect().height(), aid)
                for aid, path in self.items.items() if path.path().contains(QPointF(x, y))]
        return min(hits)[1] if hits else None


__all__ = ["AnnotationLayer", "DrawingTool", "shape_path"]
