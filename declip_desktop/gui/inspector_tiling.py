"""The inspector's squash/tiled map switch and stable-region marks (a mixin of `gui.inspector.Inspector`).

An item analysed in tiled mode has two maps (`analysis.tiling`): the squash map (the paper's
method, the item's latest analysis, shown by default as before) and the native-resolution tiled
map. The "Map" box switches between them: the heat map, mask, regions and details all follow the
chosen analysis. The tiled map's regions found in the squash map too (IoU ≥ `STABLE_MIN_IOU`) are
outlined in green ("Stable regions" layer) and named under the regions table, on either map;
they are recomputed off the UI thread from the two hash-checked maps when the threshold moves.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QRectF, QSignalBlocker, Qt, QTimer
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import QComboBox, QGraphicsPathItem, QLabel

from declip_desktop.analysis.tiling import STABLE_MIN_IOU, latest_pair
from declip_desktop.common.stable_regions import match_regions
from declip_desktop.gui.background import run_background
from declip_desktop.gui.inspector_model import Layer

log = logging.getLogger("declip_desktop.gui")

MODES = (("squash", "Squash map"), ("tiled", "Tiled map (native resolution)"))
STABLE_Z = 6.0  # above the heat map and outlines
STABLE_DELAY_MS = 250


class TilingControls:
    def _init_tiling(self) -> None:
        self.map_mode = "squash"
        self.tiled_pair = None
        self.stable_matches: list = []
        self._tiling_maps: tuple | None = None  # (evidence id, squash map, tiled map) of the current pair
        self._stable_token = 0
        self.map_mode_combo = QComboBox()
        for _mode, label in MODES:
            self.map_mode_combo.addItem(label)
        self.map_mode_combo.setToolTip(
            "Which map to show: the squash map (the whole image at the model's input size, as in the paper) or "
            "the tiled map (the model over tiles at the image's own resolution). Only items analysed in tiled mode "
            "have both.")
        self.map_mode_combo.setEnabled(False)
        self.map_mode_combo.currentIndexChanged.connect(self._map_mode_chosen)
        self.map_mode_actions = [self.view_toolbar.addWidget(QLabel("Map")), self.view_toolbar.addWidget(self.map_mode_combo)]
        self.stable_item = QGraphicsPathItem()
        pen = QPen(QColor("#16a34a"), 3)
        pen.setCosmetic(True)
        pen.setStyle(Qt.PenStyle.DashLine)
        self.stable_item.setPen(pen)
        self.stable_item.setZValue(STABLE_Z)
        self.view.scene().addItem(self.stable_item)
        self.add_overlay_layer(Layer("stable_regions", "Stable regions", True,
                                     f"Outline the tiled map's regions that the squash map finds too (IoU ≥ "
                                     f"{STABLE_MIN_IOU:g})"), self.stable_item)
        self.stable_label = QLabel("")
        self.stable_label.setWordWrap(True)
        self.regions_note.parentWidget().layout().insertWidget(1, self.stable_label)
        self._stable_timer = QTimer(self, singleShot=True, interval=STABLE_DELAY_MS)
        self._stable_timer.timeout.connect(self._start_stable)
        self.model.on("threshold", self._stable_timer.start)

    # ------------------------------------------------------------------ choosing the map
    def _choose_map(self) -> None:
        """Called by `show_evidence` after the model selected an item: find its pair and, in
        tiled mode, make the tiled analysis the one shown."""
        self._stable_token += 1
        self.stable_matches = []
        self.stable_item.setPath(QPainterPath())
        self.stable_label.setText("")
        self.tiled_pair = None
        if self._tiling_maps is not None and (self.evidence is None or self._tiling_maps[0] != self.evidence.id):
            self._tiling_maps = None
        if self.model.evidence is not None and self.model.analysis_ok:
            try:
                self.tiled_pair = latest_pair(self.case, self.model.evidence.id)
            except Exception:  # noqa: BLE001 - the squash map is still shown; the switch is off
                log.exception("reading the tiled analysis failed")
        with QSignalBlocker(self.map_mode_combo):
            self.map_mode_combo.setEnabled(self.tiled_pair is not None)
            self.map_mode_combo.setCurrentIndex(1 if self.tiled_pair is not None and self.map_mode == "tiled" else 0)
        if self.tiled_pair is not None:
            if self.map_mode == "tiled":
                self.model.analysis = self.tiled_pair.tiled
            self._stable_timer.start()

    def _map_mode_chosen(self, index: int) -> None:
        self.map_mode = MODES[index][0]
        self.refresh_current()

    def set_map_mode(self, mode: str) -> None:
        """"squash" or "tiled" (tests and menus); items without a tiled map keep the squash."""
        self.map_mode_combo.setCurrentIndex([m for m, _ in MODES].index(mode))

    # ------------------------------------------------------------------ stable regions
    def _start_stable(self) -> None:
        pair, ev = self.tiled_pair, self.evidence
        if pair is None or ev is None:
            return
        self._stable_token += 1
        token, case, threshold, cached = self._stable_token, self.case, self.model.threshold, self._tiling_maps

        def work():
            maps = cached if cached is not None and cached[0] == ev.id else (
                ev.id, case.load_map(pair.squash), case.load_map(pair.tiled))
            return maps, match_regions(maps[2], maps[1], threshold)

        run_background(work, lambda result: self._stable_ready(token, result),
                       lambda exc, detail: self._stable_failed(token, exc))

    def _stable_ready(self, token: int, result) -> None:
        if token != self._stable_token:
            return  # another item or threshold since
        self._tiling_maps, self.stable_matches = result
        path = QPainterPath()
        for m in self.stable_matches:
            if m.stable:
                x, y, w, h = m.region.bbox
                path.addRect(QRectF(x, y, w, h))
        self.stable_item.setPath(path)
        stable = [m.region.index for m in self.stable_matches if m.stable]
        only = [m.region.index for m in self.stable_matches if not m.stable]
        which = "this map" if self.map_mode == "tiled" else "the tiled map"
        text = (f"Tiled analysis: {len(self.stable_matches)} region(s) in {which} at this threshold; stable (also in the "
                f"squash map, IoU ≥ {STABLE_MIN_IOU:g}): {_ids(stable)}; tiles only: {_ids(only)}.")
        self.stable_label.setText(text)

    def _stable_failed(self, token: int, exc: Exception) -> None:
        if token == self._stable_token:
            self.stable_label.setText(f"The tiled map could not be compared with the squash map: {exc}")


def _ids(indices: list[int]) -> str:
    if not indices:
        return "none"
    shown = ", ".join(str(i) for i in indices[:12])
    return shown + (f" and {len(indices) - 12} more" if len(indices) > 12 else "")


__all__ = ["TilingControls"]
