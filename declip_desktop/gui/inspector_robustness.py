"""Joins agreement across models and stability under re-compression to the inspector (issue 19).

Renders `gui.agreement_view.RobustnessState`: an "Agreement" overlay layer with its mode
(count / spread), and the "Flagged by" and "Stable in" columns of the regions table. The
inspector calls `show_evidence` on every change of item and `regions_ready` when the regions
at a threshold are listed; loading maps and computing run on the thread pool.
"""

from __future__ import annotations

import numpy as np
import shiboken6
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QImage, QPixmap, QTransform
from PySide6.QtWidgets import QComboBox, QGraphicsPixmapItem

from declip_desktop.gui.agreement_view import MODES, ItemMaps, RobustnessState
from declip_desktop.gui.background import run_background
from declip_desktop.gui.case_access import own_case
from declip_desktop.gui.inspector_model import Layer

LAYER_Z = 1.5  # above the heat map, below the mask and outlines


def _load(case, evidence_id: int, analysis_id: int) -> ItemMaps:  # noqa: ANN001 - a Case
    from declip_desktop.cases.model_agreement import results_per_model
    from declip_desktop.cases.stability_store import latest_check

    with own_case(case) as private:
        results = results_per_model(private, evidence_id)
        maps, names = [], []
        for a in results:
            m = private.load_map(a)  # hash-checked
            if maps and m.shape != maps[0].shape:
                from declip_desktop.common.agreement import same_size

                m = same_size(m, maps[0].shape)
            maps.append(m)
            names.append(a.model_name)
        return ItemMaps(names=names, maps=maps, stability=latest_check(private, evidence_id, analysis_id))


class RobustnessPanel(QObject):
    def __init__(self, inspector):
        super().__init__(inspector)
        self.inspector = inspector
        self.state = RobustnessState()
        self.layer = QGraphicsPixmapItem()
        self.layer.setZValue(LAYER_Z)
        self.layer.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        inspector.view.scene().addItem(self.layer)
        check = inspector.add_overlay_layer(
            Layer("agreement", "Agreement", False, "Per pixel, across the models that analysed this item: how many "
                  "flag it (amber: one only, red: all) or how much their probabilities differ (spread)"),
            self.layer)
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(list(MODES))
        self.mode_combo.setToolTip("Agreement view: count of models above the threshold, or spread of their "
                                   "probabilities")
        self.mode_combo.currentTextChanged.connect(self.set_mode)
        bar = inspector._layer_bar  # noqa: SLF001 - the inspector's own layer bar
        bar.insertWidget(bar.indexOf(check) + 1, self.mode_combo)
        model = inspector.regions_model
        model.add_column("Flagged by", self.state.agreement_cell)
        model.add_column("Stable in", lambda region: self.state.stability_cell(region, inspector.model.threshold))
        self._rgba: np.ndarray | None = None  # keeps the QImage's buffer alive

    # ------------------------------------------------------------------ inspector hooks
    def show_evidence(self, case, ev, analysis) -> None:  # noqa: ANN001
        token = self.state.clear()
        self._show(None)
        if case is None or ev is None or analysis is None or not analysis.ok:
            return
        run_background(lambda: _load(case, ev.id, analysis.id), lambda item: self._loaded(token, item),
                       lambda e, d: self._failed(token, e, d))

    def reload(self) -> None:
        """Read the current item's maps and stability check again (e.g. a check just finished)."""
        ins = self.inspector
        self.show_evidence(ins.case, ins.evidence, ins.analysis)

    def regions_ready(self) -> None:
        """The regions table lists the regions at the inspector's threshold: compute their columns."""
        if self.state.item is None:
            return
        self._compute()

    def set_mode(self, mode: str) -> None:
        self.state.set_mode(mode)
        if self.state.item is not None:
            self._compute()

    # ------------------------------------------------------------------ work
    def _loaded(self, token: int, item: ItemMaps) -> None:
        if token != self.state.token:
            return
        self.state.set_item(item)
        self._compute()

    def _compute(self) -> None:
        token, threshold = self.state.token, self.inspector.model.threshold
        state = self.state
        run_background(lambda: state.compute(threshold), lambda view: self._computed(token, view),
                       lambda e, d: self._failed(token, e, d))

    def _computed(self, token: int, view) -> None:  # noqa: ANN001
        if token != self.state.token or not shiboken6.isValid(self.layer):
            return
        if abs(view.threshold - self.inspector.model.threshold) > 1e-9:
            return  # the threshold moved on; the next regions_ready computes again
        self.state.view = view
        self._show(view.rgba)
        self.inspector.regions_model.refresh_columns()
        if view.note:
            self.inspector.regions_note.setText(self.inspector.regions_note.text().split("\n")[0] + "\n" + view.note)

    def _show(self, rgba: np.ndarray | None) -> None:
        self._rgba = None if rgba is None else np.ascontiguousarray(rgba)
        if self._rgba is None:
            self.layer.setPixmap(QPixmap())
            return
        h, w = self._rgba.shape[:2]
        image = QImage(self._rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
        self.layer.setPixmap(QPixmap.fromImage(image))
        size = self.inspector.view.image_size()
        if size:
            self.layer.setTransform(QTransform.fromScale(size[0] / w, size[1] / h))

    def _failed(self, token: int, exc: Exception, detail: str) -> None:
        if token != self.state.token:
            return
        self.inspector.errorOccurred.emit(f"The agreement and stability of this item could not be shown: {exc}",
                                          detail)


__all__ = ["RobustnessPanel"]
