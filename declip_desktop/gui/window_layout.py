"""The main window's widgets, menus and actions (a mixin of `gui.main_window.MainWindow`).

`add_action` is the public hook other parts of the application use to add menu entries."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from declip_desktop.gui.evidence_panel import EvidencePanel
from declip_desktop.gui.inspector import Inspector
from declip_desktop.gui.notifications import MessageLog, NotificationBar
from declip_desktop.gui.start_page import StartPage


class WindowLayout:
    """Builds the central widgets, the status bar, the menus and their shortcuts."""

    def _build_ui(self) -> None:
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        # An overlay over the top of the content (not in the layout): messages never move it.
        self.notification_bar = NotificationBar(self.notifications, central)
        self.stack = QStackedWidget()
        self.start_page = StartPage(self.settings)
        self.start_page.createRequested.connect(self.create_case)
        self.start_page.openRequested.connect(self.open_case)
        self.stack.addWidget(self.start_page)
        self.case_view = QSplitter(Qt.Orientation.Horizontal)
        self.evidence_panel = EvidencePanel(self._thumbnail_for)
        self.evidence_panel.setMinimumWidth(260)
        self.inspector = Inspector(self.settings)
        self.case_view.addWidget(self.evidence_panel)
        self.case_view.addWidget(self.inspector)
        self.case_view.setStretchFactor(0, 0)
        self.case_view.setStretchFactor(1, 1)
        self.case_view.setSizes([410, 870])  # at 1280 px the names (elided in the middle) stay readable
        self.stack.addWidget(self.case_view)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.evidence_panel.currentEvidenceChanged.connect(self._evidence_selected)
        self.evidence_panel.reanalyseRequested.connect(self.reanalyse_with_model)
        self.evidence_panel.revealRequested.connect(self.reveal_evidence)
        self.evidence_panel.dequeueRequested.connect(self.dequeue)
        self.evidence_panel.compareRequested.connect(self.inspector.compare_with)
        self.inspector.errorOccurred.connect(lambda m, d: self.notifications.error(m, d))
        self.inspector.reviewSaved.connect(self._review_saved)
        self.inspector.integrityFound.connect(self._integrity_found)
        self.inspector.showEvidenceRequested.connect(self.evidence_panel.select_evidence)
        # Drops anywhere go to the window, not into a child widget.
        self.inspector.view.setAcceptDrops(False)
        self.inspector.compare_view.setAcceptDrops(False)
        self.inspector.notes_edit.setAcceptDrops(False)
        # Status bar: model, progress, ETA, pause, cancel.
        status = self.statusBar()
        self.model_label = QLabel("")
        self.model_label.setToolTip("Model used for new analyses in this case (Models → Choose model…)")
        status.addWidget(self.model_label, 1)
        self.activity_label = QLabel("")
        status.addPermanentWidget(self.activity_label)
        self.progress_bar = QProgressBar()
        self.progress_bar.setFixedWidth(200)
        self.progress_bar.setFormat("%v / %m")
        self.progress_bar.setVisible(False)
        status.addPermanentWidget(self.progress_bar)
        self.readout_label = QLabel("")
        self.readout_label.setToolTip("Image pixel under the cursor: position, colour, probability")
        status.addPermanentWidget(self.readout_label)
        self.inspector.readout.connect(self.readout_label.setText)
        self.eta_label = QLabel("")
        status.addPermanentWidget(self.eta_label)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause between two images (the model stays loaded)")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.pause_button.setVisible(False)
        status.addPermanentWidget(self.pause_button)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current image; the rest is taken out of the queue")
        self.cancel_button.clicked.connect(self.cancel_analysis)
        self.cancel_button.setVisible(False)
        status.addPermanentWidget(self.cancel_button)
        # Messages dock (hidden until asked for).
        self.messages_dock = QDockWidget("Messages", self)
        self.messages_dock.setObjectName("messagesDock")
        self.message_log = MessageLog(self.notifications)
        self.messages_dock.setWidget(self.message_log)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.messages_dock)
        self.messages_dock.hide()

    def _menu(self, name: str):
        if name not in self.menus:
            self.menus[name] = self.menuBar().addMenu(f"&{name}")
        return self.menus[name]

    def _action(self, menu: str, text: str, slot, shortcut=None, checkable=False, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            if isinstance(shortcut, (list, tuple)):
                action.setShortcuts([QKeySequence(s) for s in shortcut])
            else:
                action.setShortcut(QKeySequence(shortcut))
        action.setCheckable(checkable)
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        self._menu(menu).addAction(action)
        self.addAction(action)  # shortcuts work even while the menu bar is hidden
        return action

    def _build_menus(self) -> None:
        # File
        self._action("File", "&New case…", self.show_start, QKeySequence.StandardKey.New)
        self._action("File", "&Open case folder…", self.choose_case_folder, QKeySequence.StandardKey.Open)
        self.recent_menu = self._menu("File").addMenu("Recent cases")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._menu("File").addSeparator()
        self.import_files_action = self._action("File", "&Import images…", self.choose_import_files, "Ctrl+I")
        self.import_folder_action = self._action("File", "Import &folder…", self.choose_import_folder, "Ctrl+Shift+I")
        self._file_export_separator = self._menu("File").addSeparator()
        self.close_case_action = self._action("File", "&Close case", self.close_case, "Ctrl+W")
        self._menu("File").addSeparator()
        self._action("File", "&Quit", self.close, QKeySequence.StandardKey.Quit)
        # Edit: undo / redo of review changes (each step is an audit entry; gui.review_history)
        self.undo_action = self._action("Edit", "&Undo", self.inspector.undo_review, QKeySequence.StandardKey.Undo)
        self.redo_action = self._action("Edit", "&Redo", self.inspector.redo_review,
                                        [QKeySequence("Ctrl+Shift+Z"), QKeySequence.StandardKey.Redo])
        self.inspector.history.on_change(self._update_undo_actions)
        self._update_undo_actions()
        self._menu("Case")  # Case → Verify integrity (gui.verify_action) and other case-wide actions
        # Analysis
        self.analyse_action = self._action("Analysis", "&Analyse queued evidence", self.start_analysis, "Ctrl+R")
        self.pause_action = self._action("Analysis", "&Pause / resume", self.toggle_pause, "Ctrl+P")
        self.cancel_action = self._action("Analysis", "&Cancel", self.cancel_analysis, "Ctrl+.")
        self._menu("Analysis").addSeparator()
        self.fast_action = self._action(
            "Analysis", "&Fast mode", self._fast_toggled, checkable=True,
            tip="Faster, slightly less precise inference (the Localizer's fast mode)",
        )
        self.fast_action.setChecked(self.settings.fast)
        self._init_tiling_action()  # Analysis → Tiled analysis (gui.window_tiling)
        device_menu = self._menu("Analysis").addMenu("&Device")
        group = QActionGroup(self)
        for value, text in (("auto", "Automatic (GPU when available)"), ("cpu", "CPU"), ("cuda", "GPU (CUDA)")):
            action = QAction(text, self, checkable=True)
            action.setChecked(self.settings.device == value)
            action.triggered.connect(lambda _c=False, v=value: self._set_device(v))
            group.addAction(action)
            device_menu.addAction(action)
        # Models
        self._action("Models", "&Choose model…", self.show_models, "Ctrl+M")
        self._action("Models", "&Import checkpoint…", lambda: self.show_models(start_import=True))
        self._models_hook_separator = self._menu("Models").addSeparator()
        self._action("Models", "&Download…", self.show_downloads)
        # View
        self._action("View", "&Next evidence", lambda: self.evidence_panel.step(1), ["N", "PgDown"])
        self._action("View", "&Previous evidence", lambda: self.evidence_panel.step(-1), ["P", "PgUp"])
        self._menu("View").addSeparator()
        self._action("View", "Toggle &overlay", self.inspector.toggle_overlay, "O")
        self._action("View", "&Flicker original / overlay", self.inspector.toggle_flicker, "F")
        self._action("View", "&Side by side", lambda: self.inspector.set_side_by_side(not self.inspector.compare_view.isVisible()), "S")
        # Threshold keys act only while the image view has focus (click the image): a key meant
        # for another widget never moves the threshold, and a moved threshold is a view change
        # until saved (Ctrl+S).
        for text, delta, keys in (("Threshold &up", 0.01, ["]", "Ctrl+Up"]), ("Threshold &down", -0.01, ["[", "Ctrl+Down"])):
            action = self._action("View", text, lambda _c=False, d=delta: self.inspector.nudge_threshold(d), keys,
                                  tip="While the image has focus")
            self.removeAction(action)
            action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            self.inspector.view.addAction(action)
            self.inspector.compare_view.addAction(action)
        loupe = self._action("View", "&Loupe", self.inspector.toggle_loupe, "L",
                             tip="Magnify the real pixels under the cursor (while the image has focus)")
        self.removeAction(loupe)
        loupe.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.inspector.view.addAction(loupe)
        annotate_menu = self._menu("View").addMenu("A&nnotate")  # box / lasso (gui.inspector_annotations)
        for action in self.inspector.annotation_actions:
            annotate_menu.addAction(action)
        self._action("View", "Stop &comparing", self.inspector.stop_comparing)
        self._action("View", "&Save threshold for this item", self.inspector.save_threshold,
                     QKeySequence.StandardKey.Save, tip="Keep the threshold on screen as the item's own (audit-logged)")
        self._action("View", "&Revert threshold", self.inspector.revert_threshold)
        self._action("View", "Use this threshold as the case's &default", self._set_default_threshold,
                     tip="Items of this case without a threshold of their own open (and are reported) at this one; audit-logged")
        self._menu("View").addSeparator()
        self._action("View", "Zoom &in", lambda: self.inspector.zoom_by(1.25), [QKeySequence.StandardKey.ZoomIn, "Ctrl+="])
        self._action("View", "Zoom o&ut", lambda: self.inspector.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut)
        self._action("View", "&Fit", self.inspector.fit, "Ctrl+0")
        self._action("View", "&Actual pixels (1:1)", self.inspector.actual_size, "Ctrl+1")
        self._menu("View").addSeparator()
        appearance_menu = self._menu("View").addMenu("A&ppearance")
        appearance_group = QActionGroup(self)
        self.appearance_actions = {}
        for value, text in (("system", "Follow the system"), ("light", "Light"), ("dark", "Dark")):
            action = QAction(text, self, checkable=True)
            action.setChecked(self.settings.appearance == value)
            action.triggered.connect(lambda _c=False, v=value: self.set_appearance(v))
            appearance_group.addAction(action)
            appearance_menu.addAction(action)
            self.appearance_actions[value] = action
        self._menu("View").addAction(self.messages_dock.toggleViewAction())
        # Help
        self._action("Help", "&About", self.show_about)
        self._update_actions()

    def add_action(self, menu_name: str, action: QAction, section: str | None = None) -> QAction:
        """Public hook: add `action` to a menu (see the module docstring)."""
        menu = self._menu(menu_name)
        if menu_name == "File" and self._file_export_separator is not None:
            menu.insertAction(self.close_case_action, action)
        elif menu_name == "Models" and section == "download":
            menu.insertAction(self._models_hook_separator, action)
        else:
            menu.addAction(action)
        self.addAction(action)
        return action

    def set_appearance(self, mode: str) -> None:
        """Light, dark or following the system (remembered)."""
        from declip_desktop.gui.appearance import apply_appearance

        self.settings.appearance = mode
        apply_appearance(mode)
        self.appearance_actions[mode].setChecked(True)

    def _update_undo_actions(self) -> None:
        history = self.inspector.history
        self.undo_action.setEnabled(history.can_undo)
        self.redo_action.setEnabled(history.can_redo)
        self.undo_action.setText(history.undo_text())
        self.redo_action.setText(history.redo_text())

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_cases():
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _c=False, p=path: self.open_case(p))
        if not self.settings.recent_cases():
            self.recent_menu.addAction("(none)").setEnabled(False)
