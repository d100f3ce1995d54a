"""Comparing and reading pixels in the inspector (a mixin of `gui.inspector.Inspector`).

- Readout: x, y, RGB of the full-resolution pixel and the probability under the cursor
  (`readout` signal; the window shows it in the status bar).
- Loupe (L while the image has focus): `gui.loupe.Loupe`.
- Two-item compare: another evidence item in the left view, zoom and pan synchronized both
  ways; its file is hash-checked like the item's own. Flicker then alternates the two items
  in the main view. A difference image (per pixel, the largest channel difference, ×4 so
  small edits show) needs two items of the same size; otherwise it says why.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtGui import QImage

from declip_desktop.common.hashing import sha256_bytes
from declip_desktop.gui.background import run_background
from declip_desktop.gui.image_view import build_pyramid
from declip_desktop.gui.inspector_parts import decode_to_qimage
from declip_desktop.gui.integrity import STATE_TEXT, quick_state

DIFFERENCE_GAIN = 4  # a difference of 16 grey levels shows as 64


def format_readout(x: int, y: int, rgb: tuple[int, int, int] | None, prob: float | None) -> str:
    """The status-bar line for one pixel (Qt-free; tested directly)."""
    text = f"x {x}, y {y}"
    if rgb is not None:
        text += f"   RGB {rgb[0]}, {rgb[1]}, {rgb[2]}"
    if prob is not None:
        text += f"   p = {prob:.3f}"
    return text


def qimage_rgb(image: QImage) -> np.ndarray:
    """H×W×3 uint8 copy of a QImage's pixels."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return arr[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def difference_image(a: np.ndarray, b: np.ndarray, gain: int = DIFFERENCE_GAIN) -> QImage:
    """Grey image of max-channel |a − b| × gain (clipped); a and b H×W×3 uint8 of one size."""
    if a.shape != b.shape:
        raise ValueError(f"a difference needs two images of the same size ({a.shape[1]}×{a.shape[0]} "
                         f"and {b.shape[1]}×{b.shape[0]})")
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2)
    grey = np.ascontiguousarray(np.clip(diff * gain, 0, 255).astype(np.uint8))
    h, w = grey.shape
    return QImage(grey.data, w, h, w, QImage.Format.Format_Grayscale8).convertToFormat(QImage.Format.Format_RGB32)


class CompareControls:
    def _init_compare(self) -> None:
        self.partner = None  # the other evidence item being compared, or None
        self.partner_levels: list[QImage] | None = None
        self.compare_mode = "overlay"  # "overlay" (the item itself) | "item" | "difference"
        self._own_levels: list[QImage] | None = None
        self._syncing = False
        self.view.cursorMoved.connect(self._cursor_moved)
        self.compare_view.cursorMoved.connect(self._cursor_moved)
        self.compare_view.viewChanged.connect(self._sync_main)
        from declip_desktop.gui.loupe import Loupe

        self.loupe = Loupe(self.view)

    # ----- readout -------------------------------------------------------------------------------
    def _cursor_moved(self, x: int, y: int) -> None:
        if x < 0:
            self.readout.emit("")
            return
        image = self.view.full_image()
        rgb = None
        if image is not None and x < image.width() and y < image.height():
            c = image.pixelColor(x, y)
            rgb = (c.red(), c.green(), c.blue())
        prob = None
        if self.prob_map is not None and y < self.prob_map.shape[0] and x < self.prob_map.shape[1]:
            prob = float(self.prob_map[y, x])
        self.last_readout = format_readout(x, y, rgb, prob)
        self.readout.emit(self.last_readout)

    def toggle_loupe(self) -> None:
        self.loupe.toggle()

    # ----- two items -----------------------------------------------------------------------------
    def _sync_main(self) -> None:
        if self.compare_view.isVisible() and not self._syncing:
            self._syncing = True
            try:
                self.view.follow(self.compare_view)
            finally:
                self._syncing = False

    def compare_with(self, evidence_id: int, mode: str = "item") -> None:
        """Show another item (mode "item") or its difference with this one ("difference") on the left."""
        if self.case is None or self.evidence is None:
            return
        if evidence_id == self.evidence.id:
            self.errorOccurred.emit("Choose another item to compare with: this is the item shown.", "")
            return
        try:
            other = self.case.get_evidence(evidence_id)
        except Exception as exc:
            self.errorOccurred.emit(f"The item to compare could not be read: {exc}", repr(exc))
            return
        if mode == "difference" and (other.width, other.height) != (self.evidence.width, self.evidence.height):
            self.errorOccurred.emit(
                f"A difference image needs two items of the same size: {self.evidence.original_name} is "
                f"{self.evidence.width}×{self.evidence.height}, {other.original_name} is {other.width}×{other.height}. "
                "Side by side works for any sizes.", "")
            return
        path = self.case.evidence_file(other)
        token = self.model.load_token

        def load():
            state = quick_state(path, other.size)
            data = path.read_bytes() if state is None else b""
            if state is None and sha256_bytes(data) != other.sha256:
                state = "changed"
            if state is not None:
                raise ValueError(f"{other.original_name}: {STATE_TEXT.get(state, state)}; not compared")
            return decode_to_qimage(data)

        def done(image: QImage) -> None:
            if not self.model.is_current(token):
                return
            self.partner = other
            if mode == "difference":
                own = self.view.full_image()
                if own is None:
                    self.errorOccurred.emit("The item shown has not finished loading; try again.", "")
                    return
                image = difference_image(qimage_rgb(own), qimage_rgb(image))
            self.compare_mode = mode
            self.partner_levels = build_pyramid(image)
            self._own_levels = self.view.levels()
            self.compare_view.set_image(self.partner_levels)
            what = "difference with" if mode == "difference" else "left:"
            self.compare_caption.setText(f"{what} {other.original_name}   ·   right: {self.evidence.original_name}")
            self.compare_caption.setVisible(True)
            self.set_side_by_side(True)
            QTimer.singleShot(0, self._sync_compare)

        run_background(load, done, lambda e, d: self.errorOccurred.emit(f"Compare failed: {e}", d))

    def stop_comparing(self) -> None:
        self.partner = None
        self.partner_levels = None
        self.compare_mode = "overlay"
        self.compare_caption.setVisible(False)
        if self._own_levels is not None:
            self.view.replace_levels(self._own_levels)
            self.compare_view.set_image(self._own_levels)
        self._own_levels = None

    def _flicker_items(self) -> None:
        """With a partner of the same size, flicker alternates the two items in the main view."""
        if self.compare_mode != "item" or self.partner_levels is None or self._own_levels is None:
            return
        showing_partner = self.model.flicker_on and not self.model.flicker_phase
        self.view.replace_levels(self.partner_levels if showing_partner else self._own_levels)


__all__ = ["CompareControls", "difference_image", "format_readout", "qimage_rgb"]
