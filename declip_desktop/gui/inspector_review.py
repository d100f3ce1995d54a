"""The inspector's review box: verdict and notes saved to the case as the analyst works, and the
item's threshold saved once the slider rests (a mixin of `gui.inspector.Inspector`)."""

from __future__ import annotations

import logging

log = logging.getLogger("declip_desktop.gui")


class ReviewControls:
    """Reads and writes the current item's review through `Case.set_review` (audit-logged)."""

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
