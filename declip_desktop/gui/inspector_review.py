"""The inspector's review box (a mixin of `gui.inspector.Inspector`).

- Verdict and notes are saved to the case as the analyst works (notes once typing pauses).
- The threshold is a *view* setting until the analyst saves it as the item's threshold
  (Save next to the threshold, or setting a verdict, which saves the threshold shown with it):
  a stray key or slider drag never changes the record.
- Every saved change is a step of `review_history.ReviewHistory` (Edit → Undo / Redo); undo
  and redo are ordinary `Case.set_review` writes, so each is an audit entry verify replays.
  Annotation steps (`gui.annotation_steps`) go through `cases.annotations` the same way.
- While the item's file is missing or changed (`gui.integrity`), the review is locked.
"""

from __future__ import annotations

import logging
from datetime import datetime

from declip_desktop.gui.integrity import STATE_TEXT
from declip_desktop.gui.review_history import ReviewStep, StaleStep

log = logging.getLogger("declip_desktop.gui")


class ReviewControls:
    """Reads and writes the current item's review through `Case.set_review` (audit-logged)."""

    def _set_review_enabled(self, on: bool) -> None:
        on = on and not self.model.review_locked
        self.verdict_combo.setEnabled(on)
        self.notes_edit.setEnabled(on)
        self._update_threshold_state()

    def _update_threshold_state(self) -> None:
        """Save / Revert follow the model: enabled only for an unsaved threshold on an unlocked item."""
        dirty = self.model.threshold_dirty and self.model.evidence is not None
        self.save_threshold_button.setEnabled(dirty and not self.model.review_locked)
        self.revert_threshold_button.setEnabled(dirty)
        if self.model.evidence is None:
            text = ""
        elif dirty:
            text = "view only: not saved"
        else:
            text = {"reviewed": "saved for this item", "case": "case default", "default": "default"}.get(
                self.model.threshold_source, "")
        self.threshold_state_label.setText(text)

    def _fill_review(self, ev) -> None:
        self._saving_enabled = False
        try:
            self.verdict_combo.setCurrentText(ev.verdict or "not reviewed")
            self.notes_edit.setPlainText(ev.notes or "")
            self.saved_label.setText(f"Reviewed by {ev.reviewed_by} at {ev.reviewed_at}" if ev.reviewed_by else "")
        finally:
            self._saving_enabled = True
        self._set_review_enabled(True)

    def _apply_lock(self) -> None:
        """Show and enforce the current item's integrity state."""
        problem = self.model.file_problem
        if problem is None:
            self.integrity_banner.setVisible(False)
        else:
            name = self.evidence.original_name if self.evidence is not None else "this item"
            self.integrity_banner.setText(
                f"{name}: {STATE_TEXT.get(problem, problem)}. Its review is locked until the file is restored "
                "and Case → Verify integrity finds it intact.")
            self.integrity_banner.setVisible(True)
        self._set_review_enabled(self.evidence is not None)

    def _write_review(self, *, record: bool = True, **fields) -> bool:
        """Store `fields` (verdict / notes / threshold; threshold None = clear) for the current item."""
        if self.case is None or self.evidence is None:
            return False
        return self._write_review_of(self.evidence, record=record, **fields)

    def _write_review_of(self, ev, *, record: bool = True, **fields) -> bool:
        name = ev.original_name
        if self.model.integrity.get(ev.id):
            self.errorOccurred.emit(f"The review of {name} is locked: "
                                    f"{STATE_TEXT.get(self.model.integrity[ev.id], 'its file is not intact')}.", "")
            return False
        args = dict(fields)
        if "threshold" in args and args["threshold"] is None:
            del args["threshold"]
            args["clear_threshold"] = True
        try:
            before = self.case.get_evidence(ev.id)
            updated = self.case.set_review(ev.id, analyst=self.settings.analyst or None, **args)
        except Exception as exc:  # read-only or locked case, disk full …
            self.errorOccurred.emit(f"The review of {name} could not be saved: {exc}", repr(exc))
            return False
        if record:
            self.history.record(ReviewStep(ev.id, name, {k: getattr(before, k) for k in fields},
                                           {k: getattr(updated, k) for k in fields}))
        if self.evidence is not None and self.evidence.id == ev.id:
            if "threshold" in fields:
                self.model.threshold_saved(updated)
            else:
                self.model.evidence = updated
            self.saved_label.setText(f"Saved {datetime.now():%H:%M:%S}")
            self._update_threshold_state()
        self.reviewSaved.emit(ev.id)
        return True

    def _verdict_changed(self, verdict: str) -> None:
        if self._saving_enabled and self.evidence is not None:
            fields = {"verdict": verdict}
            value = self.model.threshold_to_save()
            if value is not None:  # a verdict is given at the threshold on screen: keep them together
                fields["threshold"] = value
            self._write_review(**fields)

    def _notes_changed(self) -> None:
        if self._saving_enabled and self.evidence is not None:
            self.saved_label.setText("Editing…")
            self._notes_timer.start()

    def _save_notes(self) -> None:
        if self.evidence is not None and self.notes_edit.toPlainText() != (self.evidence.notes or ""):
            self._write_review(notes=self.notes_edit.toPlainText())

    def save_threshold(self) -> bool:
        """Save the threshold on screen as the current item's own (button, View menu)."""
        value = self.model.threshold_to_save()
        if value is None:
            self._update_threshold_state()
            return False
        return self._write_review(threshold=value)

    def revert_threshold(self) -> None:
        """Drop an unsaved threshold: back to the item's saved one (or the case's default)."""
        self.model.revert_threshold()
        self._set_threshold_widgets(self.model.threshold)
        self._apply_threshold(self.model.threshold)
        self.thresholdChanged.emit(self.model.threshold)
        self._update_threshold_state()

    # ----- undo / redo ---------------------------------------------------------------------------
    def undo_review(self) -> bool:
        return self._history_step(self.history.undo)

    def redo_review(self) -> bool:
        return self._history_step(self.history.redo)

    def _history_step(self, move) -> bool:
        if self.case is None:
            return False
        self.flush()  # notes being typed are saved (and become a step) before undo looks
        written: list[int] = []

        from declip_desktop.gui.evidence_tags import TAG_FIELDS, MarkedRecord, write_tag_step

        def write(evidence_id: int, values: dict) -> None:
            tag_values = {k: values.pop(k) for k in TAG_FIELDS if k in values}  # a tag step (gui.evidence_tags)
            if tag_values:
                write_tag_step(self.case, evidence_id, tag_values, self.settings.analyst or None)
                self.reviewSaved.emit(evidence_id)
            ev = self.case.get_evidence(evidence_id)
            if values and not self._write_review_of(ev, record=False, **values):
                raise StaleStep(f"the review of {ev.original_name} could not be changed")
            written.append(evidence_id)

        def current(evidence_id: int) -> MarkedRecord:
            from declip_desktop.cases.tags import get_marks

            return MarkedRecord(self.case.get_evidence(evidence_id), get_marks(self.case, evidence_id))

        try:
            step = move(current, write, annotations=self._annotation_ops())
        except StaleStep as exc:
            self.errorOccurred.emit(f"Nothing was undone or redone: {exc}.", "")
            return False
        except Exception as exc:  # the case went away, …
            self.errorOccurred.emit(f"Undo / redo failed: {exc}", repr(exc))
            return False
        if step is None:
            return False
        if self.evidence is not None and self.evidence.id == step.evidence_id:
            if isinstance(step, ReviewStep):
                self._review_rewritten()
            else:  # an annotation step (gui.annotation_steps): show the list as it is now
                self._load_annotations()
        else:
            self.showEvidenceRequested.emit(step.evidence_id)  # show the analyst what changed
        return True

    def _review_rewritten(self) -> None:
        try:
            updated = self.case.get_evidence(self.evidence.id)
        except Exception:
            log.exception("re-reading evidence %s failed", self.evidence.id)
            return
        self.model.review_replaced(updated)
        self._fill_review(updated)
        self._set_threshold_widgets(self.model.threshold)
        self._apply_threshold(self.model.threshold)
        self.thresholdChanged.emit(self.model.threshold)
        self._update_threshold_state()

    def flush(self) -> None:
        """Write pending notes now (switching evidence, closing). An unsaved threshold is a view
        setting and is not written."""
        if self._notes_timer.isActive():
            self._notes_timer.stop()
            self._save_notes()
