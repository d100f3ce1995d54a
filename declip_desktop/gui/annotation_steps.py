"""Undo / redo steps of the analyst's annotations (Qt-free), kept in `gui.review_history`.

Undo never erases: undoing an added annotation deletes it (`annotation.deleted`), redoing it
restores it (`annotation.restored`), undoing a delete restores, undoing a relabel writes the old
label back (`annotation.relabelled`) — each step one ordinary audit entry that verify replays.
A step whose annotation was changed since (another window, the command line) is refused with
`StaleStep`, as the review steps are.

`ops` is what the inspector hands in: `get(id) -> Annotation`, `delete(id)`, `restore(id)`,
`relabel(id, label=, note=)`, each raising on failure (a locked item, a read-only case).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from declip_desktop.gui.review_history import StaleStep


@dataclass(frozen=True)
class AnnotationStep:
    evidence_id: int
    name: str  # the evidence's file name (for messages)
    action: str  # "add" | "delete" | "relabel"
    annotation_id: int
    label: str  # the label when the step was made (relabel: the new one)
    old: dict | None = None  # relabel: {"label": …, "note": …} before
    new: dict | None = None  # relabel: after

    def describe(self) -> str:
        what = {"add": "new annotation", "delete": "deleting annotation", "relabel": "relabelling annotation"}
        return f"{what[self.action]} {self.label!r} on {self.name}"

    # ----- the checks: the annotation must still be as this step left it (or found it)
    def _expect(self, ops: Any, deleted: bool, values: dict | None = None) -> Any:
        if ops is None:
            raise StaleStep("annotations cannot be changed here")
        try:
            current = ops.get(self.annotation_id)
        except Exception as exc:  # noqa: BLE001 - gone from the case, case closed: say so, change nothing
            raise StaleStep(f"annotation {self.annotation_id} of {self.name} could not be read ({exc})") from None
        if current.deleted != deleted:
            by = current.deleted_by if current.deleted else None
            state = f"was deleted by {by} at {current.deleted_at}" if by else "was restored"
            raise StaleStep(f"annotation {current.label!r} of {self.name} {state} since; nothing was done")
        for key, value in (values or {}).items():
            if (getattr(current, key) or "") != (value or ""):
                since = f" by {current.edited_by} at {current.edited_at}" if current.edited_by else ""
                raise StaleStep(f"the {key} of annotation {current.label!r} of {self.name} was changed since{since}; "
                                "undo would overwrite that change, so nothing was done")
        return current

    def undo(self, ops: Any) -> None:
        if self.action == "add":
            self._expect(ops, deleted=False)
            ops.delete(self.annotation_id)
        elif self.action == "delete":
            self._expect(ops, deleted=True)
            ops.restore(self.annotation_id)
        else:
            self._expect(ops, deleted=False, values=self.new)
            ops.relabel(self.annotation_id, **self.old)

    def redo(self, ops: Any) -> None:
        if self.action == "add":
            self._expect(ops, deleted=True)
            ops.restore(self.annotation_id)
        elif self.action == "delete":
            self._expect(ops, deleted=False)
            ops.delete(self.annotation_id)
        else:
            self._expect(ops, deleted=False, values=self.old)
            ops.relabel(self.annotation_id, **self.new)


__all__ = ["AnnotationStep"]
