"""Pins: views, alerts or the C2PA summary an analyst carries into the report, each with a note.

Pins live in the audit log only (`forensics.pinned` / `forensics.unpinned`): the list is
the replay of those entries, so it is as tamper-evident as the rest of the history and
needs no table of its own. A pinned classical view is recomputed from the evidence (or
taken from the view cache) when the report is made, with the parameters pinned.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from declip_desktop.cases import Case
from declip_desktop.forensics.views import VIEWS

PIN_ACTION = "forensics.pinned"
UNPIN_ACTION = "forensics.unpinned"
KINDS = ("view", "declip", "alert", "c2pa")
MAX_NOTE = 4000


class PinError(ValueError):
    """A pin request that cannot be honoured (unknown view, kind or pin)."""


@dataclass(frozen=True)
class Pin:
    """`kind`: view (a classical view, `ref` its name, `params` its parameters), declip (the DeCLIP map),
    alert (`ref` the alert code), c2pa (the Content Credentials summary)."""

    pin_id: str
    evidence_id: int
    kind: str
    ref: str
    note: str
    params: dict[str, Any] = field(default_factory=dict)
    pinned_by: str = ""
    pinned_at: str = ""


def pin(case: Case, evidence_id: int, kind: str, ref: str = "", note: str = "", params: dict | None = None,
        analyst: str | None = None) -> Pin:
    """Pin something of an evidence item into its report page (audit-logged)."""
    case.get_evidence(evidence_id)  # raises CaseError for an unknown item
    if kind not in KINDS:
        raise PinError(f"unknown pin kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "view" and ref not in VIEWS:
        raise PinError(f"unknown view {ref!r}; known views: {', '.join(VIEWS)}")
    if kind == "alert" and not ref:
        raise PinError("an alert pin needs the alert's code (e.g. generator_signature)")
    if len(note) > MAX_NOTE:
        raise PinError(f"the note has {len(note)} characters; keep it under {MAX_NOTE} (put more in the notes)")
    pin_id = uuid.uuid4().hex[:12]
    details = {"pin_id": pin_id, "kind": kind, "ref": ref, "note": note, "params": dict(params or {})}
    entry = case.log_event(PIN_ACTION, f"evidence:{evidence_id}", details, analyst=analyst, evidence_id=evidence_id)
    return Pin(pin_id, evidence_id, kind, ref, note, dict(params or {}), entry.actor, entry.timestamp)


def unpin(case: Case, evidence_id: int, pin_id: str, analyst: str | None = None) -> None:
    if pin_id not in {p.pin_id for p in pins(case, evidence_id)}:
        raise PinError(f"evidence {evidence_id} has no pin {pin_id!r}")
    case.log_event(UNPIN_ACTION, f"evidence:{evidence_id}", {"pin_id": pin_id}, analyst=analyst,
                   evidence_id=evidence_id)


def pins(case: Case, evidence_id: int) -> list[Pin]:
    """The item's current pins, oldest first."""
    current: dict[str, Pin] = {}
    for e in case.audit_entries([evidence_id]):
        d = e.details or {}
        if e.action == PIN_ACTION and d.get("pin_id"):
            current[d["pin_id"]] = Pin(d["pin_id"], evidence_id, d.get("kind", ""), d.get("ref", ""),
                                       d.get("note", ""), dict(d.get("params") or {}), e.actor, e.timestamp)
        elif e.action == UNPIN_ACTION:
            current.pop(d.get("pin_id"), None)
    return list(current.values())
