"""The inspector: the selected evidence with its heat map, mask, regions, details and review.

Everything that can take longer than a frame (decoding the photo, loading the map,
full-resolution region statistics) runs on the thread pool; results that arrive for
an evidence item or threshold the analyst has already left are dropped.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QRectF, QSignalBlocker, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QLinearGradient, QPainter, QPen
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
    QSizePolicy,
    QSlider,
    QSplitter,
    QTableView,
    QTabWidget,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from declip_desktop.common.images import load_rgb
from declip_desktop.common.regions import COLORMAPS
from declip_desktop.gui.background import run_background
from declip_desktop.gui.image_view import ImageView, build_pyramid
from declip_desktop.gui.render import DisplayMap, RegionResult, colormap_rgb, compute_regions

log = logging.getLogger("declip_desktop.gui")

VERDICTS = ("not reviewed", "authentic", "manipulated", "inconclusive")
SLIDER_STEPS = 1000  # threshold resolution of the slider: 0.001
NOTES_DEBOUNCE_MS = 800
THRESHOLD_SAVE_DEBOUNCE_MS = 800
REGIONS_DEBOUNCE_MS = 120
FLICKER_MS = 450


@dataclass
class Loaded:
    """What the background loader hands back for one evidence item."""

    evidence_id: int
    levels: list[QImage]
    prob_map: np.ndarray | None
    display: DisplayMap | None
    map_error: str | None


def decode_to_qimage(path) -> QImage:
    """Decode exactly as the model saw the photo (EXIF orientation, 8-bit RGB)."""
    rgb = load_rgb(path)
    h, w, _ = rgb.shape
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return image.convertToFormat(QImage.Format.Format_RGB32)  # a copy: independent of `rgb`


class ColourScale(QWidget):
    """Horizontal colour bar 0 … 1 with a marker at the threshold."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._colormap = "inferno"
        self._threshold = 0.5
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


