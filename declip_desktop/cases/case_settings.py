"""Case settings that change what a case's results mean: its default threshold and its model.

Both live in the case's settings table and change only through `Case.set_setting`, which
writes a `setting.changed` audit entry with the old and the new value. Nothing per machine
(the desktop's preferences) and nothing installed later (a newly imported or downloaded
model) changes them behind the analyst's back.

- Threshold: `case_threshold(case)` is the case's default (the paper's 0.5 until someone sets
  another with `set_case_threshold`); an evidence item's own threshold (set while reviewing
  it) overrides it. `effective_threshold` is the one rule the inspector, the GUI report and
  `declip case report` apply.
- Model: `pinned_model(case)` is the model (name and SHA-256) the case is analysed with;
  `pin_model` records it when an analysis starts with a model the case did not name yet, or
  when the analyst chooses another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from declip_desktop.common.facts import DEFAULT_THRESHOLD
from declip_desktop.cases.errors import CaseError

THRESHOLD_SETTING = "threshold"
MODEL_SETTING = "model"

#: Where an evidence item's threshold came from (shown in reports and in the inspector).
SOURCE_EVIDENCE = "reviewed"  # the analyst set it on this item
SOURCE_CASE = "case"  # the case's default, set by an analyst (audit-logged)
SOURCE_DEFAULT = "default"  # nobody chose one: DEFAULT_THRESHOLD


def check_threshold(value: Any) -> float:
    """`value` as a float in 0…1, or CaseError saying what to give instead."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CaseError(f"threshold {value!r} is not a number. Give a value between 0 and 1, e.g. 0.5.") from None
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        raise CaseError(f"threshold {value!r} is outside 0…1. Give a value between 0 and 1, e.g. 0.5.")
    return number


def case_threshold(case: Any) -> tuple[float, str]:
    """(the case's default threshold, SOURCE_CASE or SOURCE_DEFAULT).

    A stored value that is not a valid threshold (edited by hand) is refused with CaseError
    rather than replaced by 0.5 without a word: it would change every unreviewed item."""
    raw = case.get_setting(THRESHOLD_SETTING)
    if raw is None:
        return DEFAULT_THRESHOLD, SOURCE_DEFAULT
    try:
        return check_threshold(raw), SOURCE_CASE
    except CaseError:
        raise CaseError(f"the case's default threshold setting holds {raw!r}, which is not a value in 0…1. "
                        "Set it again (View → Use this threshold as the case default, or "
                        "`declip case threshold DIR VALUE`).") from None


def set_case_threshold(case: Any, value: Any, analyst: str | None = None) -> float:
    """Make `value` the case's default threshold (audit-logged as setting.changed)."""
    number = check_threshold(value)
    case.set_setting(THRESHOLD_SETTING, number, analyst=analyst)
    return number


def effective_threshold(evidence: Any, case_default: tuple[float, str]) -> tuple[float, str]:
    """The one rule: the item's own threshold if the analyst set one, else the case's default."""
    own = getattr(evidence, "threshold", None)
    if own is not None:
        return float(own), SOURCE_EVIDENCE
    return case_default


@dataclass(frozen=True)
class PinnedModel:
    name: str
    sha256: str | None  # None: pinned by name only (cases made before pins carried the hash)

    def as_setting(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256}


def pinned_model(case: Any) -> PinnedModel | None:
    """The model this case is analysed with, or None if it has not chosen one yet."""
    raw = case.get_setting(MODEL_SETTING)
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):  # older cases stored the name alone
        return PinnedModel(raw, None)
    if isinstance(raw, dict) and isinstance(raw.get("name"), str) and raw["name"]:
        sha = raw.get("sha256")
        return PinnedModel(raw["name"], sha if isinstance(sha, str) and sha else None)
    raise CaseError(f"the case's model setting holds {raw!r}, which names no model. "
                    "Choose the model again (Models → Choose model…, or `declip case analyze DIR --model NAME`).")


def pin_model(case: Any, name: str, sha256: str | None, analyst: str | None = None) -> PinnedModel:
    """Record `name` (and its SHA-256) as the case's model; audit-logged when it changes."""
    pin = PinnedModel(str(name), sha256 or None)
    case.set_setting(MODEL_SETTING, pin.as_setting(), analyst=analyst)
    return pin


__all__ = [
    "MODEL_SETTING", "SOURCE_CASE", "SOURCE_DEFAULT", "SOURCE_EVIDENCE", "THRESHOLD_SETTING", "PinnedModel",
    "case_threshold", "check_threshold", "effective_threshold", "pin_model", "pinned_model", "set_case_threshold",
]
