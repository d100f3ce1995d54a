"""Zoomable, pannable view of a photo with its heat overlay, mask and outlines.

A 24-megapixel photo is too large to rescale on every paint. `PyramidImageItem`
keeps the image at halving resolutions (built off the UI thread by `build_pyramid`)
and paints only the exposed part of the coarsest level that is still sharp at the
current zoom. At 1:1 and closer the original pixels are drawn without smoothing,
so an analyst sees the real pixels.

Zoom is counted in *device* pixels: 100 % ("1:1") is one image pixel per physical screen
pixel on any display scaling, so at 200 % system scaling the view's own transform is ½
(Qt's logical pixels are two device pixels wide there). `zoom()`, `set_zoom()` and the zoom
label all use this device-pixel zoom.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen, QPixmap, QTransform
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QStyleOptionGraphicsItem,
)

from declip_desktop.gui.render import OUTLINE_RGBA

#: Smallest pyramid level: below this the coarsest level is simply scaled down.
PYRAMID_MIN_SIDE = 1024
MIN_ZOOM, MAX_ZOOM = 0.01, 32.0


def build_pyramid(image: QImage) -> list[QImage]:
    """[full, 1/2, 1/4, …] down to about PYRAMID_MIN_SIDE; safe to call in a worker thread."""
    levels = [image]
    current = image
    while max(current.width(), current.height()) > 2 * PYRAMID_MIN_SIDE:
        current = current.scaled(
            max(1, current.width() // 2),
            max(1, current.height() // 2),
            Qt.AspectRatioMode.IgnoreAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        levels.append(current)
    return levels


class PyramidImageItem(QGraphicsItem):
    """Draws the coarsest pyramid level that is still sharp at the current zoom."""

    def __init__(self, levels: list[QImage], size: tuple[int, int] | None = None, preview: bool = False):
        super().__init__()
        self._levels = levels
        self.preview = preview  # True: a reduced decode stretched over the full size, not real pixels
        full = levels[0]
        width, height = size or (full.width(), full.height())
        self._rect = QRectF(0, 0, width, height)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.setCacheMode(QGraphicsItem.CacheMode.NoCache)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt override)
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        # Image pixels per *device* pixel: the world transform is in logical pixels.
        lod = option.levelOfDetailFromTransform(painter.worldTransform()) * painter.device().devicePixelRatioF()
        full_w = self._rect.width()
        chosen = self._levels[0]
        for level in self._levels:
            if level.width() / full_w >= lod:
                chosen = level
            else:
                break
        factor = chosen.width() / full_w
        exposed = option.exposedRect.intersected(self._rect)
        if exposed.isEmpty():
            return
        source = QRectF(exposed.x() * factor, exposed.y() * factor, exposed.width() * factor, exposed.height() * factor)
        painter.save()
        # Smooth when shrinking; real pixels (no interpolation) at 1:1 and closer. A preview is
        # never the real pixels: always smoothed, so it cannot pass for them.
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, lod < 0.999 or self.preview)
        painter.drawImage(exposed, chosen, source)
        painter.restore()


class ImageView(QGraphicsView):
    """One scene: photo, heat overlay, mask fill, live edge outline, vector outlines, selection box."""

    zoomChanged = Signal(float)
    viewChanged = Signal()  # zoom or scroll moved (for the side-by-side partner)
    cursorMoved = Signal(int, int)  # image pixel under the mouse; (-1, -1) when off the image

    def __init__(self, parent=None, with_overlays: bool = True):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setBackgroundBrush(QColor(38, 38, 40))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        self.setMinimumSize(200, 150)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # a click gives it focus: the threshold keys need it
        self._fit_mode = True
        self._image_item: PyramidImageItem | None = None
        self._with_overlays = with_overlays
        self.heat_item = QGraphicsPixmapItem()
        self.mask_item = QGraphicsPixmapItem()
        self.edge_item = QGraphicsPixmapItem()
        self.outline_item = QGraphicsPathItem()
        pen = QPen(QColor(*OUTLINE_RGBA))
        pen.setCosmetic(True)  # same on-screen width at every zoom
        pen.setWidthF(1.5)
        self.outline_item.setPen(pen)
        self.selection_item = QGraphicsRectItem()
        sel_pen = QPen(QColor(255, 214, 0))
        sel_pen.setCosmetic(True)
        sel_pen.setWidthF(2.0)
        sel_pen.setStyle(Qt.PenStyle.DashLine)
        self.selection_item.setPen(sel_pen)
        for z, item in enumerate(
            (self.heat_item, self.mask_item, self.edge_item, self.outline_item, self.selection_item), start=1
        ):
            item.setZValue(z)
            item.setVisible(False)
            self.scene().addItem(item)
        for item in (self.heat_item, self.mask_item, self.edge_item):
            item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.viewport().setMouseTracking(True)  # the readout follows the cursor without a button held
        self.horizontalScrollBar().valueChanged.connect(lambda _v: self.viewChanged.emit())
        self.verticalScrollBar().valueChanged.connect(lambda _v: self.viewChanged.emit())

    # ----- content -------------------------------------------------------------------------
    def set_image(self, levels: list[QImage] | None, size: tuple[int, int] | None = None,
                  preview: bool = False) -> None:
        """Show a pyramid (None: nothing). `size`/`preview`: a reduced preview stretched over the
        image's full size until `replace_levels` brings the real pixels."""
        if self._image_item is not None:
            self.scene().removeItem(self._image_item)
            self._image_item = None
        for item in (self.heat_item, self.mask_item, self.edge_item, self.outline_item, self.selection_item):
            item.setVisible(False)
        if not levels:
            self.scene().setSceneRect(QRectF())
            return
        self._image_item = PyramidImageItem(levels, size, preview)
        self._image_item.setZValue(0)
        self.scene().addItem(self._image_item)
        self.scene().setSceneRect(self._image_item.boundingRect())
        self.fit()

    def replace_levels(self, levels: list[QImage]) -> bool:
        """Swap the pixels shown for another pyramid of the same size, keeping zoom and pan
        (two-item flicker); False when the sizes differ."""
        if self._image_item is None or (levels[0].width(), levels[0].height()) != self.image_size():
            return False
        self._image_item._levels = levels
        self._image_item.preview = False
        self._image_item.update()
        return True

    def showing_preview(self) -> bool:
        return self._image_item is not None and self._image_item.preview

    def levels(self) -> list[QImage] | None:
        return self._image_item._levels if self._image_item is not None else None

    def full_image(self) -> QImage | None:
        """The full-resolution level (the real pixels), or None (also while a preview is shown)."""
        if self._image_item is None or self._image_item.preview:
            return None
        return self._image_item._levels[0]

    def image_pixel_at(self, pos) -> tuple[int, int] | None:
        """The image pixel under a viewport position, or None off the image."""
        if self._image_item is None:
            return None
        point = self.mapToScene(pos)
        x, y = int(point.x() // 1), int(point.y() // 1)
        w, h = self.image_size()
        return (x, y) if 0 <= x < w and 0 <= y < h else None

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().mouseMoveEvent(event)
        pixel = self.image_pixel_at(event.position().toPoint())
        self.cursorMoved.emit(*(pixel or (-1, -1)))

    def leaveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().leaveEvent(event)
        self.cursorMoved.emit(-1, -1)

    def image_size(self) -> tuple[int, int] | None:
        if self._image_item is None:
            return None
        rect = self._image_item.boundingRect()
        return int(rect.width()), int(rect.height())

    def _set_overlay_image(self, item: QGraphicsPixmapItem, image: QImage | None) -> None:
        if image is None or self._image_item is None:
            item.setVisible(False)
            return
        item.setPixmap(QPixmap.fromImage(image))
        rect = self._image_item.boundingRect()
        # Display-resolution images are stretched over the full image.
        item.setTransform(QTransform.fromScale(rect.width() / image.width(), rect.height() / image.height()))

    def set_heat(self, image: QImage | None) -> None:
        self._set_overlay_image(self.heat_item, image)

    def set_mask(self, image: QImage | None) -> None:
        self._set_overlay_image(self.mask_item, image)

    def set_edges(self, image: QImage | None) -> None:
        self._set_overlay_image(self.edge_item, image)

    def set_outlines(self, path: QPainterPath | None) -> None:
        self.outline_item.setPath(path if path is not None else QPainterPath())

    def show_selection(self, rect: QRectF | None) -> None:
        if rect is None:
            self.selection_item.setVisible(False)
            return
        self.selection_item.setRect(rect)
        self.selection_item.setVisible(True)

    # ----- zoom and pan ----------------------------------------------------------------------
    def device_ratio(self) -> float:
        """Device pixels per logical pixel of this view's screen (2.0 at 200 % scaling)."""
        return self.viewport().devicePixelRatioF() or 1.0

    def zoom(self) -> float:
        """Screen (device) pixels per image pixel: 1.0 is true 1:1 at any display scaling."""
        return self.transform().m11() * self.device_ratio()

    def fit(self) -> None:
        self._fit_mode = True
        if self._image_item is not None:
            self.fitInView(self._image_item.boundingRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self.zoomChanged.emit(self.zoom())
        self.viewChanged.emit()

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def set_zoom(self, factor: float) -> None:
        self._fit_mode = False
        factor = max(MIN_ZOOM, min(MAX_ZOOM, factor)) / self.device_ratio()
        center = self.mapToScene(self.viewport().rect().center())
        self.setTransform(QTransform.fromScale(factor, factor))
        self.centerOn(center)
        self.zoomChanged.emit(self.zoom())
        self.viewChanged.emit()

    def zoom_by(self, step: float) -> None:
        self._fit_mode = False
        current = self.zoom()
        target = max(MIN_ZOOM, min(MAX_ZOOM, current * step))
        self.scale(target / current, target / current)
        self.zoomChanged.emit(self.zoom())
        self.viewChanged.emit()

    def zoom_to(self, rect: QRectF, margin: float = 0.25) -> None:
        """Zoom so `rect` (image pixels) fills the view with some context around it."""
        grow_w, grow_h = rect.width() * margin + 16, rect.height() * margin + 16
        target = rect.adjusted(-grow_w, -grow_h, grow_w, grow_h)
        self._fit_mode = False
        self.fitInView(target, Qt.AspectRatioMode.KeepAspectRatio)
        if self.zoom() > MAX_ZOOM:
            self.set_zoom(MAX_ZOOM)
            self.centerOn(rect.center())
        self.zoomChanged.emit(self.zoom())
        self.viewChanged.emit()

    def follow(self, other: "ImageView") -> None:
        """Show the same part of the image as `other` (side-by-side compare)."""
        self._fit_mode = False
        with QSignalBlocker(self.horizontalScrollBar()), QSignalBlocker(self.verticalScrollBar()):
            self.setTransform(other.transform())
            center = other.mapToScene(other.viewport().rect().center())
            self.centerOn(center)
        self.zoomChanged.emit(self.zoom())

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt override)
        delta = event.angleDelta().y()
        if delta == 0:
            return
        self.zoom_by(1.25 ** (delta / 120.0))

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()
