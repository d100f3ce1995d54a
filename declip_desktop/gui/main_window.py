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
import traceback
from pathlib import Path

from PySide6.QtCore import QByteArray, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QMainWindow

from declip_desktop.common.facts import CASE_DB_NAME
from declip_desktop.common.version import SOFTWARE_NAME, software_id
from declip_desktop.cases.previews import thumbnail_and_preview
from declip_desktop.gui.background import run_background
from declip_desktop.gui.forensics_panel import refresh_badges
from declip_desktop.gui.integrity import quick_states
from declip_desktop.gui.notifications import NotificationCenter
from declip_desktop.gui.services import EngineServices
from declip_desktop.gui.settings import Settings
from declip_desktop.gui.window_analysis import AnalysisControls
from declip_desktop.gui.window_import import ImportControls
from declip_desktop.gui.window_layout import WindowLayout
from declip_desktop.gui.window_tiling import TilingAnalysis
from declip_desktop.gui.worker import WorkerController

log = logging.getLogger("declip_desktop.gui")


def _no_engine(*_args, **_kwargs):
    raise RuntimeError("no analysis engine is connected to this window (start it with `declip-desktop`)")


class MainWindow(WindowLayout, ImportControls, AnalysisControls, TilingAnalysis, QMainWindow):
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
        self.integrity_states: dict[int, str] = {}  # evidence id → gui.integrity state (file not intact)
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
        from declip_desktop.gui.appearance import apply_appearance

        apply_appearance(self.settings.appearance)
        # File → Export report… / Export images… (reports area, through add_action).
        from declip_desktop.gui.report_action import install_report_actions

        self.report_actions = install_report_actions(self)
        # Analysis → Run on cluster… (gui/cluster_dialog.py; Ray only once the analyst connects).
        from declip_desktop.gui.cluster_dialog import install_cluster_action

        self.cluster_action = install_cluster_action(self)
        from declip_desktop.gui.case_properties import install_case_properties

        self.case_properties_action = install_case_properties(self)
        from declip_desktop.gui.verify_action import install_verify_action

        self.verify = install_verify_action(self)
        from declip_desktop.gui.calibration_actions import install_calibration  # references, calibrated readings

        self.calibration = install_calibration(self)
        from declip_desktop.gui.evidence_tags import install_tag_controls

        self.tags = install_tag_controls(self)  # tags and bookmarks on evidence (cases.tags)
        # Analysis → Analyse with several models… / Check stability under re-compression (issue 19).
        from declip_desktop.gui.robustness_actions import install_robustness_actions

        self.robustness_actions = install_robustness_actions(self)
        self._restore_geometry()
        self.notifications.posted.connect(self._audit_notice)

    # ======================================================================== layout

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
        try:
            self.integrity_states = quick_states(case)  # one lstat per item: a deleted file shows at once
        except Exception:
            log.exception("checking the evidence files failed")
            self.integrity_states = {}
        self.evidence_panel.set_integrity(self.integrity_states)
        self.inspector.set_integrity(self.integrity_states)
        self.controller = WorkerController(Path(case.path), self.services, self)
        worker = self.controller.worker
        worker.progress.connect(self._on_progress)
        worker.run_started.connect(self._on_run_started)
        worker.run_finished.connect(self._on_run_finished)
        worker.model_ready.connect(self._on_model_ready)
        worker.estimate_ready.connect(self._on_tiling_estimate)
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
                           controller.worker.model_ready, controller.worker.notice, controller.worker.estimate_ready):
                signal.disconnect()
            controller.retire()
            self._loading_model = False
            self._retiring.append(controller)
            controller.thread.finished.connect(lambda c=controller: self._retired(c))
        self.inspector.set_case(None)
        self.integrity_states = {}
        self.evidence_panel.set_integrity({})
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

    def set_integrity_states(self, states: dict[int, str], replace: bool = False) -> None:
        """Mark evidence whose file is missing or changed (`replace`: `states` is the whole
        picture, e.g. a finished verify; otherwise it updates those items, "" = intact again)."""
        merged = {} if replace else dict(self.integrity_states)
        merged.update(states)
        self.integrity_states = {k: v for k, v in merged.items() if v}
        self.evidence_panel.set_integrity(self.integrity_states)
        self.inspector.set_integrity(self.integrity_states)

    def _integrity_found(self, evidence_id: int, state: str) -> None:
        if (self.integrity_states.get(evidence_id) or "") == state:
            return
        self.set_integrity_states({evidence_id: state})
        if state:
            name = self.case.get_evidence(evidence_id).original_name if self.case is not None else str(evidence_id)
            from declip_desktop.gui.integrity import STATE_TEXT

            self.notifications.warning(f"{name}: {STATE_TEXT.get(state, state)}; its review is locked. "
                                       "Case → Verify integrity checks the whole case.")

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
        refresh_badges(self.evidence_panel, self.case)

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

            # A large PNG/TIFF gets its inspector preview from the same decode (cases.previews).
            run_background(lambda: thumbnail_and_preview(case, evidence_id), done, failed)
        return None

    # ======================================================================== import

    # ======================================================================== analysis

    def reveal_evidence(self, evidence_id: int) -> None:
        if self.case is None:
            return
        try:
            path = self.case.evidence_file(self.case.get_evidence(evidence_id))
        except Exception as exc:
            self.notifications.error(f"The file could not be found: {exc}", traceback.format_exc())
            return
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent)))

    # ======================================================================== models

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
