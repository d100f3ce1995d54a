"""The inspector widget: renders `gui.inspector_model.InspectorModel` (the selected evidence,
its threshold and view mode) as the heat map, mask, regions, details and review box.

Everything that can take longer than a frame (decoding the photo, loading the map,
full-resolution region statistics) runs on the thread pool; results that arrive for
an evidence item or threshold the analyst has already left are dropped (the model's tokens).
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QRectF, QSignalBlocker, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QSlider,
    QSplitter,
    QTableView,
    QTabWidget,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from declip_desktop.cases.records import VERDICTS
from declip_desktop.common.regions import COLORMAPS
from declip_desktop.gui.background import run_background
from declip_desktop.gui.image_view import ImageView, build_pyramid
from declip_desktop.gui.inspector_model import (
    FLICKER_MS,
    NOTES_SAVE_DELAY_MS,
    REGIONS_DELAY_MS,
    THRESHOLD_SAVE_DELAY_MS,
    InspectorModel,
)
from declip_desktop.gui.inspector_parts import ColourScale, Loaded, RegionsModel, decode_to_qimage, details_html
from declip_desktop.gui.render import DisplayMap, RegionResult, compute_regions

log = logging.getLogger("declip_desktop.gui")

SLIDER_STEPS = 1000  # threshold resolution of the slider: 0.001


class Inspector(QWidget):
    """Image view + controls + regions/details tabs + review box for one evidence item."""

    reviewSaved = Signal(int)  # evidence id, after a verdict/notes/threshold write
    errorOccurred = Signal(str, str)  # message, detail
    thresholdChanged = Signal(float)

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.model = InspectorModel()
        self.prob_map: np.ndarray | None = None
        self.display_map: DisplayMap | None = None
        self.region_result: RegionResult | None = None
        self._saving_enabled = True
        self._build_ui()
        # The timers' purposes and delays are the model's (gui.inspector_model).
        self._notes_timer = QTimer(self, singleShot=True, interval=NOTES_SAVE_DELAY_MS)
        self._notes_timer.timeout.connect(self._save_notes)
        self._threshold_timer = QTimer(self, singleShot=True, interval=THRESHOLD_SAVE_DELAY_MS)
        self._threshold_timer.timeout.connect(self._save_threshold)
        self._regions_timer = QTimer(self, singleShot=True, interval=REGIONS_DELAY_MS)
        self._regions_timer.timeout.connect(self._start_regions)
        self._flicker_timer = QTimer(self, interval=FLICKER_MS)
        self._flicker_timer.timeout.connect(self.model.flicker_tick)
        self.model.on("view", self._update_visibility)
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
    def _build_ui(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        # --- view controls
        bar = QHBoxLayout()
        self.fit_button = self._tool("Fit", "Fit the image in the view (Ctrl+0)")
        self.one_button = self._tool("1:1", "Actual pixels (Ctrl+1)")
        self.zoom_out_button = self._tool("−", "Zoom out (Ctrl+-)")
        self.zoom_in_button = self._tool("+", "Zoom in (Ctrl+=)")
        self.zoom_label = QLabel("—")
        self.zoom_label.setMinimumWidth(48)
        for w in (self.fit_button, self.one_button, self.zoom_out_button, self.zoom_in_button, self.zoom_label):
            bar.addWidget(w)
        bar.addSpacing(12)
        self.layer_checks: dict[str, QCheckBox] = {}
        for layer in self.model.layers:
            box = QCheckBox(layer.label)
            box.setChecked(layer.visible)
            box.setToolTip(layer.tip)
            box.toggled.connect(lambda on, name=layer.name: self.model.set_layer_visible(name, on))
            self.layer_checks[layer.name] = box
            bar.addWidget(box)
        self.heat_check, self.mask_check = self.layer_checks["heat"], self.layer_checks["mask"]
        self.outline_check = self.layer_checks["outlines"]
        bar.addSpacing(12)
        self.compare_button = self._tool("Side by side", "Original and overlay next to each other")
        self.compare_button.setCheckable(True)
        self.compare_button.toggled.connect(self.set_side_by_side)
        self.flicker_button = self._tool("Flicker", "Alternate the overlay on and off (F)")
        self.flicker_button.setCheckable(True)
        self.flicker_button.toggled.connect(self.set_flicker)
        bar.addWidget(self.compare_button)
        bar.addWidget(self.flicker_button)
        bar.addStretch(1)
        self.colormap_combo = QComboBox()
        self.colormap_combo.addItems(list(COLORMAPS))
        self.colormap_combo.setCurrentText(self.settings.colormap)
        self.colormap_combo.setToolTip("Colour map of the heat overlay")
        self.colormap_combo.currentTextChanged.connect(self._colormap_changed)
        bar.addWidget(self.colormap_combo)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(round(self.settings.opacity * 100))
        self.opacity_slider.setFixedWidth(90)
        self.opacity_slider.setToolTip("Opacity of the heat overlay")
        self.opacity_slider.valueChanged.connect(self._opacity_changed)
        bar.addWidget(QLabel("Opacity"))
        bar.addWidget(self.opacity_slider)
        outer.addLayout(bar)
        self.fit_button.clicked.connect(self.fit)
        self.one_button.clicked.connect(self.actual_size)
        self.zoom_in_button.clicked.connect(lambda: self.zoom_by(1.25))
        self.zoom_out_button.clicked.connect(lambda: self.zoom_by(0.8))
        # --- threshold
        tbar = QHBoxLayout()
        tbar.addWidget(QLabel("Threshold"))
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(0, SLIDER_STEPS)
        self.threshold_slider.setMinimumWidth(160)
        self.threshold_slider.setToolTip("Pixels with a probability above the threshold form the mask ([ and ])")
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.0, 1.0)
        self.threshold_spin.setDecimals(3)
        self.threshold_spin.setSingleStep(0.01)
        self.threshold_slider.valueChanged.connect(lambda v: self.set_threshold(v / SLIDER_STEPS, source="slider"))
        self.threshold_spin.valueChanged.connect(lambda v: self.set_threshold(v, source="spin"))
        tbar.addWidget(self.threshold_slider, 2)
        tbar.addWidget(self.threshold_spin)
        self.colour_scale = ColourScale()
        self.colour_scale.set_colormap(self.settings.colormap)
        tbar.addWidget(self.colour_scale, 1)
        self.mask_label = QLabel("")
        self.mask_label.setMinimumWidth(150)
        tbar.addWidget(self.mask_label)
        outer.addLayout(tbar)
        # --- views + side panel
        split = QSplitter(Qt.Orientation.Horizontal)
        views = QSplitter(Qt.Orientation.Horizontal)
        self.view = ImageView()
        self.compare_view = ImageView()
        self.compare_view.setVisible(False)
        views.addWidget(self.compare_view)
        views.addWidget(self.view)
        self.views_splitter = views
        self.view.zoomChanged.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
        self.view.viewChanged.connect(self._sync_compare)
        split.addWidget(views)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(4, 0, 0, 0)
        self.tabs = QTabWidget()
        self.regions_model = RegionsModel(self)
        self.regions_proxy = QSortFilterProxyModel(self)
        self.regions_proxy.setSourceModel(self.regions_model)
        self.regions_proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.regions_table = QTableView()
        self.regions_table.setModel(self.regions_proxy)
        self.regions_table.setSortingEnabled(True)
        self.regions_table.verticalHeader().setVisible(False)
        self.regions_table.setWordWrap(False)
        self.regions_table.verticalHeader().setDefaultSectionSize(self.regions_table.fontMetrics().height() + 8)
        self.regions_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.regions_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.regions_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        # Interactive widths: ResizeToContents would measure every row on each change.
        self.regions_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for col, width in enumerate((40, 112, 118, 46, 46)):
            self.regions_table.setColumnWidth(col, width)
        self.regions_table.horizontalHeader().setStretchLastSection(True)
        self.regions_table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.regions_table.selectionModel().selectionChanged.connect(lambda *_: self._region_selected())
        regions_page = QWidget()
        rl = QVBoxLayout(regions_page)
        rl.setContentsMargins(0, 0, 0, 0)
        self.regions_note = QLabel("")
        self.regions_note.setWordWrap(True)
        rl.addWidget(self.regions_note)
        rl.addWidget(self.regions_table, 1)
        self.tabs.addTab(regions_page, "Regions")
        self.details = QTextBrowser()
        self.details.setOpenLinks(False)
        self.tabs.addTab(self.details, "Details")
        side_layout.addWidget(self.tabs, 3)
        review = QGroupBox("Review")
        form = QFormLayout(review)
        self.verdict_combo = QComboBox()
        self.verdict_combo.addItems(list(VERDICTS))
        self.verdict_combo.currentTextChanged.connect(self._verdict_changed)
        form.addRow("Verdict", self.verdict_combo)
        self.notes_edit = QPlainTextEdit()
        self.notes_edit.setPlaceholderText("Notes (saved automatically as you type)")
        self.notes_edit.textChanged.connect(self._notes_changed)
        form.addRow("Notes", self.notes_edit)
        self.saved_label = QLabel("")
        self.saved_label.setStyleSheet("color: #6b7280")
        form.addRow("", self.saved_label)
        side_layout.addWidget(review, 2)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([760, 330])
        self.splitter = split
        outer.addWidget(split, 1)
        self.placeholder = QLabel("")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setStyleSheet("color: #6b7280; font-size: 14pt")
        self.placeholder.setWordWrap(True)
        outer.addWidget(self.placeholder)
        self._set_threshold_widgets(self.model.threshold)
        self._opacity_changed(self.opacity_slider.value())

    def _tool(self, text: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        return button

    # ================================================================================== content
    def set_case(self, case) -> None:
        self.flush()
        self.model.set_case(case)
        self.show_evidence(None)

    def show_evidence(self, evidence_id: int | None) -> None:
        """Switch to an evidence item (None: nothing selected)."""
        self.flush()
        try:
            selected = self.model.select(evidence_id)
        except Exception as exc:  # e.g. the case folder went away
            self.errorOccurred.emit(f"Evidence {evidence_id} could not be read: {exc}", repr(exc))
            selected = False
        self.prob_map = None
        self.display_map = None
        self.region_result = None
        self.view.set_image(None)
        self.compare_view.set_image(None)
        self.regions_model.set_regions([])
        self.mask_label.setText("")
        self.details.clear()
        self.regions_note.setText("")
        if not selected:
            self._set_review_enabled(False)
            self.placeholder.setText("Select an evidence item to inspect it." if self.case else "")
            self.placeholder.setVisible(True)
            self.splitter.setVisible(False)
            return
        ev, analysis, case = self.model.evidence, self.model.analysis, self.model.case
        path = case.evidence_file(ev)
        self.placeholder.setVisible(False)
        self.splitter.setVisible(True)
        self._fill_review(ev)
        self._set_threshold_widgets(self.model.threshold)
        self.details.setHtml(details_html(ev, analysis))
        if not self.model.analysis_ok:
            why = "not analysed yet" if analysis is None else f"analysis failed: {analysis.error}"
            self.regions_note.setText(f"No probability map: {why}.")
        token = self.model.load_token
        wants_map = self.model.analysis_ok

        def load() -> Loaded:
            levels = build_pyramid(decode_to_qimage(path))
            prob = display = None
            error = None
            if wants_map:
                try:
                    prob = case.load_map(analysis)
                    display = DisplayMap(prob)
                except Exception as exc:  # a changed map file fails its hash check here
                    error = str(exc)
            return Loaded(ev.id, levels, prob, display, error)

        run_background(load, lambda result: self._loaded(token, result), lambda e, d: self._load_failed(token, e, d))

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

    def _loaded(self, token: int, result: Loaded) -> None:
        if not self.model.is_current(token):
            return  # the analyst has moved on
        if result.map_error:
            self.regions_note.setText(f"The probability map could not be loaded: {result.map_error}")
            self.errorOccurred.emit(
                f"The probability map of {self.evidence.original_name} could not be loaded.", result.map_error
            )
        self.display(result.levels, result.prob_map, result.display)

    def display(self, levels: list[QImage], prob_map: np.ndarray | None, display_map: DisplayMap | None = None) -> None:
        """Show an image pyramid and its map (also used by benchmarks/gui_threshold.py)."""
        self.placeholder.setVisible(False)
        self.splitter.setVisible(True)
        self.view.set_image(levels)
        self.compare_view.set_image(levels)
        self.prob_map = prob_map
        if prob_map is not None and display_map is None:
            display_map = DisplayMap(prob_map)
        self.display_map = display_map
        self.region_result = None
        self.model.has_map = self.display_map is not None
        if self.display_map is not None:
            self.view.set_heat(self.display_map.heat_image(self.colormap_combo.currentText()))
            self._apply_threshold(self.model.threshold)
        self._update_visibility()

    def _load_failed(self, token: int, exc: Exception, detail: str) -> None:
        if not self.model.is_current(token):
            return
        name = self.evidence.original_name if self.evidence else "the evidence"
        self.regions_note.setText(f"The image could not be shown: {exc}")
        self.errorOccurred.emit(f"{name} could not be shown: {exc}", detail)

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
        if self.model.threshold_dirty:
            self._threshold_timer.start()

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
        if token != self.model.regions_token or self.prob_map is None:
            return
        self.region_result = result
        self.view.set_outlines(result.outlines)
        self.model.live_edges = False
        self._update_visibility()
        self.regions_model.set_regions(result.regions)
        note = f"{len(result.regions)} region(s) above {result.threshold:.3f}, {result.mask_pct:.2f} % of the image"
        if len(result.regions) >= 1000:
            note += " (largest 1000 listed)"
        if result.truncated:
            note += "; outlines of the smallest regions not drawn"
        self.regions_note.setText(note)
        self.mask_label.setText(f"{result.mask_pct:.2f} % above threshold")

    def _region_selected(self) -> None:
        rows = self.regions_table.selectionModel().selectedRows()
        if not rows or self.region_result is None:
            self.view.show_selection(None)
            return
        region = self.regions_model.regions[self.regions_proxy.mapToSource(rows[0]).row()]
        x, y, w, h = region.bbox
        rect = QRectF(x, y, w, h)
        self.view.show_selection(rect)
        self.view.zoom_to(rect)

    # ================================================================================== view
    def _update_visibility(self) -> None:
        """Draw what the model says is visible (`InspectorModel.visible_layers`)."""
        visible = self.model.visible_layers()
        items = {"heat": self.view.heat_item, "mask": self.view.mask_item, "edges": self.view.edge_item,
                 "outlines": self.view.outline_item}
        for name, item in items.items():
            item.setVisible(visible.get(name, False))

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
    def _set_review_enabled(self, on: bool) -> None:
        self.verdict_combo.setEnabled(on)
        self.notes_edit.setEnabled(on)

    def _fill_review(self, ev) -> None:
        self._saving_enabled = False
        try:
            self.verdict_combo.setCurrentText(ev.verdict or "not reviewed")
            self.notes_edit.setPlainText(ev.notes or "")
            self.saved_label.setText(f"Reviewed by {ev.reviewed_by} at {ev.reviewed_at}" if ev.reviewed_by else "")
        finally:
            self._saving_enabled = True
        self._set_review_enabled(True)

    def _write_review(self, **fields) -> None:
        if self.case is None or self.evidence is None:
            return
        try:
            self.case.set_review(self.evidence.id, analyst=self.settings.analyst or None, **fields)
        except Exception as exc:  # read-only or locked case, disk full …
            self.errorOccurred.emit(f"The review of {self.evidence.original_name} could not be saved: {exc}", repr(exc))
            return
        from datetime import datetime

        self.saved_label.setText(f"Saved {datetime.now():%H:%M:%S}")
        self.reviewSaved.emit(self.evidence.id)

    def _verdict_changed(self, verdict: str) -> None:
        if self._saving_enabled and self.evidence is not None:
            self._write_review(verdict=verdict)

    def _notes_changed(self) -> None:
        if self._saving_enabled and self.evidence is not None:
            self.saved_label.setText("Editing…")
            self._notes_timer.start()

    def _save_notes(self) -> None:
        if self.evidence is not None and self.notes_edit.toPlainText() != (self.evidence.notes or ""):
            self._write_review(notes=self.notes_edit.toPlainText())
            self._refresh_evidence_record()

    def _save_threshold(self) -> None:
        value = self.model.threshold_to_save()
        if value is not None:
            self._write_review(threshold=value)
            self._refresh_evidence_record()

    def _refresh_evidence_record(self) -> None:
        if self.case is not None and self.evidence is not None:
            try:
                self.model.threshold_saved(self.case.get_evidence(self.evidence.id))
            except Exception:
                log.exception("re-reading evidence %s failed", self.evidence.id)

    def flush(self) -> None:
        """Write pending debounced edits now (switching evidence, closing)."""
        if self._notes_timer.isActive():
            self._notes_timer.stop()
            self._save_notes()
        if self._threshold_timer.isActive():
            self._threshold_timer.stop()
            self._save_threshold()
