"""Undo and redo of review changes (Qt-free): verdict, notes and the item's threshold, and the
analyst's annotations (`gui.annotation_steps.AnnotationStep`: added, deleted, relabelled), and the
analyst's tags and bookmark (`gui.evidence_tags` records those steps and writes them back).

Each step remembers the values it replaced and the values it wrote. Undoing writes the old
values back through `Case.set_review` — a new, ordinary `review.changed` audit entry, so the
trail keeps every step and `verify` replays undo like any other change; nothing is erased.

A step is undone only while the record still holds what the step wrote: if the item was
changed since (another window, the command line, another analyst), undo refuses and says
what changed instead of silently overwriting someone's work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

REVIEW_FIELDS = ("verdict", "notes", "threshold")
HISTORY_LIMIT = 200  # steps kept per open case


@dataclass(frozen=True)
class ReviewStep:
    evidence_id: int
    name: str  # the evidence's original file name (for messages)
    old: dict[str, Any]
    new: dict[str, Any]

    def describe(self) -> str:
        labels = {"verdict": "verdict", "notes": "notes", "threshold": "threshold", "tags": "tags",
                  "bookmarked": "bookmark"}
        changed = [k for k in self.new if not _same(self.old.get(k), self.new[k])] or list(self.new)
        return f"{' and '.join(labels.get(k, k.replace('_', ' ')) for k in changed)} of {self.name}"


class StaleStep(Exception):
    """The record no longer holds what the step wrote (changed elsewhere since)."""


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(float(a) - float(b)) < 1e-9
    return (a or None) == (b or None) if isinstance(a, str) or isinstance(b, str) else a == b


class ReviewHistory:
    """Two stacks of `ReviewStep`s for one open case."""

    def __init__(self) -> None:
        self._undo: list[ReviewStep] = []
        self._redo: list[ReviewStep] = []
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def _changed(self) -> None:
        for callback in self._listeners:
            callback()

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self._changed()

    def record(self, step: ReviewStep) -> None:
        """A change the analyst just made (clears redo, as every editor does)."""
        if isinstance(step, ReviewStep) and all(_same(step.old.get(k), v) for k, v in step.new.items()):
            return  # nothing changed
        self._undo.append(step)
        del self._undo[:-HISTORY_LIMIT]
        self._redo.clear()
        self._changed()

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo_text(self) -> str:
        return f"Undo {self._undo[-1].describe()}" if self._undo else "Undo"

    def redo_text(self) -> str:
        return f"Redo {self._redo[-1].describe()}" if self._redo else "Redo"

    def undo(self, current: Callable[[int], Any], write: Callable[[int, dict[str, Any]], Any],
             annotations: Any = None) -> ReviewStep | None:
        """Write the last step's old values back. `current(evidence_id)` reads the record,
        `write(evidence_id, values)` stores values; raises `StaleStep` (step kept) when the record
        was changed since. An annotation step undoes itself through `annotations` (its operations)."""
        if not self._undo:
            return None
        step = self._undo[-1]
        if isinstance(step, ReviewStep):
            self._check(step, step.new, current)
            write(step.evidence_id, dict(step.old))
        else:
            step.undo(annotations)
        self._redo.append(self._undo.pop())
        self._changed()
        return step

    def redo(self, current: Callable[[int], Any], write: Callable[[int, dict[str, Any]], Any],
             annotations: Any = None) -> ReviewStep | None:
        if not self._redo:
            return None
        step = self._redo[-1]
        if isinstance(step, ReviewStep):
            self._check(step, step.old, current)
            write(step.evidence_id, dict(step.new))
        else:
            step.redo(annotations)
        self._undo.append(self._redo.pop())
        self._changed()
        return step

    @staticmethod
    def _check(step: ReviewStep, expected: dict[str, Any], current: Callable[[int], Any]) -> None:
        record = current(step.evidence_id)
        for key, value in expected.items():
            now = getattr(record, key, None)
            if not _same(now, value):
                by = getattr(record, "reviewed_by", None)
                when = getattr(record, "reviewed_at", None)
                since = f" (last changed by {by} at {when})" if by else ""
                raise StaleStep(f"the {key} of {step.name} was changed since{since}; "
                                "undo would overwrite that change, so nothing was done")


__all__ = ["HISTORY_LIMIT", "REVIEW_FIELDS", "ReviewHistory", "ReviewStep", "StaleStep"]
