"""Who examined the evidence, for whom, and what they were asked: the case's examiner fields.

They are one case setting (`examiner`), so every change goes through `Case.set_setting`: a
`setting.changed` audit entry with the old and the new values, which `case verify` replays like
any other setting. Reports print them on the cover and in the closing attestation.

The declaration is a template the examiner may edit; `{name}`, `{role}`, `{organisation}`,
`{requester}` and `{reference}` in it are filled from the fields when a report is made. An
unknown `{placeholder}` is refused when the template is set, not when a report is printed.
"""

from __future__ import annotations

import string
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from declip_desktop.cases.errors import CaseError

EXAMINER_SETTING = "examiner"
PLACEHOLDERS = ("name", "role", "organisation", "requester", "reference")
MAX_FIELD_CHARS = 400
MAX_TEXT_CHARS = 4000  # question and declaration: a paragraph or two, not a document

DEFAULT_DECLARATION = (
    "I, {name}, {role} at {organisation}, examined the evidence listed in this report at the request of "
    "{requester} (reference {reference}). The results were produced by the software and model identified "
    "on each item's page; the verdicts and notes are my own assessment. To the best of my knowledge the "
    "facts stated in this report are true and the opinions expressed are my honest professional opinion, "
    "within the limits of the method described in it."
)


@dataclass(frozen=True)
class Examiner:
    name: str = ""
    role: str = ""
    organisation: str = ""
    requester: str = ""
    reference: str = ""
    question: str = ""
    declaration: str = DEFAULT_DECLARATION

    def declaration_text(self) -> str:
        """The declaration with the fields filled in ("[not set]" where a field is empty)."""
        values = {key: (getattr(self, key) or "[not set]") for key in PLACEHOLDERS}
        return self.declaration.format_map(values)

    def missing(self) -> list[str]:
        """Fields a court-ready report needs but the case does not have yet."""
        return [f.name for f in fields(self) if f.name != "declaration" and not getattr(self, f.name).strip()]


FIELD_NAMES = tuple(f.name for f in fields(Examiner))


def check_template(text: str) -> str:
    """`text` if its placeholders are all known, else CaseError naming the bad one."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        raise CaseError(f"the declaration template is malformed ({exc}). Write braces as {{{{ and }}}}, "
                        f"placeholders as {{name}}.") from None
    unknown = sorted({n for n in names if n not in PLACEHOLDERS})
    if unknown:
        raise CaseError(f"the declaration template uses {{{unknown[0]}}}, which is not a field. Use only "
                        + ", ".join("{" + p + "}" for p in PLACEHOLDERS) + ".")
    return text


def _clean(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise CaseError(f"the examiner field {name} must be text, not {type(value).__name__}.")
    value = value.strip()
    limit = MAX_TEXT_CHARS if name in ("question", "declaration") else MAX_FIELD_CHARS
    if len(value) > limit:
        raise CaseError(f"the examiner field {name} is {len(value)} characters long; the limit is {limit}. Shorten it.")
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in value):
        raise CaseError(f"the examiner field {name} contains control characters. Remove them.")
    return value


def get_examiner(case: Any) -> Examiner:
    """The case's examiner fields (empty ones, and the default declaration, when never set)."""
    raw = case.get_setting(EXAMINER_SETTING)
    if raw is None:
        return Examiner()
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k, ""), str) for k in FIELD_NAMES):
        raise CaseError(f"the case's examiner setting holds {raw!r}, which is not a set of text fields. "
                        "Set the fields again (Case → Properties…, or `declip case set DIR --examiner …`).")
    known = {k: raw[k] for k in FIELD_NAMES if k in raw}
    if not known.get("declaration"):
        known.pop("declaration", None)
    return Examiner(**known)


def set_examiner(case: Any, analyst: str | None = None, **changes: str | None) -> Examiner:
    """Change the named fields (None: leave as is; "" clears, and a cleared declaration returns to the
    default template). One audit entry holds the old and new values of all fields."""
    unknown = sorted(set(changes) - set(FIELD_NAMES))
    if unknown:
        raise CaseError(f"{unknown[0]} is not an examiner field (fields: {', '.join(FIELD_NAMES)}).")
    current = get_examiner(case)
    updates = {k: _clean(k, v) for k, v in changes.items() if v is not None}
    if "declaration" in updates:
        updates["declaration"] = check_template(updates["declaration"]) or DEFAULT_DECLARATION
    new = replace(current, **updates)
    case.set_setting(EXAMINER_SETTING, asdict(new), analyst=analyst)
    return new


__all__ = ["DEFAULT_DECLARATION", "EXAMINER_SETTING", "FIELD_NAMES", "PLACEHOLDERS", "Examiner",
           "check_template", "get_examiner", "set_examiner"]
