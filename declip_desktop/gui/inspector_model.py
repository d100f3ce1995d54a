"""The inspector's state without Qt: what is shown, at which threshold, in which view mode.

`gui.inspector.Inspector` renders this model and forwards the analyst's input to it; tests
drive it directly, without a display or qtbot (napari's components/ vs _qt/ split).

- Current item: `select(case, evidence_id)` reads the evidence and its latest analysis and
  sets the threshold by the case's rule (`cases.case_settings.effective_threshold`: the item's
  own, else the case's default). Every selection bumps `load_token`; work started for an
  earlier item (decoding, maps) compares its token and is dropped when the analyst moved on.
- Threshold: `set_threshold` changes what is shown at once and only that: it is a view
  change (source "view") until the analyst saves it as the item's threshold (or sets a
  verdict, which saves it with the verdict); `threshold_to_save()` says what to write. A
  stray key can therefore never change the evidence's record. Regions are recomputed after `REGIONS_DELAY_MS` (`regions_token` drops stale ones).
- View mode: overlay on/off, flicker (the overlay blinks every `FLICKER_MS`), side by side,
  and the overlay layers. `layers` is an ordered list: a new kind of overlay is one
  `add_layer(...)` call plus its drawing in the widget; `visible_layers()` applies the rules.

- Integrity: `set_integrity(states)`; `file_problem` / `review_locked` for the current item.

Listeners: `model.on(event, callback)`; events are "evidence", "threshold", "view", "integrity".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from declip_desktop.cases.case_settings import case_threshold, effective_threshold
from declip_desktop.common.facts import DEFAULT_THRESHOLD

#: Why the widget has timers, and how long each waits.
NOTES_SAVE_DELAY_MS = 800  # write notes once the analyst pauses typing
REGIONS_DELAY_MS = 120  # full-resolution regions after the live (display-size) mask
FLICKER_MS = 450  # half-period of the overlay's blinking


@dataclass
class Layer:
    name: str  # "heat", "mask", "outlines", … (the widget keys its drawing by it)
    label: str  # the check box text
    visible: bool = True
    tip: str = ""
    needs_map: bool = True  # shown only when the item has a probability map


class InspectorModel:
    def __init__(self) -> None:
        self.case: Any = None
        self.evidence: Any = None
        self.analysis: Any = None
        self.threshold = DEFAULT_THRESHOLD
        self.threshold_source = "default"
        self.threshold_dirty = False
        self.load_token = 0
        self.regions_token = 0
        self.overlay_on = True
        self.flicker_on = False
        self.flicker_phase = True  # True: the overlay's "on" half of the blink
        self.side_by_side = False
        self.has_map = False
        self.live_edges = True  # outlines from the display copy until the full-resolution ones arrive
        self.integrity: dict[int, str] = {}
        self.layers: list[Layer] = [
            Layer("heat", "Heat", True, "Show the probability map as a heat overlay"),
            Layer("mask", "Mask", False, "Fill the pixels above the threshold"),
            Layer("outlines", "Outlines", True, "Outline the regions above the threshold"),
        ]
        self._listeners: dict[str, list[Callable[[], None]]] = {}

    # ------------------------------------------------------------------ events
    def on(self, event: str, callback: Callable[[], None]) -> None:
        self._listeners.setdefault(event, []).append(callback)

    def _emit(self, event: str) -> None:
        for callback in self._listeners.get(event, []):
            callback()

    # ------------------------------------------------------------------ current item
    def set_case(self, case: Any) -> None:
        self.case = case
        self.select(None)

    def select(self, evidence_id: int | None) -> bool:
        """Make `evidence_id` the current item (None: nothing). Errors reading it propagate
        (the widget reports them); the previous item is left either way."""
        self.load_token += 1
        self.regions_token += 1
        self.evidence = self.analysis = None
        self.has_map = False
        self.live_edges = True
        self.threshold_dirty = False
        if self.case is None or evidence_id is None:
            self._emit("evidence")
            return False
        ev = self.case.get_evidence(evidence_id)
        analysis = self.case.latest_analysis(evidence_id)
        self.evidence, self.analysis = ev, analysis
        self.threshold, self.threshold_source = effective_threshold(ev, case_threshold(self.case))
        self._emit("evidence")
        self._emit("threshold")
        return True

    @property
    def analysis_ok(self) -> bool:
        return self.analysis is not None and bool(getattr(self.analysis, "ok", False))

    def is_current(self, token: int) -> bool:
        return token == self.load_token

    def case_default_changed(self) -> None:
        """The case's default threshold changed: items without their own follow it."""
        if self.evidence is None or getattr(self.evidence, "threshold", None) is not None or self.threshold_dirty:
            return
        self.threshold, self.threshold_source = effective_threshold(self.evidence, case_threshold(self.case))
        self._emit("threshold")

    # ------------------------------------------------------------------ threshold
    def set_threshold(self, value: float) -> bool:
        """Clamp to 0…1 and show it; True if it changed. Nothing is saved (`threshold_to_save`)."""
        value = float(min(1.0, max(0.0, float(value))))
        if abs(value - self.threshold) < 1e-9:
            return False
        self.threshold = value
        self.threshold_source = "view"
        self.live_edges = True
        self.regions_token += 1
        if self.evidence is not None:
            self.threshold_dirty = True
        self._emit("threshold")
        return True

    def nudge_threshold(self, delta: float) -> bool:
        return self.set_threshold(round(self.threshold + delta, 3))

    def threshold_to_save(self) -> float | None:
        """The value to write as the item's own threshold, or None if nothing changed."""
        if not self.threshold_dirty or self.evidence is None:
            return None
        if getattr(self.evidence, "threshold", None) == self.threshold:
            self.threshold_dirty = False
            return None
        return self.threshold

    def threshold_saved(self, evidence: Any) -> None:
        self.evidence = evidence
        self.threshold_dirty = False
        if getattr(evidence, "threshold", None) is not None and abs(evidence.threshold - self.threshold) < 1e-9:
            self.threshold_source = "reviewed"

    def revert_threshold(self) -> bool:
        """Back to the item's saved threshold (or the case's default); True if it changed."""
        if self.evidence is None:
            return False
        before = self.threshold
        self.threshold, self.threshold_source = effective_threshold(self.evidence, case_threshold(self.case))
        self.threshold_dirty = False
        self.regions_token += 1
        self._emit("threshold")
        return abs(before - self.threshold) > 1e-9

    def review_replaced(self, evidence: Any) -> None:
        """The current item's review was rewritten (undo/redo): take its record as it is now."""
        self.evidence = evidence
        self.revert_threshold()

    # ------------------------------------------------------------------ integrity
    def set_integrity(self, states: dict[int, str]) -> None:
        """{evidence id: state} of items whose file is missing or changed (`gui.integrity`)."""
        self.integrity = dict(states)
        self._emit("integrity")

    @property
    def file_problem(self) -> str | None:
        """The current item's integrity state, None when its file is intact (as far as known)."""
        return self.integrity.get(self.evidence.id) if self.evidence is not None else None

    @property
    def review_locked(self) -> bool:
        """A review is a statement about the imported file: locked while that file is not intact."""
        return self.file_problem is not None

    # ------------------------------------------------------------------ view mode
    def add_layer(self, layer: Layer, before: str | None = None) -> Layer:
        """Add an overlay layer (e.g. another forensic map), before the named one or last."""
        if any(existing.name == layer.name for existing in self.layers):
            raise ValueError(f"the inspector already has a layer named {layer.name!r}")
        index = next((i for i, existing in enumerate(self.layers) if existing.name == before), len(self.layers))
        self.layers.insert(index, layer)
        self._emit("view")
        return layer

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no inspector layer named {name!r}")

    def set_layer_visible(self, name: str, visible: bool) -> None:
        self.layer(name).visible = bool(visible)
        self._emit("view")

    def toggle_overlay(self) -> None:
        self.overlay_on = not self.overlay_on
        self._emit("view")

    def set_flicker(self, on: bool) -> None:
        self.flicker_on = bool(on)
        self.flicker_phase = True
        self._emit("view")

    def flicker_tick(self) -> None:
        self.flicker_phase = not self.flicker_phase
        self._emit("view")

    def set_side_by_side(self, on: bool) -> None:
        self.side_by_side = bool(on)
        self._emit("view")

    def visible_layers(self) -> dict[str, bool]:
        """Which overlay layers are drawn now. Outlines come in two kinds: "edges" (live, from
        the display copy, while dragging) and "outlines" (full resolution, once computed)."""
        shown = self.overlay_on and (self.flicker_phase or not self.flicker_on)
        out = {layer.name: shown and layer.visible and (self.has_map or not layer.needs_map)
               for layer in self.layers}
        outlines = out.get("outlines", False)
        out["edges"] = outlines and self.live_edges
        out["outlines"] = outlines and not self.live_edges
        return out


__all__ = ["FLICKER_MS", "NOTES_SAVE_DELAY_MS", "REGIONS_DELAY_MS", "InspectorModel", "Layer"]
