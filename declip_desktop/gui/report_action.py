"""File → Export report… and File → Export images… for the main window.

`install_report_actions(window)` adds both actions through the window's public hook
(`MainWindow.add_action`). The work itself is `reports.build_report` / `reports.export_images`
(the same functions as the CLI), run on a worker thread while a progress dialog shows which
item is being drawn; Cancel stops between items and keeps nothing.
"""

from __future__ import annotations

import traceback
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QProgressDialog

from declip_desktop.common.progress import CancelToken
from declip_desktop.gui.background import run_background


class _Progress(QObject):
    """Created on the UI thread; the worker's emits are queued to it."""

    step = Signal(int, int, str)


class ReportJob:
    """One report or image export running in the background (kept by the window until done)."""

    def __init__(self, window, kind: str, evidence_ids: list[int] | None, target: Path, layout: str = "full",
                 signer=None):  # noqa: ANN001 - cases.signing.Signer: sign the report (PAdES and .sig)
        self.window = window
        self.signer = signer
        self.layout = layout  # "full" | "compact" (reports only)
        self.kind = kind  # "report" | "images"
        self.evidence_ids = evidence_ids
        self.target = target
        self.result = None
        self.error: str | None = None
        self.finished = False
        self._stop = CancelToken()
        self._relay = _Progress()
        self.dialog = QProgressDialog("Preparing…", "Cancel", 0, 0, window)
        self.dialog.setWindowTitle("Export report" if kind == "report" else "Export images")
        self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog.setMinimumDuration(300)
        self.dialog.canceled.connect(self._stop.set)
        self._relay.step.connect(self._show_step)

    def _show_step(self, done: int, total: int, text: str) -> None:
        if self.finished:
            return
        self.dialog.setMaximum(max(total, 1))
        self.dialog.setValue(min(done, total))
        self.dialog.setLabelText(f"{done + 1 if done < total else total} of {total}: {text}")

    def start(self) -> None:
        from declip_desktop.reports.fonts import report_families

        report_families()  # load the bundled font on the UI thread, before any worker paints text
        case = self.window.case
        emit = self._relay.step.emit
        # Thresholds follow the case's rule (cases.case_settings), as in the inspector and the CLI.
        def work():
            if self.kind == "report":
                from declip_desktop.reports import build_report

                return build_report(
                    case, out_path=self.target, evidence_ids=self.evidence_ids,
                    progress=emit, should_stop=self._stop, layout=self.layout, signer=self.signer,
                    force=True,  # the save dialog already asked before replacing a file
                )
            from declip_desktop.reports import export_images

            # The analyst chose this folder for the export: same-named exports in it are replaced.
            return export_images(case, self.evidence_ids, self.target, progress=emit, force=True)

        run_background(work, self._done, self._failed)

    def _close_dialog(self) -> None:
        self.finished = True
        self.dialog.canceled.disconnect(self._stop.set)
        self.dialog.reset()
        self.dialog.hide()
        self.dialog.deleteLater()
        jobs = getattr(self.window, "_report_jobs", [])
        if self in jobs:
            jobs.remove(self)

    def _done(self, result) -> None:
        self._close_dialog()
        self.result = result
        notes = self.window.notifications
        if self.kind == "report":
            notes.info(
                f"Report saved to {self.target}",
                f"The report is also kept in the case as {result.path} and its SHA-256 is in the audit log.",
            )
        else:
            skipped = "\n".join(f"evidence {i}: {r}" for i, r in result.skipped)
            message = f"Exported {len(result.written)} image(s) to {result.folder}"
            if result.skipped:
                notes.warning(message + f"; {len(result.skipped)} item(s) had nothing to export", skipped)
            else:
                notes.info(message)

    def _failed(self, exc: Exception, detail: str) -> None:
        self._close_dialog()
        from declip_desktop.reports import ReportCancelled, ReportError

        if isinstance(exc, ReportCancelled):
            self.error = str(exc)
            self.window.notifications.info("Report cancelled; no file was kept.")
            return
        self.error = str(exc)
        if isinstance(exc, ReportError):
            self.window.notifications.error(f"The report could not be made: {exc}")
        else:  # a bug: show the trace in the details
            self.window.notifications.error(f"The report could not be made: {exc}", detail)


def start_job(window, kind: str, target: Path, evidence_ids: list[int] | None, layout: str = "full",
              signer=None) -> ReportJob:  # noqa: ANN001
    """Start a report/image export without dialogs (the menu actions and tests use it)."""
    job = ReportJob(window, kind, evidence_ids, Path(target), layout, signer)
    if not hasattr(window, "_report_jobs"):
        window._report_jobs = []
    window._report_jobs.append(job)
    try:
        job.start()
    except Exception as exc:  # e.g. the bundled font is missing: say so, keep the window alive
        job._failed(exc, traceback.format_exc())
    return job


def export_report(window) -> ReportJob | None:
    if window.case is None:
        return None
    from declip_desktop.gui.report_options import ReportOptionsDialog

    selected = list(window.selected_evidence_ids() or [])
    options = ReportOptionsDialog(selected, len(window.case.evidence_list()), window)
    if not options.exec():
        return None
    from declip_desktop.cases import CaseError

    try:
        signer = options.signer()
    except CaseError as exc:
        window.notifications.error(f"The report could not be signed: {exc}")
        return None
    from declip_desktop.reports.build import safe_file_stem

    suggested = Path.home() / f"{safe_file_stem(window.case.info.number)}-report-{datetime.now():%Y%m%d-%H%M}.pdf"
    path, _ = QFileDialog.getSaveFileName(window, "Export report", str(suggested), "PDF files (*.pdf)")
    if not path:
        return None
    if not path.lower().endswith(".pdf"):
        path += ".pdf"
    return start_job(window, "report", Path(path), options.evidence_ids(), options.report_layout(), signer)


def export_images_action(window) -> ReportJob | None:
    if window.case is None:
        return None
    selected = list(window.selected_evidence_ids() or []) or None
    folder = QFileDialog.getExistingDirectory(window, "Export annotated images and masks to…", str(Path.home()))
    if not folder:
        return None
    return start_job(window, "images", Path(folder), selected)


def install_report_actions(window) -> list[QAction]:
    """Add File → Export report… / Export images… and keep them enabled only with a case open."""
    report = QAction("Export &report (PDF)…", window)
    report.setShortcut("Ctrl+Shift+E")
    report.setStatusTip("Make a PDF report of the whole case or of the selected evidence")
    report.triggered.connect(lambda _checked=False: export_report(window))
    images = QAction("Export annotated &images…", window)
    images.setStatusTip("Write the overlay with outlines and the mask of each analysed item as PNG")
    images.triggered.connect(lambda _checked=False: export_images_action(window))
    actions = [report, images]
    for action in actions:
        window.add_action("File", action)
        action.setEnabled(window.case is not None)

    def enable(on: bool) -> None:
        for action in actions:
            action.setEnabled(on)

    window.caseOpened.connect(lambda _case: enable(True))
    window.caseClosed.connect(lambda: enable(False))
    return actions
