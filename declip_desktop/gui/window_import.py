"""Importing evidence into the open case: drops anywhere on the window, File → Import… (a mixin
of `gui.main_window.MainWindow`). The import itself runs on the thread pool."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QFileDialog

from declip_desktop.cases.previews import thumbnail_and_preview, wants_preview
from declip_desktop.examination import examine_many
from declip_desktop.gui.background import run_background
from declip_desktop.gui.case_access import own_case
from declip_desktop.gui.progress_relay import ProgressRelay


log = logging.getLogger("declip_desktop.gui")


class ImportControls:
    """Drag and drop and the import actions."""

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
            report = case.import_paths(paths, analyst=analyst, progress=lambda d, t, p: relay.counts.emit(d, t, str(p)))
            # Then metadata/alerts/C2PA of each new item (failures are audit-logged, not raised), on a
            # connection of its own: the analyst may close the case while this runs.
            if report.imported:
                with own_case(case, read_only=False, analyst=analyst) as private:
                    examine_many(private, [e.id for e in report.imported], analyst=analyst,
                                 progress=lambda d, t, _item: relay.counts.emit(d, t, "metadata"))
            return report

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
            self._cache_previews(case, [e.id for e in report.imported if wants_preview(e)])

    @staticmethod
    def _cache_previews(case, ids: list[int]) -> None:
        """Large PNG/TIFF/WebP … get their inspector preview now, one at a time in the background,
        so even their first view shows at once (cases.previews; the thumbnail comes from the same decode)."""
        if ids:
            run_background(lambda: [thumbnail_and_preview(case, i) for i in ids], lambda _paths: None,
                           lambda exc, detail: log.warning("previews could not be cached: %s\n%s", exc, detail))

    def _import_failed(self, case, exc, detail) -> None:
        self._imports_running -= 1
        self.activity_label.setText("")
        self.notifications.error(f"The import failed: {exc}", detail)
