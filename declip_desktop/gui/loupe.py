"""A magnifier over the image view: the real pixels around the cursor, enlarged without smoothing.

Toggled with L while the image has focus. It shows `LOUPE_PIXELS`² image pixels of the full
resolution level (never a downscaled preview), each drawn as a `LOUPE_SCALE`-device-pixel
square with a crosshair on the pixel under the cursor, and follows the mouse.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QWidget

LOUPE_PIXELS = 21  # image pixels across (odd: the cursor's pixel sits in the middle)
LOUPE_SCALE = 8  # device pixels per image pixel


class Loupe(QWidget):
    def __init__(self, view):
        super().__init__(view.viewport())
        self.view = view
        self.center: tuple[int, int] | None = None
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        side = round(LOUPE_PIXELS * LOUPE_SCALE / max(1.0, view.device_ratio()))
        self.resize(side, side)
        self.hide()
        view.cursorMoved.connect(self.follow)

    def toggle(self) -> None:
        self.setVisible(not self.isVisible())
        if self.isVisible():
            pos = self.view.viewport().mapFromGlobal(self.cursor().pos())
            self.follow(*(self.view.image_pixel_at(pos) or (-1, -1)))

    def follow(self, x: int, y: int) -> None:
        self.center = (x, y) if x >= 0 else None
        if not self.isVisible():
            return
        if self.center is not None:
            at = self.view.mapFromScene(x + 0.5, y + 0.5)
            # Beside the cursor, inside the view: never under the pixel being read.
            place = QPoint(at.x() + 24, at.y() + 24)
            vp = self.view.viewport().rect()
            if place.x() + self.width() > vp.right():
                place.setX(at.x() - 24 - self.width())
            if place.y() + self.height() > vp.bottom():
                place.setY(at.y() - 24 - self.height())
            self.move(place)
        self.update()

    def source_rect(self) -> QRect | None:
        if self.center is None:
            return None
        half = LOUPE_PIXELS // 2
        return QRect(self.center[0] - half, self.center[1] - half, LOUPE_PIXELS, LOUPE_PIXELS)

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(20, 20, 22))
        image: QImage | None = self.view.full_image()
        source = self.source_rect()
        if image is not None and source is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            painter.drawImage(QRectF(self.rect()), image, QRectF(source))
            cell = self.width() / LOUPE_PIXELS
            half = LOUPE_PIXELS // 2
            pen = QPen(QColor(255, 214, 0))
            pen.setWidthF(1.0)
            painter.setPen(pen)
            painter.drawRect(QRectF(half * cell, half * cell, cell, cell))
        painter.setPen(QPen(QColor(200, 200, 205)))
        painter.drawRect(self.rect().adjusted(0, 0, -1, -1))
        painter.end()


__all__ = ["LOUPE_PIXELS", "LOUPE_SCALE", "Loupe"]
