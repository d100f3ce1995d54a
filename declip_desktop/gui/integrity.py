"""What the window knows about the integrity of each evidence file (Qt-free).

Two sources, both read-only:

- `quick_states(case)`: on opening a case, one `lstat` per item (no hashing): a file that is
  gone, is no longer a regular file, or has another size than at import is flagged at once;
- `states_from_report(report)`: a full `Case.verify()` (hashes every file), run in the background
  by Case → Verify; it also finds files whose content changed at the same size.

The inspector adds a third: it hashes the bytes it decodes and flags an item whose file no
longer matches its recorded SHA-256 before showing it as that evidence.

A flagged item shows the state instead of its analysis status and its review is locked: a
verdict on a file that is not the evidence that was imported would be a verdict on nothing.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any

#: verify's problem kinds that concern an evidence file → the state the list shows.
_KIND_STATES = {"evidence_missing": "missing", "evidence_changed": "changed", "not_a_file": "replaced",
                "unreadable_file": "unreadable"}

#: What each state means, for tooltips and the inspector's banner.
STATE_TEXT = {
    "missing": "the evidence file is missing from the case folder",
    "changed": "the evidence file changed after import (its SHA-256 no longer matches)",
    "replaced": "the evidence file was replaced by something that is not a regular file",
    "unreadable": "the evidence file cannot be read",
}


def state_label(state: str) -> str:
    """The short text of the status column ("file missing")."""
    return f"file {state}"


def quick_state(path: os.PathLike[str] | str, size: int | None) -> str | None:
    """One item's state from `lstat` alone (no hashing); None when nothing is visibly wrong."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "missing"
    except OSError:
        return "unreadable"
    if not stat.S_ISREG(st.st_mode):
        return "replaced"
    if size is not None and st.st_size != size:
        return "changed"
    return None


def quick_states(case: Any) -> dict[int, str]:
    """{evidence id: state} for every item whose file is visibly wrong (cheap: no hashing)."""
    states: dict[int, str] = {}
    for ev in case.evidence_list():
        state = quick_state(case.evidence_file(ev), getattr(ev, "size", None))
        if state is not None:
            states[ev.id] = state
    return states


def evidence_id_of(problem: Any) -> int | None:
    obj = str(getattr(problem, "object", ""))
    if obj.startswith("evidence:"):
        try:
            return int(obj.split(":", 1)[1])
        except ValueError:
            return None
    return None


def states_from_report(report: Any) -> dict[int, str]:
    """{evidence id: state} from a `VerifyReport` (only evidence-file problems count)."""
    states: dict[int, str] = {}
    for problem in report.problems:
        eid = evidence_id_of(problem)
        state = _KIND_STATES.get(problem.kind)
        if eid is not None and state is not None:
            states[eid] = state
    return states


@dataclass(frozen=True)
class VerifyOutcome:
    """A finished Case → Verify: when, the report, and a one-line summary for the status bar."""

    finished: str  # local time, HH:MM:SS
    report: Any  # cases.VerifyReport

    @property
    def summary(self) -> str:
        r = self.report
        checked = f"{r.evidence_checked} evidence file(s), {r.maps_checked} map(s), {r.reports_checked} report(s)"
        if r.ok:
            return f"Verified {self.finished}: all intact ({checked}, {r.audit_entries} audit entries)"
        n = len(r.problems)
        return f"Verified {self.finished}: {n} problem{'s' if n != 1 else ''} ({checked})"


def run_verify(case_path: os.PathLike[str] | str) -> Any:
    """Verify the case at `case_path` on its own read-only connection (call off the UI thread):
    it never writes, so it can run next to the window's own connection and an analysis."""
    from declip_desktop.cases import Case

    with Case.open(case_path, read_only=True) as case:
        return case.verify()


__all__ = ["STATE_TEXT", "VerifyOutcome", "evidence_id_of", "quick_state", "quick_states", "run_verify",
           "state_label", "states_from_report"]