class Inspector(QWidget):
    """Image view + controls + regions/details tabs + review box for one evidence item."""

    reviewSaved = Signal(int)  # evidence id, after a verdict/notes/threshold write
    errorOccurred = Signal(str, str)  # message, detail
    thresholdChanged = Signal(float)

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.case = None
        self.evidence = None
        self.analysis = None
        self.prob_map: np.ndarray | None = None
        self.display_map: DisplayMap | None = None
        self.region_result: RegionResult | None = None
        self._load_token = 0
        self._regions_token = 0
        self._threshold = settings.threshold
        self._overlay_on = True
        self._flicker_state = True
        self._saving_enabled = True
        self._build_ui()
        self._notes_timer = QTimer(self, singleShot=True, interval=NOTES_DEBOUNCE_MS)
        self._notes_timer.timeout.connect(self._save_notes)
        self._threshold_timer = QTimer(self, singleShot=True, interval=THRESHOLD_SAVE_DEBOUNCE_MS)
        self._threshold_timer.timeout.connect(self._save_threshold)
        self._regions_timer = QTimer(self, singleShot=True, interval=REGIONS_DEBOUNCE_MS)
        self._regions_timer.timeout.connect(self._start_regions)
        self._flicker_timer = QTimer(self, interval=FLICKER_MS)
        self._flicker_timer.timeout.connect(self._flicker_tick)
        self.set_case(None)

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
        self.heat_check = QCheckBox("Heat")
        self.heat_check.setChecked(True)
        self.heat_check.setToolTip("Show the probability map as a heat overlay")
        self.mask_check = QCheckBox("Mask")
        self.mask_check.setToolTip("Fill the pixels above the threshold")
        self.outline_check = QCheckBox("Outlines")
        self.outline_check.setChecked(True)
        self.outline_check.setToolTip("Outline the regions above the threshold")
        for w in (self.heat_check, self.mask_check, self.outline_check):
            w.toggled.connect(self._update_visibility)
            bar.addWidget(w)
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
        self._set_threshold_widgets(self._threshold)
        self._opacity_changed(self.opacity_slider.value())

    def _tool(self, text: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        return button

    # ================================================================================== content
    def set_case(self, case) -> None:
        self.flush()
        self.case = case
        self.show_evidence(None)

    def show_evidence(self, evidence_id: int | None) -> None:
        """Switch to an evidence item (None: nothing selected)."""
        self.flush()
        self._load_token += 1
        self._regions_token += 1
        self.evidence = None
        self.analysis = None
        self.prob_map = None
        self.display_map = None
        self.region_result = None
        self.view.set_image(None)
        self.compare_view.set_image(None)
        self.regions_model.set_regions([])
        self.mask_label.setText("")
        self.details.clear()
        self.regions_note.setText("")
        if self.case is None or evidence_id is None:
            self._set_review_enabled(False)
            self.placeholder.setText("Select an evidence item to inspect it." if self.case else "")
            self.placeholder.setVisible(True)
            self.splitter.setVisible(False)
            return
        try:
            ev = self.case.get_evidence(evidence_id)
            analysis = self.case.latest_analysis(evidence_id)
            path = self.case.evidence_file(ev)
        except Exception as exc:  # e.g. the case folder went away
            self.errorOccurred.emit(f"Evidence {evidence_id} could not be read: {exc}", repr(exc))
            return
        self.placeholder.setVisible(False)
        self.splitter.setVisible(True)
        self.evidence = ev
        self.analysis = analysis
        self._fill_review(ev)
        threshold = ev.threshold if ev.threshold is not None else self.settings.threshold
        self._threshold = float(threshold)
        self._set_threshold_widgets(self._threshold)
        self._fill_details()
        if analysis is None or not getattr(analysis, "ok", False):
            why = "not analysed yet" if analysis is None else f"analysis failed: {analysis.error}"
            self.regions_note.setText(f"No probability map: {why}.")
        token = self._load_token
        case = self.case
        wants_map = analysis is not None and getattr(analysis, "ok", False)

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

    def _loaded(self, token: int, result: Loaded) -> None:
        if token != self._load_token:
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
        if self.display_map is not None:
            self.view.set_heat(self.display_map.heat_image(self.colormap_combo.currentText()))
            self._apply_threshold(self._threshold)
        self._update_visibility()

    def _load_failed(self, token: int, exc: Exception, detail: str) -> None:
        if token != self._load_token:
            return
        name = self.evidence.original_name if self.evidence else "the evidence"
        self.regions_note.setText(f"The image could not be shown: {exc}")
        self.errorOccurred.emit(f"{name} could not be shown: {exc}", detail)

    # ================================================================================== threshold
    @property
    def threshold(self) -> float:
        return self._threshold

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
        if abs(value - self._threshold) < 1e-9 and source != "api":
            return
        self._threshold = value
        self._apply_threshold(value)
        self.thresholdChanged.emit(value)
        if self.evidence is not None:
            self._threshold_timer.start()

    def nudge_threshold(self, delta: float) -> None:
        self.set_threshold(round(self._threshold + delta, 3))

    def _apply_threshold(self, value: float) -> None:
        """The live part of a threshold change: display-copy mask and edges (≤ 30 ms on 12 MP)."""
        if self.display_map is None:
            return
        self.view.set_mask(self.display_map.mask_image(value))
        self.view.set_edges(self.display_map.edge_image(value))
        self.view.outline_item.setVisible(False)  # vector outlines belong to the previous threshold
        self._live_edges = True
        self._update_visibility()
        self._regions_timer.start()

    def _start_regions(self) -> None:
        if self.prob_map is None:
            return
        self._regions_token += 1
        token = self._regions_token
        prob, threshold = self.prob_map, self._threshold
        run_background(
            lambda: compute_regions(prob, threshold),
            lambda result: self._regions_ready(token, result),
            lambda e, d: self.errorOccurred.emit(f"Regions could not be computed: {e}", d),
        )

    def _regions_ready(self, token: int, result: RegionResult) -> None:
        if token != self._regions_token or self.prob_map is None:
            return
        self.region_result = result
        self.view.set_outlines(result.outlines)
        self._live_edges = False
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
        has_map = self.display_map is not None
        shown = has_map and self._overlay_on and (self._flicker_state or not self._flicker_timer.isActive())
        self.view.heat_item.setVisible(shown and self.heat_check.isChecked())
        self.view.mask_item.setVisible(shown and self.mask_check.isChecked())
        outlines = shown and self.outline_check.isChecked()
        live = getattr(self, "_live_edges", True)
        self.view.edge_item.setVisible(outlines and live)
        self.view.outline_item.setVisible(outlines and not live)

    def toggle_overlay(self) -> None:
        self._overlay_on = not self._overlay_on
        self._update_visibility()

    @property
    def overlay_visible(self) -> bool:
        return self.view.heat_item.isVisible() or self.view.mask_item.isVisible() or self.view.outline_item.isVisible() or self.view.edge_item.isVisible()

    def set_flicker(self, on: bool) -> None:
        with QSignalBlocker(self.flicker_button):
            self.flicker_button.setChecked(on)
        self._flicker_state = True
        if on:
            self._flicker_timer.start()
        else:
            self._flicker_timer.stop()
        self._update_visibility()

    def toggle_flicker(self) -> None:
        self.set_flicker(not self._flicker_timer.isActive())

    def _flicker_tick(self) -> None:
        self._flicker_state = not self._flicker_state
        self._update_visibility()

    def set_side_by_side(self, on: bool) -> None:
        with QSignalBlocker(self.compare_button):
            self.compare_button.setChecked(on)
        self.compare_view.setVisible(on)
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
    def _fill_details(self) -> None:
        ev, an = self.evidence, self.analysis
        exif = (ev.metadata or {}).get("exif") or {}
        rows = [
            ("File", ev.original_name),
            ("Imported from", ev.original_path),
            ("Size", f"{ev.size:,} bytes"),
            ("Format", f"{ev.format}, {ev.width} × {ev.height} px"),
            ("SHA-256", f"<code>{ev.sha256}</code>"),
            ("MD5", f"<code>{ev.md5}</code>"),
            ("Imported", f"{ev.imported_at} by {ev.imported_by}"),
        ]
        camera = " ".join(str(exif[k]) for k in ("camera_make", "camera_model") if exif.get(k))
        rows += [
            ("Camera", camera or "—"),
            ("Captured", str(exif.get("captured") or "—")),
            ("Software", str(exif.get("software") or "—")),
        ]
        parts = ["<h3>Evidence</h3>", _table(rows)]
        if an is not None:
            model_rows = [
                ("Model", an.model_name),
                ("Model SHA-256", f"<code>{an.model_sha256}</code>"),
                ("Device", an.device or "—"),
                ("Seconds", f"{an.seconds:.2f}" if an.seconds is not None else "—"),
                ("Finished", an.finished or "—"),
                ("Software", an.software_version),
            ]
            if an.ok:
                model_rows.insert(0, ("Image score", f"{an.score:.4f}" if an.score is not None else "—"))
            else:
                model_rows.insert(0, ("Error", f"<span style='color:#b91c1c'>{html.escape(str(an.error))}</span>"))
            parts += ["<h3>Analysis</h3>", _table(model_rows)]
        else:
            parts.append("<p><i>Not analysed yet.</i></p>")
        self.details.setHtml("".join(parts))

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
        if self.evidence is not None and self.evidence.threshold != self._threshold:
            self._write_review(threshold=self._threshold)
            self._refresh_evidence_record()

    def _refresh_evidence_record(self) -> None:
        if self.case is not None and self.evidence is not None:
            try:
                self.evidence = self.case.get_evidence(self.evidence.id)
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


class RegionsModel(QAbstractTableModel):
    """Regions above the threshold; UserRole gives the numeric sort key."""

    HEADERS = ("#", "Area % (px)", "Box x, y  w×h", "Mean", "Max")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.regions: list = []

    def set_regions(self, regions: list) -> None:
        self.beginResetModel()
        self.regions = list(regions)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.regions)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        region = self.regions[index.row()]
        col = index.column()
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


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(
        f"<tr><td style='color:#6b7280;padding-right:8px;white-space:nowrap'>{html.escape(k)}</td>"
        f"<td>{v if v.startswith('<') else html.escape(v)}</td></tr>"
        for k, v in rows
    )
    return f"<table cellspacing='2'>{body}</table>"
