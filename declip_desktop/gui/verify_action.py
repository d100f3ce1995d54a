"""Case → Verify for the main window: the case's integrity checked in the background.

`install_verify_action(window)` adds the action and an "Integrity" panel (a dock). The work is
`Case.verify()` (the same check as `declip case verify`) on its own read-only connection, on
the thread pool, so the window stays usable; the result

- fills the panel: one line per problem, naming the file (the evidence's original name) first,
  double-click selects that evidence;
- goes to the status bar (time and result; remembered per case on this computer);
- marks evidence whose file is missing or changed in the list and locks its review
  (`MainWindow.set_integrity_states`).

Nothing is written to the case: verify is a read-only check, as on the command line.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from declip_desktop.gui.background import run_background
from declip_desktop.gui.integrity import VerifyOutcome, evidence_id_of, run_verify, states_from_report

_KIND_TEXT = {
    "evidence_missing": "evidence file missing", "evidence_changed": "evidence file changed",
    "map_missing": "result map missing", "map_changed": "result map changed",
    "report_missing": "report missing", "report_changed": "report changed", "not_a_file": "not a regular file",
    "unreadable_file": "unreadable file", "unknown_file": "file the case does not list",
    "audit_chain": "audit log broken", "database_integrity": "database damaged",
    "record_changed": "record changed outside the app", "record_missing": "record missing",
    "record_unexplained": "record the audit log does not explain", "interrupted": "interrupted operation",
}
EVIDENCE_ROLE = Qt.ItemDataRole.UserRole + 1


class IntegrityPanel(QWidget):
    """The last verify's result: a summary line and one row per problem (file first)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.summary = QLabel("Not verified in this session. Case → Verify checks every file and the audit log.")
        self.summary.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["File", "Problem", "Detail"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        layout.addWidget(self.summary)
        layout.addWidget(self.tree, 1)

    def show_running(self) -> None:
        self.summary.setText("Verifying… (every file is hashed; the window stays usable)")

    def show_outcome(self, outcome: VerifyOutcome, names: dict[int, str]) -> None:
        report = outcome.report
        self.summary.setText(outcome.summary)
        self.tree.clear()
        for problem in [*report.problems, *getattr(report, "notices", [])]:
            eid = evidence_id_of(problem)
            name = names.get(eid) if eid is not None else None
            item = QTreeWidgetItem([name or str(problem.object), _KIND_TEXT.get(problem.kind, problem.kind),
                                    problem.detail])
            item.setToolTip(2, problem.detail)
            if problem in getattr(report, "notices", []):
                item.setText(1, f"notice: {item.text(1)}")
            if eid is not None:
                item.setData(0, EVIDENCE_ROLE, eid)
            self.tree.addTopLevelItem(item)
        for col in range(2):
            self.tree.resizeColumnToContents(col)


class VerifyController:
    """Runs one verify at a time for the window's open case."""

    def __init__(self, window):
        self.window = window
        self.running = False
        self.last: VerifyOutcome | None = None
        self.panel = IntegrityPanel()
        self.dock = QDockWidget("Integrity", window)
        self.dock.setObjectName("integrityDock")
        self.dock.setWidget(self.panel)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        self.dock.hide()
        self.panel.tree.itemDoubleClicked.connect(self._open_item)
        self.status_label = QLabel("")
        self.status_label.setToolTip("The last Case → Verify of this case (on this computer)")
        window.statusBar().addPermanentWidget(self.status_label)
        self.action = QAction("&Verify integrity", window)
        self.action.setShortcut(QKeySequence("Ctrl+Shift+V"))
        self.action.setStatusTip("Check every evidence file, map and report against its SHA-256, and the audit log")
        self.action.triggered.connect(self.start)
        window.add_action("Case", self.action)
        window.add_action("Case", self.dock.toggleViewAction())
        window.caseOpened.connect(self._case_opened)
        window.caseClosed.connect(self._case_closed)
        self._case_closed()

    def _case_key(self) -> str:
        return str(Path(self.window.case.path).resolve())

    def _case_opened(self, _case) -> None:
        self.action.setEnabled(True)
        last = self.window.settings.last_verify(self._case_key())
        self.status_label.setText(last or "Not verified on this computer yet")

    def _case_closed(self) -> None:
        self.action.setEnabled(False)
        self.status_label.setText("")
        self.last = None

    def start(self) -> None:
        window = self.window
        if window.case is None or self.running:
            return
        self.running = True
        self.action.setEnabled(False)
        case = window.case
        path = case.path
        self.panel.show_running()
        self.dock.show()
        self.status_label.setText("Verifying…")

        def done(report, owner=case):
            self._finished(owner)
            if owner is not window.case:
                return  # the analyst switched cases meanwhile
            self.show_report(report)

        def failed(exc, detail, owner=case):
            self._finished(owner)
            if owner is window.case:
                self.status_label.setText("Verify could not run")
                self.panel.summary.setText(f"The case could not be verified: {exc}")
                window.notifications.error(f"The case could not be verified: {exc}", detail)

        run_background(lambda: run_verify(path), done, failed)

    def _finished(self, owner) -> None:
        self.running = False
        self.action.setEnabled(self.window.case is not None)

    def show_report(self, report) -> None:
        window = self.window
        outcome = VerifyOutcome(datetime.now().strftime("%Y-%m-%d %H:%M:%S"), report)
        self.last = outcome
        try:
            names = {ev.id: ev.original_name for ev in window.case.evidence_list()}
        except Exception:  # the list itself is unreadable: the panel still shows the objects
            names = {}
        self.panel.show_outcome(outcome, names)
        self.status_label.setText(outcome.summary)
        window.settings.set_last_verify(self._case_key(), outcome.summary)
        window.set_integrity_states(states_from_report(report), replace=True)
        if not report.ok:
            window.notifications.warning(f"{outcome.summary}: see the Integrity panel.")

    def _open_item(self, item: QTreeWidgetItem, _col: int) -> None:
        eid = item.data(0, EVIDENCE_ROLE)
        if eid is not None:
            self.window.evidence_panel.select_evidence(int(eid))


def install_verify_action(window) -> VerifyController:
    return VerifyController(window)


__all__ = ["IntegrityPanel", "VerifyController", "install_verify_action"]
