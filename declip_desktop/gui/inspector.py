"""The inspector widget: renders `gui.inspector_model.InspectorModel` (the selected evidence,
its threshold and view mode) as the heat map, mask, regions, details and review box.

Everything that can take longer than a frame (decoding the photo, loading the map,
full-resolution region statistics) runs on the thread pool; results that arrive for
an evidence item or threshold the analyst has already left are dropped (the model's tokens).
"""

from __future__ import annotations

import logging

import numpy as np
import shiboken6
from PySide6.QtCore import QRectF, QSignalBlocker, QTimer, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QWidget

from declip_desktop.gui.background import run_background
from declip_desktop.gui.forensics_panel import ForensicsPanel
from declip_desktop.gui.inspector_annotations import AnnotationControls
from declip_desktop.gui.inspector_layout import SLIDER_STEPS, InspectorLayout
from declip_desktop.gui.inspector_model import FLICKER_MS, NOTES_SAVE_DELAY_MS, REGIONS_DELAY_MS, InspectorModel
from declip_desktop.gui.inspector_parts import details_html
from declip_desktop.gui.inspector_compare import CompareControls
from declip_desktop.gui.inspector_loading import LoadingControls
from declip_desktop.gui.inspector_review import ReviewControls
from declip_desktop.gui.inspector_tiling import TilingControls
from declip_desktop.gui.inspector_robustness import RobustnessPanel
from declip_desktop.gui.review_history import ReviewHistory
from declip_desktop.gui.render import DisplayMap, RegionResult, compute_regions

log = logging.getLogger("declip_desktop.gui")


