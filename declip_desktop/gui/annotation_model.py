"""The inspector's annotations without Qt: the current item's annotations, the drawing tool, and
the writes (through `cases.annotations`, each an audit entry) with their undo steps.

`gui.inspector_annotations.AnnotationControls` renders it; tests drive it directly. An item whose
file is missing or changed (`InspectorModel.review_locked`) cannot be annotated: the tool is
switched off and every write is refused, here as well as in the case layer.

Listeners: `on(event, callback)`; events "annotations" (the list or its statistics changed) and
"tool" (box / lasso / None).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from declip_desktop.cases import annotations as store
from declip_desktop.common.shapes import MapStats, map_stats
from declip_desktop.gui.annotation_steps import AnnotationStep

TOOLS = ("box", "lasso")


class AnnotationLocked(Exception):
    """The item's file is missing or changed: its annotations are locked like its review."""


def statistics(items: list, prob_map: Any, width: int, height: int) -> dict[int, MapStats]:
    """{annotation id: the map inside it}; pure, for a background thread."""
    out: dict[int, MapStats] = {}
    for item in items:
        try:
            out[item.id] = map_stats(item.shape, prob_map, width, height)
        except (ValueError, TypeError):
            continue  # a shape edited by hand into nonsense: verify names it, the table shows no figures
    return out


class AnnotationOps:
    """The writes an undo step makes, for any item of the case (refused while its file is not intact)."""

    def __init__(self, case: Any, analyst: str | None, locked: Callable[[int], str | None]):
        self.case, self.analyst, self._locked = case, analyst, locked

    def _check(self, annotation_id: int) -> store.Annotation:
        current = store.get_annotation(self.case, annotation_id)
        state = self._locked(current.evidence_id)
        if state:
            raise AnnotationLocked(f"the annotations of evidence {current.evidence_id} are locked: its file is {state}")
        return current

    def get(self, annotation_id: int) -> store.Annotation:
        return store.get_annotation(self.case, annotation_id)

    def delete(self, annotation_id: int) -> store.Annotation:
        self._check(annotation_id)
        return store.delete_annotation(self.case, annotation_id, analyst=self.analyst)

    def restore(self, annotation_id: int) -> store.Annotation:
        self._check(annotation_id)
        return store.restore_annotation(self.case, annotation_id, analyst=self.analyst)

    def relabel(self, annotation_id: int, label: str | None = None, note: str | None = None) -> store.Annotation:
        self._check(annotation_id)
        return store.relabel_annotation(self.case, annotation_id, label=label, note=note, analyst=self.analyst)


class AnnotationModel:
    def __init__(self, locked: Callable[[int], str | None] = lambda _id: None) -> None:
        self.case: Any = None
        self.evidence: Any = None
        self.items: list[store.Annotation] = []
        self.stats: dict[int, MapStats] = {}
        self.tool: str | None = None
        self.stats_token = 0
        self._locked = locked  # evidence id -> integrity state, None when intact
        self._listeners: dict[str, list[Callable[[], None]]] = {}

    def on(self, event: str, callback: Callable[[], None]) -> None:
        self._listeners.setdefault(event, []).append(callback)

    def _emit(self, event: str) -> None:
        for callback in self._listeners.get(event, []):
            callback()

    # ------------------------------------------------------------------ current item
    def load(self, case: Any, evidence: Any) -> None:
        """Read the item's annotations (a fast query); None: nothing shown."""
        self.case, self.evidence = case, evidence
        self.items = store.annotations(case, evidence.id) if case is not None and evidence is not None else []
        self.stats = {}
        self.stats_token += 1
        if self.locked:
            self.tool = None
            self._emit("tool")
        self._emit("annotations")

    def reload(self) -> None:
        self.load(self.case, self.evidence)

    def set_stats(self, token: int, stats: dict[int, MapStats]) -> bool:
        if token != self.stats_token:
            return False  # computed for another item or an older list
        self.stats = dict(stats)
        self._emit("annotations")
        return True

    @property
    def locked(self) -> str | None:
        return self._locked(self.evidence.id) if self.evidence is not None else None

    def find(self, annotation_id: int) -> store.Annotation | None:
        return next((a for a in self.items if a.id == annotation_id), None)

    # ------------------------------------------------------------------ tool
    def set_tool(self, tool: str | None) -> str | None:
        """Box, lasso or None; no tool on a locked item or without one. Returns the tool now on."""
        if tool is not None and tool not in TOOLS:
            raise ValueError(f"unknown annotation tool {tool!r}")
        if self.evidence is None or self.locked:
            tool = None
        if tool != self.tool:
            self.tool = tool
            self._emit("tool")
        return self.tool

    # ------------------------------------------------------------------ writes
    def ops(self, analyst: str | None) -> AnnotationOps:
        return AnnotationOps(self.case, analyst, self._locked)

    def _require_unlocked(self) -> None:
        if self.evidence is None or self.case is None:
            raise AnnotationLocked("no evidence item is shown")
        state = self.locked
        if state:
            raise AnnotationLocked(f"{self.evidence.original_name}: its file is {state}, so it cannot be annotated "
                                   "until it is restored and Case → Verify integrity finds it intact")

    def add(self, kind: str, geometry: Any, label: str, note: str = "",
            analyst: str | None = None) -> tuple[store.Annotation, AnnotationStep]:
        self._require_unlocked()
        added = store.add_annotation(self.case, self.evidence.id, kind, geometry, label, note, analyst=analyst)
        self.reload()
        return added, AnnotationStep(self.evidence.id, self.evidence.original_name, "add", added.id, added.label)

    def delete(self, annotation_id: int, analyst: str | None = None) -> AnnotationStep:
        self._require_unlocked()
        gone = store.delete_annotation(self.case, annotation_id, analyst=analyst)
        self.reload()
        return AnnotationStep(self.evidence.id, self.evidence.original_name, "delete", gone.id, gone.label)

    def relabel(self, annotation_id: int, label: str | None = None, note: str | None = None,
                analyst: str | None = None) -> AnnotationStep | None:
        self._require_unlocked()
        before = store.get_annotation(self.case, annotation_id)
        after = store.relabel_annotation(self.case, annotation_id, label=label, note=note, analyst=analyst)
        self.reload()
        if (before.label, before.note) == (after.label, after.note):
            return None
        return AnnotationStep(self.evidence.id, self.evidence.original_name, "relabel", after.id, after.label,
                              old={"label": before.label, "note": before.note},
                              new={"label": after.label, "note": after.note})


__all__ = ["TOOLS", "AnnotationLocked", "AnnotationModel", "AnnotationOps", "statistics"]
