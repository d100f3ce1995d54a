"""The main window: start screen or an open case (evidence list + inspector), menus, status.

Extension points for other parts of the application (reports, downloads):

- `MainWindow.add_action(menu_name, action, section=None)` puts a QAction in the
  menu of that name ("File", "Analysis", "Models", "View", "Help"; created if new).
  In "File" the action lands in the export section, above "Close case".
- `MainWindow.menus[name]` is the QMenu itself.
- `MainWindow.case` is the open `cases.Case` (or None); `selected_evidence_ids()`
  gives the analyst's selection; `notifications` posts non-blocking messages;
  `caseOpened` / `caseClosed` signals follow the open case.
"""

from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QActionGroup, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from declip_desktop.analysis import waiting_evidence
from declip_desktop.cases.case_settings import pin_model, pinned_model, set_case_threshold
from declip_desktop.common.facts import CASE_DB_NAME, DEMO_LABEL, card_is_demo
from declip_desktop.common.version import SOFTWARE_NAME, software_id
from declip_desktop.gui.background import run_background
from declip_desktop.gui.evidence_panel import EvidencePanel
from declip_desktop.gui.inspector import Inspector
from declip_desktop.gui.models_dialog import ModelsDialog, default_model_name, describe_model, find_card
from declip_desktop.gui.notifications import MessageLog, NotificationBar, NotificationCenter
from declip_desktop.gui.progress_relay import ProgressRelay
from declip_desktop.gui.services import EngineServices
from declip_desktop.gui.settings import Settings
from declip_desktop.gui.start_page import StartPage
from declip_desktop.gui.worker import RunRequest, WorkerController

log = logging.getLogger("declip_desktop.gui")



def _no_engine(*_args, **_kwargs):
    raise RuntimeError("no analysis engine is connected to this window (start it with `declip-desktop`)")