class Inspector(InspectorLayout, ReviewControls, CompareControls, LoadingControls, AnnotationControls, TilingControls, QWidget):
    """Image view + controls + regions/details tabs + review box for one evidence item."""

    reviewSaved = Signal(int)  # evidence id, after a verdict/notes/threshold write
    errorOccurred = Signal(str, str)  # message, detail
    thresholdChanged = Signal(float)
    showEvidenceRequested = Signal(int)  # undo/redo changed another item: the window selects it
    integrityFound = Signal(int, str)  # evidence id, state ("missing", "changed", …; "" = intact again)
    readout = Signal(str)  # x, y, RGB and probability under the cursor ("" off the image)

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.model = InspectorModel()
        self.history = ReviewHistory()
        self._extra_layer_items: dict = {}  # name → QGraphicsItem of layers added with add_overlay_layer
        self.prob_map: np.ndarray | None = None
        self.display_map: DisplayMap | None = None
        self.region_result: RegionResult | None = None
        self._saving_enabled = True
        self._build_ui()
        self.forensics = ForensicsPanel(self)  # Metadata and Views tabs, forensic overlays (issue 17)
        self.robustness = RobustnessPanel(self)  # agreement view, Flagged by / Stable in columns (issue 19)
        self._init_compare()
        self._init_annotations()  # box / lasso annotations (gui.inspector_annotations)
        self._init_tiling()  # squash/tiled map switch, stable regions (gui.inspector_tiling)
        # The timers' purposes and delays are the model's (gui.inspector_model).
        self._notes_timer = QTimer(self, singleShot=True, interval=NOTES_SAVE_DELAY_MS)
        self._notes_timer.timeout.connect(self._save_notes)
        self._regions_timer = QTimer(self, singleShot=True, interval=REGIONS_DELAY_MS)
        self._regions_timer.timeout.connect(self._start_regions)
        self._flicker_timer = QTimer(self, interval=FLICKER_MS)
        self._flicker_timer.timeout.connect(self.model.flicker_tick)
        self.model.on("view", self._update_visibility)
        self.model.on("view", self._flicker_items)
        self.model.on("integrity", self._apply_lock)
        self.set_case(None)

    # The current item lives in the model; these read it for the window and the tests.
    @property
    def case(self):
        return self.model.case

    @property
    def evidence(self):
        return self.model.evidence

    @property
    def analysis(self):
        return self.model.analysis

    # ================================================================================== UI

    # ================================================================================== content
    def set_case(self, case) -> None:
        self.flush()
        self.history.clear()
        self.model.set_case(case)
        self.model.set_integrity({})
        self.show_evidence(None)

    def set_integrity(self, states: dict[int, str]) -> None:
        """{evidence id: state} of the items whose file is missing or changed; their review locks."""
        self.model.set_integrity(states)

    def show_evidence(self, evidence_id: int | None) -> None:
        """Switch to an evidence item (None: nothing selected)."""
        self.flush()
        self.stop_comparing()
        self._set_loading(False)
        try:
            selected = self.model.select(evidence_id)
        except Exception as exc:  # e.g. the case folder went away
            self.errorOccurred.emit(f"Evidence {evidence_id} could not be read: {exc}", repr(exc))
            selected = False
        self._choose_map()  # an item analysed in tiled mode: which of its two maps to show
        self.prob_map = None
        self.display_map = None
        self.region_result = None
        self.view.set_image(None)
        self.compare_view.set_image(None)
        self.regions_model.set_regions([])
        self._load_annotations()
        self.mask_label.setText("")
        self.details.clear()
        self.regions_note.setText("")
        if not selected:
            self.integrity_banner.setVisible(False)
            self._set_review_enabled(False)
            self.forensics.show_evidence(self.case, None)
            self.robustness.show_evidence(None, None, None)
            self.placeholder.setText("Select an evidence item to inspect it." if self.case else "")
            self.placeholder.setVisible(True)
            self.splitter.setVisible(False)
            return
        ev, analysis, case = self.model.evidence, self.model.analysis, self.model.case
        path = case.evidence_file(ev)
        self.placeholder.setVisible(False)
        self.splitter.setVisible(True)
        self._fill_review(ev)
        self._apply_lock()
        self._set_threshold_widgets(self.model.threshold)
        self.details.setHtml(details_html(ev, analysis))
        self.forensics.show_evidence(case, ev)
        self.robustness.show_evidence(case, ev, analysis)
        if not self.model.analysis_ok:
            why = "not analysed yet" if analysis is None else f"analysis failed: {analysis.error}"
            self.regions_note.setText(f"No probability map: {why}.")
        token = self.model.load_token
        wants_map = self.model.analysis_ok

        self._start_load(ev, analysis, path, token, wants_map)

    def refresh_current(self) -> None:
        """Reload the current item (e.g. its analysis just finished)."""
        if self.evidence is not None:
            self.show_evidence(self.evidence.id)

    def case_threshold_changed(self) -> None:
        """The case's default threshold changed: an item without its own shows the new one."""
        before = self.model.threshold
        try:
            self.model.case_default_changed()
        except Exception as exc:  # an unreadable setting: say so, keep what is shown
            self.errorOccurred.emit(f"The case's default threshold could not be read: {exc}", repr(exc))
            return
        if self.model.threshold != before:
            self._set_threshold_widgets(self.model.threshold)
            self._apply_threshold(self.model.threshold)
            self.thresholdChanged.emit(self.model.threshold)

    def display(self, levels: list[QImage], prob_map: np.ndarray | None, display_map: DisplayMap | None = None) -> None:
        """Show an image pyramid and its map (also used by benchmarks/gui_threshold.py). A preview
        of the same item already on screen is refined in place: zoom and pan stay."""
        self.placeholder.setVisible(False)
        self.splitter.setVisible(True)
        if not (self.view.showing_preview() and self.view.replace_levels(levels)):
            self.view.set_image(levels)
        if not (self.compare_view.showing_preview() and self.compare_view.replace_levels(levels)):
            self.compare_view.set_image(levels)
        self.prob_map = prob_map
        if prob_map is not None and display_map is None:
            display_map = DisplayMap(prob_map)
        self.display_map = display_map
        self.region_result = None
        self.model.has_map = self.display_map is not None
        self._annotation_stats_for_map()
        if self.display_map is not None:
            self.view.set_heat(self.display_map.heat_image(self.colormap_combo.currentText()))
            self._apply_threshold(self.model.threshold)
        self._update_visibility()

    # ================================================================================== threshold
    @property
    def threshold(self) -> float:
        return self.model.threshold

    def _set_threshold_widgets(self, value: float) -> None:
        with QSignalBlocker(self.threshold_slider), QSignalBlocker(self.threshold_spin):
            self.threshold_slider.setValue(round(value * SLIDER_STEPS))
            self.threshold_spin.setValue(value)
        self.colour_scale.set_threshold(value)

    def set_threshold(self, value: float, source: str = "api") -> None:
        value = float(min(1.0, max(0.0, value)))
        if source == "slider":
            with QSignalBlocker(self.threshold_spin):
                self.threshold_spin.setValue(value)
        elif source == "spin":
            with QSignalBlocker(self.threshold_slider):
                self.threshold_slider.setValue(round(value * SLIDER_STEPS))
        else:
            self._set_threshold_widgets(value)
        self.colour_scale.set_threshold(value)
        if not self.model.set_threshold(value) and source != "api":
            return
        self._apply_threshold(value)
        self.thresholdChanged.emit(value)
        self._update_threshold_state()

    def nudge_threshold(self, delta: float) -> None:
        self.set_threshold(round(self.model.threshold + delta, 3))

    def _apply_threshold(self, value: float) -> None:
        """The live part of a threshold change: display-copy mask and edges (≤ 30 ms on 12 MP)."""
        if self.display_map is None:
            return
        self.view.set_mask(self.display_map.mask_image(value))
        self.view.set_edges(self.display_map.edge_image(value))
        self.view.outline_item.setVisible(False)  # vector outlines belong to the previous threshold
        self.model.live_edges = True
        self._update_visibility()
        self._regions_timer.start()

    def _start_regions(self) -> None:
        if self.prob_map is None:
            return
        self.model.regions_token += 1
        token = self.model.regions_token
        prob, threshold = self.prob_map, self.model.threshold
        run_background(
            lambda: compute_regions(prob, threshold),
            lambda result: self._regions_ready(token, result),
            lambda e, d: self.errorOccurred.emit(f"Regions could not be computed: {e}", d),
        )

    def _regions_ready(self, token: int, result: RegionResult) -> None:
        if not shiboken6.isValid(self.view.outline_item):
            return  # the widget was closed while the regions were computed
        if token != self.model.regions_token or self.prob_map is None:
            return
        self.region_result = result
        self.view.set_outlines(result.outlines)
        self.model.live_edges = False
        self._update_visibility()
        self.regions_model.set_regions(result.regions)
        self.regions_table.resizeColumnsToContents()
        note = f"{len(result.regions)} region(s) above {result.threshold:.3f}, {result.mask_pct:.2f} % of the image"
        if len(result.regions) >= 1000:
            note += " (largest 1000 listed)"
        if result.truncated:
            note += "; outlines of the smallest regions not drawn"
        self.regions_note.setText(note)
        self.mask_label.setText(f"{result.mask_pct:.2f} % above threshold")
        self.robustness.regions_ready()

    def _region_selected(self) -> None:
        rows = self.regions_table.selectionModel().selectedRows()
        row = self.regions_proxy.mapToSource(rows[0]).row() if rows else None
        self._annotation_row_selected(row)
        if row is None or (self.region_result is None and self.regions_model.annotation_at_row(row) is None):
            self.view.show_selection(None)
            return
        x, y, w, h = self.regions_model.bbox_of(row)
        rect = QRectF(x, y, w, h)
        self.view.show_selection(rect)
        if not self.quiet_selection:
            self.view.zoom_to(rect)

    # ================================================================================== view
    def _update_visibility(self) -> None:
        """Draw what the model says is visible (`InspectorModel.visible_layers`)."""
        visible = self.model.visible_layers()
        for name, item in self._layer_items().items():
            item.setVisible(visible.get(name, False))

    def _layer_items(self) -> dict:
        items = {"heat": self.view.heat_item, "mask": self.view.mask_item, "edges": self.view.edge_item,
                 "outlines": self.view.outline_item}
        return {**items, **self._extra_layer_items}

    def add_overlay_layer(self, layer, item, before: str | None = None):
        """Hook for new overlays (e.g. another forensic map): `layer` is an
        `inspector_model.Layer`, `item` the QGraphicsItem in `self.view`'s scene that draws it.
        The model decides its visibility (overlay, flicker, its check box) like the built-in ones."""
        self.model.add_layer(layer, before=before)
        self._extra_layer_items[layer.name] = item
        self._add_layer_check(layer)
        self._update_visibility()
        return self.layer_checks[layer.name]

    def toggle_overlay(self) -> None:
        self.model.toggle_overlay()

    @property
    def overlay_visible(self) -> bool:
        return self.view.heat_item.isVisible() or self.view.mask_item.isVisible() or self.view.outline_item.isVisible() or self.view.edge_item.isVisible()

    def set_flicker(self, on: bool) -> None:
        with QSignalBlocker(self.flicker_button):
            self.flicker_button.setChecked(on)
        if on:
            self._flicker_timer.start()
        else:
            self._flicker_timer.stop()
        self.model.set_flicker(on)

    def toggle_flicker(self) -> None:
        self.set_flicker(not self.model.flicker_on)

    def set_side_by_side(self, on: bool) -> None:
        with QSignalBlocker(self.compare_button):
            self.compare_button.setChecked(on)
        self.compare_view.setVisible(on)
        self.model.set_side_by_side(on)
        if on:
            total = sum(self.views_splitter.sizes())
            self.views_splitter.setSizes([total // 2, total - total // 2])
            QTimer.singleShot(0, self._sync_compare)

    def _sync_compare(self) -> None:
        if self.compare_view.isVisible():
            self.compare_view.follow(self.view)

    def fit(self) -> None:
        self.view.fit()

    def actual_size(self) -> None:
        self.view.actual_size()

    def zoom_by(self, factor: float) -> None:
        self.view.zoom_by(factor)

    def _colormap_changed(self, name: str) -> None:
        self.settings.colormap = name
        self.colour_scale.set_colormap(name)
        if self.display_map is not None:
            self.view.set_heat(self.display_map.heat_image(name))
            self._update_visibility()

    def _opacity_changed(self, value: int) -> None:
        self.view.heat_item.setOpacity(value / 100.0)
        self.settings.opacity = value / 100.0

    # ================================================================================== details
    # ================================================================================== review


