"""The inspector's widgets: view controls, threshold bar, image views, regions and details tabs,
review box (a mixin of `gui.inspector.Inspector`). The overlay check boxes come from the model's
layers, so a new layer gets its box without touching this file."""

from __future__ import annotations

from PySide6.QtCore import QSortFilterProxyModel, Qt
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
    QProgressBar,
    QSizePolicy,
    QSlider,
    QSplitter,
    QTableView,
    QTabWidget,
    QTextBrowser,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from declip_desktop.cases.records import VERDICTS
from declip_desktop.common.regions import COLORMAPS
from declip_desktop.gui.image_view import ImageView
from declip_desktop.gui.annotation_rows import RegionsTableModel
from declip_desktop.gui.inspector_parts import ColourScale

SLIDER_STEPS = 1000  # threshold resolution of the slider: 0.001


class _ToolBarRow:
    """The few QHBoxLayout calls the bar is built with, onto a QToolBar (which overflows into »)."""

    def __init__(self, toolbar: QToolBar):
        self.toolbar = toolbar

    def addWidget(self, widget: QWidget, *_stretch):  # noqa: N802, ANN201 (the layout's name) -> QAction
        """Returns the tool bar's action for the widget: show or hide it through that action."""
        return self.toolbar.addWidget(widget)

    def addSpacing(self, width: int) -> None:  # noqa: N802
        spacer = QWidget()
        spacer.setFixedWidth(width)
        self.toolbar.addWidget(spacer)

    def addStretch(self, _factor: int = 1) -> None:  # noqa: N802
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.toolbar.addWidget(spacer)


class InspectorLayout:
    """Creates and connects the inspector's child widgets."""

    def _build_ui(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        # --- view controls: a tool bar, so what does not fit at 1280 px goes into its » menu
        toolbar = QToolBar()
        toolbar.setObjectName("inspectorToolBar")
        toolbar.setMovable(False)
        toolbar.setFloatable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.view_toolbar = toolbar
        bar = _ToolBarRow(toolbar)
        self.fit_button = self._tool("Fit", "Fit the image in the view (Ctrl+0)")
        self.one_button = self._tool("1:1", "Actual pixels (Ctrl+1)")
        self.zoom_out_button = self._tool("−", "Zoom out (Ctrl+-)")
        self.zoom_in_button = self._tool("+", "Zoom in (Ctrl+=)")
        self.zoom_label = QLabel("—")
        self.zoom_label.setMinimumWidth(48)
        self.loading_bar = QProgressBar()
        self.loading_bar.setRange(0, 0)  # busy: decoding has no useful percentage
        self.loading_bar.setFixedWidth(60)
        self.loading_bar.setMaximumHeight(12)
        self.loading_bar.setTextVisible(False)
        self.loading_label = QLabel("")
        for w in (self.fit_button, self.one_button, self.zoom_out_button, self.zoom_in_button, self.zoom_label):
            bar.addWidget(w)
        # In a tool bar a widget is shown and hidden through its action (QToolBar.addWidget).
        self.loading_actions = [bar.addWidget(self.loading_bar), bar.addWidget(self.loading_label)]
        for action in self.loading_actions:
            action.setVisible(False)
        bar.addSpacing(12)
        self.layer_checks: dict[str, QCheckBox] = {}
        # The overlay check boxes share one row widget (its own layout: add_overlay_layer inserts there).
        layers_row = QWidget()
        self._layer_bar = QHBoxLayout(layers_row)
        self._layer_bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(layers_row)
        for layer in self.model.layers:
            self._add_layer_check(layer)
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
        outer.addWidget(toolbar)
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
        self.save_threshold_button = self._tool("Save", "Save this threshold as the item's own (Ctrl+S); "
                                                "until then a threshold change only changes the view")
        self.save_threshold_button.clicked.connect(self.save_threshold)
        self.revert_threshold_button = self._tool("Revert", "Back to the item's saved threshold (or the case's default)")
        self.revert_threshold_button.clicked.connect(self.revert_threshold)
        self.threshold_state_label = QLabel("")
        self.threshold_state_label.setStyleSheet("color: #6b7280")
        tbar.addWidget(self.save_threshold_button)
        tbar.addWidget(self.revert_threshold_button)
        tbar.addWidget(self.threshold_state_label)
        self.colour_scale = ColourScale()
        self.colour_scale.set_colormap(self.settings.colormap)
        tbar.addWidget(self.colour_scale, 1)
        self.mask_label = QLabel("")
        self.mask_label.setMinimumWidth(150)
        tbar.addWidget(self.mask_label)
        outer.addLayout(tbar)
        self.integrity_banner = QLabel("")
        self.integrity_banner.setWordWrap(True)
        self.integrity_banner.setStyleSheet("background: #fee2e2; color: #7f1d1d; padding: 6px; font-weight: bold")
        self.integrity_banner.setVisible(False)
        outer.addWidget(self.integrity_banner)
        self.compare_caption = QLabel("")
        self.compare_caption.setVisible(False)
        self.compare_caption.setToolTip("Two-item compare: zoom and pan move both views; Flicker alternates them")
        outer.addWidget(self.compare_caption)
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
        self.regions_model = RegionsTableModel(self)  # regions and the analyst's annotations
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
        for col, width in enumerate((40, 84, 112, 118, 46, 46)):
            self.regions_table.setColumnWidth(col, width)
        # Sized to content once per regions update (Inspector._regions_ready), measuring a bounded
        # number of rows so a thousand regions stay cheap.
        self.regions_table.horizontalHeader().setResizeContentsPrecision(200)
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

    def _add_layer_check(self, layer) -> QCheckBox:
        """A check box for an overlay layer, after the existing ones (or before `before`)."""
        box = QCheckBox(layer.label)
        box.setChecked(layer.visible)
        box.setToolTip(layer.tip)
        box.toggled.connect(lambda on, name=layer.name: self.model.set_layer_visible(name, on))
        names = [existing.name for existing in self.model.layers]
        after = [self.layer_checks[n] for n in names[:names.index(layer.name)] if n in self.layer_checks]
        index = self._layer_bar.indexOf(after[-1]) + 1 if after else self._layer_bar.count()
        self._layer_bar.insertWidget(index, box)
        self.layer_checks[layer.name] = box
        return box

    def _tool(self, text: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        return button