class MainWindow(QMainWindow):
    caseOpened = Signal(object)  # Case
    caseClosed = Signal()
    analysisFinished = Signal(str)  # reason

    def __init__(self, settings: Settings | None = None, device: str | None = None, fast: bool | None = None,
                 services: EngineServices | None = None):
        super().__init__()
        self.settings = settings or Settings()
        # The engine comes from the application (declip_desktop.desktop); without it the window
        # still opens cases, and an analysis says why it cannot run.
        self.services = services or EngineServices(_no_engine, _no_engine)
        if device:
            self.settings.device = device
        if fast is not None:
            self.settings.fast = fast
        self.case = None
        self.controller: WorkerController | None = None
        self.notifications = NotificationCenter(self)
        self.menus: dict[str, object] = {}
        self._file_export_separator = None
        self._run_total = 0
        self._run_done = 0
        self._thumbs: dict[int, Path | None] = {}
        self._thumbs_pending: set[int] = set()
        self._imports_running = 0
        self._closing = False
        self._retiring: list[WorkerController] = []
        self._loading_model = False
        self.setWindowTitle(SOFTWARE_NAME)
        self.setAcceptDrops(True)
        self._build_ui()
        self._build_menus()
        # File → Export report… / Export images… (reports area, through add_action).
        from declip_desktop.gui.report_action import install_report_actions

        self.report_actions = install_report_actions(self)
        self._restore_geometry()
        self.notifications.posted.connect(self._audit_notice)

    # ======================================================================== layout
    def _build_ui(self) -> None:
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.notification_bar = NotificationBar(self.notifications)
        layout.addWidget(self.notification_bar)
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
        self.case_view.setSizes([360, 920])
        self.stack.addWidget(self.case_view)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.evidence_panel.currentEvidenceChanged.connect(self._evidence_selected)
        self.evidence_panel.reanalyseRequested.connect(self.reanalyse_with_model)
        self.evidence_panel.revealRequested.connect(self.reveal_evidence)
        self.evidence_panel.dequeueRequested.connect(self.dequeue)
        self.inspector.errorOccurred.connect(lambda m, d: self.notifications.error(m, d))
        self.inspector.reviewSaved.connect(self._review_saved)
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
        self._action("View", "Threshold &up", lambda: self.inspector.nudge_threshold(0.01), ["]", "Ctrl+Up"])
        self._action("View", "Threshold &down", lambda: self.inspector.nudge_threshold(-0.01), ["[", "Ctrl+Down"])
        self._action("View", "Use this threshold as the case's &default", self._set_default_threshold,
                     tip="Items of this case without a threshold of their own open (and are reported) at this one; audit-logged")
        self._menu("View").addSeparator()
        self._action("View", "Zoom &in", lambda: self.inspector.zoom_by(1.25), [QKeySequence.StandardKey.ZoomIn, "Ctrl+="])
        self._action("View", "Zoom o&ut", lambda: self.inspector.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut)
        self._action("View", "&Fit", self.inspector.fit, "Ctrl+0")
        self._action("View", "&Actual pixels (1:1)", self.inspector.actual_size, "Ctrl+1")
        self._menu("View").addSeparator()
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

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_cases():
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _c=False, p=path: self.open_case(p))
        if not self.settings.recent_cases():
            self.recent_menu.addAction("(none)").setEnabled(False)

    def _update_actions(self) -> None:
        has_case = self.case is not None
        for action in (self.import_files_action, self.import_folder_action, self.close_case_action, self.analyse_action):
            action.setEnabled(has_case)
        # A model load on opening a case is not a run: no progress bar, pause or cancel for it.
        pending = self.controller.pending if self.controller is not None else 0
        running = pending > (1 if self._loading_model else 0)
        self.pause_action.setEnabled(running)
        self.cancel_action.setEnabled(running)
        self.pause_button.setVisible(running)
        self.cancel_button.setVisible(running)
        self.progress_bar.setVisible(running)
        self.eta_label.setVisible(running)

    def _update_title(self) -> None:
        if self.case is None:
            self.setWindowTitle(SOFTWARE_NAME)
            return
        info = self.case.info
        self.setWindowTitle(f"{info.number} — {info.title} — {SOFTWARE_NAME}")

    # ======================================================================== cases
    def show_start(self) -> None:
        self.start_page.refresh_recent()
        self.stack.setCurrentWidget(self.start_page)

    def choose_case_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open case folder")
        if folder:
            self.open_case(folder)

    def create_case(self, folder: str, number: str, title: str, analyst: str) -> bool:
        from declip_desktop.cases import Case

        try:
            case = Case.create(folder, number, title, analyst)
        except Exception as exc:
            self.start_page.show_error(str(exc))
            self.notifications.error(f"The case could not be created: {exc}", traceback.format_exc())
            return False
        self.settings.analyst = analyst
        self._set_case(case)
        return True

    def open_case(self, folder: str | Path, restore_evidence: bool = True) -> bool:
        from declip_desktop.cases import Case

        folder = str(folder)
        if self.case is not None and Path(self.case.path).resolve() == Path(folder).resolve():
            self.stack.setCurrentWidget(self.case_view)
            return True
        try:
            case = Case.open(folder, analyst=self.settings.analyst or None)
        except Exception as exc:
            self.notifications.error(f"The case could not be opened: {exc}", traceback.format_exc())
            self.start_page.show_error(str(exc))
            return False
        self._set_case(case, restore_evidence=restore_evidence)
        return True

    def _set_case(self, case, restore_evidence: bool = True) -> None:
        self.close_case(go_to_start=False)
        self.case = case
        path = str(Path(case.path).resolve())
        self.settings.add_recent_case(path)
        self.settings.last_case = path
        self._thumbs.clear()
        self._thumbs_pending.clear()
        self.inspector.set_case(case)
        self.controller = WorkerController(Path(case.path), self.services, self)
        worker = self.controller.worker
        worker.progress.connect(self._on_progress)
        worker.run_started.connect(self._on_run_started)
        worker.run_finished.connect(self._on_run_finished)
        worker.model_ready.connect(self._on_model_ready)
        worker.notice.connect(lambda level, msg, detail: self.notifications.post(level, msg, detail))
        self.reload_evidence()
        self.stack.setCurrentWidget(self.case_view)
        self._update_title()
        self._update_model_label()
        self._update_actions()
        if restore_evidence:
            last = self.settings.last_evidence(path)
            if last is None or not self.evidence_panel.select_evidence(last):
                self.evidence_panel.step(1)
        else:
            self.evidence_panel.step(1)
        self.caseOpened.emit(case)
        # Resume what a previous session left in the queue; otherwise load the model now,
        # while the analyst looks at the case, so the first drop starts at once.
        if self._queued_ids():
            self.start_analysis()
        else:
            self.load_model()

    def close_case(self, go_to_start: bool = True) -> None:
        if self.case is None:
            if go_to_start:
                self.show_start()
            return
        self.inspector.flush()
        self.settings.set_last_evidence(str(Path(self.case.path).resolve()), self.evidence_panel.current_evidence_id())
        if self.controller is not None:
            # Stops after the image in flight (stored by the worker's own case connection);
            # the rest stays queued. The UI does not wait: the thread ends on its own.
            controller = self.controller
            self.controller = None
            for signal in (controller.worker.progress, controller.worker.run_started, controller.worker.run_finished,
                           controller.worker.model_ready, controller.worker.notice):
                signal.disconnect()
            controller.retire()
            self._loading_model = False
            self._retiring.append(controller)
            controller.thread.finished.connect(lambda c=controller: self._retired(c))
        self.inspector.set_case(None)
        self.evidence_panel.set_content([], [])
        try:
            self.case.close()
        except Exception:
            log.exception("closing the case failed")
        self.case = None
        self._update_title()
        self._update_actions()
        self.model_label.setText("")
        self.caseClosed.emit()
        if go_to_start:
            self.settings.last_case = ""
            self.show_start()

    def _retired(self, controller: WorkerController) -> None:
        if controller in self._retiring:
            self._retiring.remove(controller)
            controller.deleteLater()

    def wait_for_workers(self, wait_ms: int = 120_000) -> bool:
        """Wait until every analysis thread has ended (quitting only)."""
        ok = True
        for controller in list(self._retiring):
            ok = controller.thread.wait(wait_ms) and ok
        return ok

    def reload_evidence(self) -> None:
        if self.case is None:
            return
        try:
            evidence = self.case.evidence_list()
            rejections = self.case.rejections()
        except Exception as exc:
            self.notifications.error(f"The evidence list could not be read: {exc}", traceback.format_exc())
            return
        self.evidence_panel.set_content(evidence, rejections)

    def selected_evidence_ids(self) -> list[int]:
        return self.evidence_panel.selected_evidence_ids()

    def _evidence_selected(self, evidence_id) -> None:
        self.inspector.show_evidence(evidence_id)
        if self.case is not None:
            self.settings.set_last_evidence(str(Path(self.case.path).resolve()), evidence_id)

    def _review_saved(self, evidence_id: int) -> None:
        try:
            self.evidence_panel.update_evidence(self.case.get_evidence(evidence_id))
        except Exception:
            log.exception("refreshing evidence %s failed", evidence_id)

    def _thumbnail_for(self, evidence_id: int) -> Path | None:
        """Thumbnail path if ready; otherwise made on the thread pool (decoding may be slow)."""
        if evidence_id in self._thumbs:
            return self._thumbs[evidence_id]
        if evidence_id not in self._thumbs_pending and self.case is not None:
            self._thumbs_pending.add(evidence_id)
            case = self.case

            def done(path, eid=evidence_id, owner=case):
                self._thumbs_pending.discard(eid)
                if owner is not self.case:
                    return
                self._thumbs[eid] = path
                if path is not None:
                    try:
                        self.evidence_panel.update_evidence(self.case.get_evidence(eid))
                    except Exception:
                        log.exception("refreshing evidence %s failed", eid)

            def failed(exc, detail, eid=evidence_id):
                self._thumbs_pending.discard(eid)
                self._thumbs[eid] = None
                log.warning("thumbnail of evidence %s failed: %s", eid, detail)

            run_background(lambda: case.thumbnail_file(evidence_id), done, failed)
        return None

    # ======================================================================== import
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.import_paths(paths)

    def choose_import_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Import images into the case")
        if files:
            self.import_paths(files)

    def choose_import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a folder of images into the case")
        if folder:
            self.import_paths([folder])

    def import_paths(self, paths: list[str]) -> None:
        """Import through the case store on the thread pool, then queue and analyse."""
        if self.case is None:
            self.notifications.warning("Open or create a case first, then drop the images again.")
            return
        case = self.case
        relay = ProgressRelay(self)
        relay.counts.connect(lambda done, total, _p: self.activity_label.setText(f"Importing {done}/{total}…"))
        self._imports_running += 1
        self.activity_label.setText("Importing…")
        analyst = self.settings.analyst or None

        def work():
            return case.import_paths(paths, analyst=analyst, progress=lambda d, t, p: relay.counts.emit(d, t, str(p)))

        run_background(work, lambda report: self._imported(case, report), lambda e, d: self._import_failed(case, e, d))

    def _imported(self, case, report) -> None:
        self._imports_running -= 1
        self.activity_label.setText("")
        if case is not self.case:
            return
        self.reload_evidence()
        parts = [f"Imported {len(report.imported)} image(s)"]
        if report.duplicates:
            parts.append(f"{len(report.duplicates)} already in the case")
        if report.rejected:
            parts.append(f"{len(report.rejected)} rejected (listed in the evidence panel)")
        detail = "\n".join(f"{r.path}: {r.reason}" for r in report.rejected)
        if report.duplicates:
            detail += ("\n" if detail else "") + "\n".join(
                f"{p}: duplicate of evidence {eid}" for p, eid in report.duplicates
            )
        level = "warning" if report.rejected else "info"
        self.notifications.post(level, "; ".join(parts) + ".", detail)
        if report.imported and self.evidence_panel.current_evidence_id() is None:
            self.evidence_panel.select_evidence(report.imported[0].id)
        if report.imported:
            self.start_analysis()

    def _import_failed(self, case, exc, detail) -> None:
        self._imports_running -= 1
        self.activity_label.setText("")
        self.notifications.error(f"The import failed: {exc}", detail)

    # ======================================================================== analysis
    def _case_model(self) -> str | None:
        """The model the case is pinned to (even if it is missing: the analysis says so), else
        the model a first analysis would pin (the store's default)."""
        if self.case is None:
            return None
        try:
            pin = pinned_model(self.case)
        except Exception:
            log.exception("reading the case's model setting failed")
            pin = None
        return pin.name if pin is not None else default_model_name()

    def _update_model_label(self, device: str | None = None) -> None:
        card = find_card(self._case_model())
        text = f"Model: {describe_model(card)}"
        if device:
            text += f"  ·  {device}"
        self.model_label.setText(text)
        self.model_label.setStyleSheet("color: #b91c1c; font-weight: 600" if card_is_demo(card) else "")

    def _queued_ids(self) -> list[int]:
        """What is waiting: the same function the analysis runs (analysis.waiting_evidence)."""
        if self.case is None:
            return []
        try:
            pin = pinned_model(self.case)
            return [ev.id for ev in waiting_evidence(self.case, pin.sha256 if pin is not None else None)]
        except Exception:
            log.exception("reading the queue failed")
            return []

    def start_analysis(self, model: str | None = None, evidence_ids: list[int] | None = None, requeue: bool = False) -> bool:
        if self.case is None or self.controller is None:
            return False
        ids = evidence_ids if evidence_ids is not None else self._queued_ids()
        if not ids:
            self.notifications.info("Nothing is waiting for analysis.")
            return False
        if model is None and self._case_model() is None:
            self.notifications.error(
                "No model is installed. Use Models → Import checkpoint… or Models → Download…, then analyse again."
            )
            return False
        # model None: the session uses the case's pinned model (pinning the default on a first run);
        # a model named here is a one-off re-analysis that leaves the case's model alone.
        request = RunRequest(model=model, device=self.settings.device, fast=self.fast_action.isChecked(),
                             evidence_ids=tuple(ids), requeue=requeue, pin=model is None)
        self.controller.start(request)
        self._run_started_at = time.monotonic()
        paused = self.controller.worker.paused
        self.pause_button.setText("Resume" if paused else "Pause")
        self.activity_label.setText("Paused" if paused else "Loading model…")
        self._update_actions()
        return True

    def load_model(self) -> bool:
        if self.controller is None:
            return False
        if self._case_model() is None:
            return False
        self.controller.start(RunRequest(device=self.settings.device, fast=self.fast_action.isChecked(),
                                         evidence_ids=(), load_only=True))
        self._loading_model = True
        self.activity_label.setText("Loading model…")
        self._update_actions()
        return True

    def _on_run_started(self, total: int) -> None:
        self._run_total = total
        self._run_done = 0
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(0)
        self.activity_label.setText("Analysing…" if total else "")
        self.eta_label.setText("")

    def _on_progress(self, event) -> None:
        if self.case is None:
            return
        self.progress_bar.setRange(0, max(1, event.total))
        self.progress_bar.setValue(event.done)
        if event.eta_seconds is not None and event.status not in ("finished", "stopped"):
            self.eta_label.setText(f"ETA {_format_seconds(event.eta_seconds)}")
        if event.evidence_id is not None:
            try:
                ev = self.case.get_evidence(event.evidence_id)
            except Exception:
                log.exception("reading evidence %s failed", event.evidence_id)
                return
            self.evidence_panel.update_evidence(ev)
            if event.status in ("done", "failed") and self.inspector.evidence is not None \
                    and self.inspector.evidence.id == event.evidence_id:
                self.inspector.refresh_current()
        if event.status == "failed":
            self.notifications.warning(f"Analysis failed for evidence {event.evidence_id}: {event.error}", event.error or "")

    def _on_model_ready(self, info) -> None:
        self._update_model_label(info.device)
        if info.demo:
            self.notifications.warning(
                f"{info.name}: {info.label or DEMO_LABEL}. Import or download a DeCLIP model for real cases."
            )

    def _on_run_finished(self, reason: str, summary) -> None:
        self.activity_label.setText("")
        self.eta_label.setText("")
        if reason == "loaded":
            self._loading_model = False
            self._update_actions()
            return
        if self.case is not None:
            self.reload_evidence()
            if reason == "done" and summary is not None and summary.total:
                msg = f"Analysis finished: {summary.done} done, {summary.failed} failed in {summary.seconds:.1f} s."
                self.notifications.post("warning" if summary.failed else "info", msg,
                                        "\n".join(f"evidence {i}: {e}" for i, e in summary.failures))
            elif reason == "cancelled":
                self.notifications.info("Analysis cancelled; the remaining evidence was taken out of the queue.")
        self._update_actions()
        self.analysisFinished.emit(reason)

    def toggle_pause(self) -> None:
        if self.controller is None or not self.controller.running:
            return
        if self.controller.worker.paused:
            self.controller.resume()
            self.pause_button.setText("Pause")
            self.activity_label.setText("Analysing…")
        else:
            self.controller.pause()
            self.pause_button.setText("Resume")
            self.activity_label.setText("Paused (after the current image)")

    def cancel_analysis(self) -> None:
        if self.controller is not None and self.controller.running:
            self.controller.cancel()
            self.activity_label.setText("Cancelling after the current image…")

    def reanalyse_with_model(self, evidence_ids: list[int]) -> None:
        from declip_desktop.gui.models_dialog import list_models

        cards = list_models()
        if not cards:
            self.notifications.error("No model is installed to re-analyse with.")
            return
        names = [describe_model(c) for c in cards]
        choice, ok = QInputDialog.getItem(self, "Re-analyse", "Model for the re-analysis:", names, 0, False)
        if ok and choice:
            model = cards[names.index(choice)].name
            self.start_analysis(model=model, evidence_ids=evidence_ids, requeue=True)

    def dequeue(self, evidence_ids: list[int]) -> None:
        if self.case is None:
            return
        try:
            self.case.dequeue(evidence_ids, analyst=self.settings.analyst or None)
        except Exception as exc:
            self.notifications.error(f"The queue could not be changed: {exc}", traceback.format_exc())
        self.reload_evidence()

    def reveal_evidence(self, evidence_id: int) -> None:
        if self.case is None:
            return
        try:
            path = self.case.evidence_file(self.case.get_evidence(evidence_id))
        except Exception as exc:
            self.notifications.error(f"The file could not be found: {exc}", traceback.format_exc())
            return
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent)))

    def _set_default_threshold(self) -> None:
        """The case's default threshold (audit-logged); items reviewed with their own keep it."""
        if self.case is None:
            return
        try:
            value = set_case_threshold(self.case, self.inspector.threshold, analyst=self.settings.analyst or None)
        except Exception as exc:
            self.notifications.error(f"The case's default threshold could not be saved: {exc}", traceback.format_exc())
            return
        self.inspector.case_threshold_changed()
        self.notifications.info(f"Default threshold of this case set to {value:.3f} (recorded in the audit log).")

    def _fast_toggled(self, on: bool) -> None:
        self.settings.fast = on

    def _set_device(self, device: str) -> None:
        self.settings.device = device
        self.notifications.info(f"Device set to {device}; it applies to the next analysis run.")

    # ======================================================================== models
    def show_models(self, start_import: bool = False) -> ModelsDialog:
        dialog = ModelsDialog(self._case_model(), self)
        dialog.modelChosen.connect(self._model_chosen)
        dialog.errorOccurred.connect(lambda m, d: self.notifications.error(m, d))
        dialog.modelImported.connect(lambda name: self.notifications.info(f"Model {name} imported."))
        dialog.setModal(False)
        dialog.show()
        if start_import:
            QTimer.singleShot(0, dialog._choose_checkpoint)
        self._models_dialog = dialog
        return dialog

    def _model_chosen(self, name: str) -> None:
        if self.case is None:
            self.notifications.warning("Open a case to choose its model.")
            return
        card = find_card(name)
        try:
            pin_model(self.case, name, card.sha256 if card is not None else None, analyst=self.settings.analyst or None)
        except Exception as exc:
            self.notifications.error(f"The model choice could not be saved: {exc}", traceback.format_exc())
            return
        self._update_model_label()
        self.notifications.info(
            f"New analyses in this case use {name}. Existing results are kept; right-click evidence to re-analyse it."
        )

    def show_downloads(self) -> None:
        try:
            from declip_desktop.gui.download_dialog import open_download_dialog
        except Exception as exc:  # the download feature is optional at run time
            self.notifications.error(f"The download dialog is not available: {exc}", traceback.format_exc())
            return
        self._download_dialog = open_download_dialog(self)
        self._download_dialog.modelInstalled.connect(lambda _name: self._update_model_label())

    def show_about(self) -> None:
        self.notifications.info(
            f"{software_id()} — DeCLIP (Smeu, Oneață, Oneață, WACV 2025) localizes generative edits in photos."
        )

    # ======================================================================== errors, state
    def _audit_notice(self, notice) -> None:
        """Errors and warnings that concern the open case go to its audit log too."""
        if self.case is None or notice.level == "info":
            return
        try:
            self.case.log_event(f"gui.{notice.level}", "case", {"message": notice.message, "detail": notice.detail[:4000]})
        except Exception:
            log.exception("could not audit-log a notification")

    def _restore_geometry(self) -> None:
        geometry = self.settings.qsettings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        state = self.settings.qsettings.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)

    def preload_engine_later(self, delay_ms: int = 300) -> None:
        """Import torch on the thread pool soon after start-up (EngineServices.preload)."""
        preload_engine = self.services.preload

        def failed(exc, detail):
            self.notifications.error(f"The analysis engine could not be loaded: {exc}", detail)

        QTimer.singleShot(delay_ms, lambda: run_background(preload_engine, lambda _r: None, failed))

    def restore_last_case(self) -> None:
        last = self.settings.last_case
        if last and (Path(last) / CASE_DB_NAME).exists():
            self.open_case(last)
        else:
            self.show_start()

    def closeEvent(self, event) -> None:  # noqa: N802
        self._closing = True
        self.settings.qsettings.setValue("window/geometry", self.saveGeometry())
        self.settings.qsettings.setValue("window/state", self.saveState())
        if self.case is not None:
            path = str(Path(self.case.path).resolve())
            self.settings.last_case = path
            # The window disappears at once; the worker finishes its image in the background.
            self.hide()
            self.close_case(go_to_start=False)
            self.settings.last_case = path
        self.settings.qsettings.sync()
        from declip_desktop.gui.background import wait_for_background

        self.hide()
        # The window is gone; finish the image in flight so its result is stored.
        self.wait_for_workers()
        wait_for_background(30_000)
        super().closeEvent(event)


def _format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
