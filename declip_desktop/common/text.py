"""Text that cannot attack its reader: terminal-safe names and spreadsheet-safe CSV cells.

File names and metadata come from the evidence, i.e. from whoever made it. Printed raw, a
name holding ESC sequences can clear or rewrite an analyst's terminal, a carriage return or
newline can forge a line such as "OK: nothing changed", and a bidirectional override can
show `gpj.exe` as `exe.jpg`. Written raw into a CSV, a cell starting with `=` is run as a
formula by spreadsheet programs (OWASP "CSV injection").
"""

from __future__ import annotations

import unicodedata
from typing import Any

from declip_desktop.common import strict_json

#: Format characters that reorder or hide text (bidi embeddings, overrides and isolates).
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
#: Characters that end a line for some readers although they are not C0/C1 controls.
_LINE_BREAKS = frozenset("\u2028\u2029")


def _unsafe(ch: str) -> bool:
    return ch in _BIDI or ch in _LINE_BREAKS or unicodedata.category(ch) == "Cc"


def unsafe_characters(text: str, allowed: str = "") -> list[str]:
    """The characters of `text` that `terminal_safe` would escape (controls, bidi controls, line
    separators), except those in `allowed`, in order of appearance, each once. For refusing them
    in text the analyst writes (labels), where a reordering or hidden character would misstate it."""
    return list(dict.fromkeys(ch for ch in str(text) if _unsafe(ch) and ch not in allowed))


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: Any) -> str:
    """`text` with every control character (C0, DEL, C1, incl. newline, CR, tab, ESC), bidi
    control and Unicode line break replaced by a visible `\\xNN` / `\\uNNNN` escape."""
    s = str(text)
    if not any(_unsafe(ch) for ch in s):
        return s
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in s)


def terminal_json(value: Any, **kwargs: Any) -> str:
    """Strict JSON (`common.strict_json`, `ensure_ascii=False`) whose output is also terminal-safe.

    JSON already escapes C0 controls; the C1 controls, DEL, bidi controls and line separators
    it leaves raw are written as `\\uNNNN` escapes, which decode to the same strings."""
    text = strict_json.dumps(value, ensure_ascii=False, **kwargs)  # NaN/Inf → null: strict JSON
    if not any(_unsafe(ch) for ch in text):
        return text
    return "".join(f"\\u{ord(ch):04x}" if (_unsafe(ch) and ch not in "\n") else ch for ch in text)


#: A cell starting with one of these is taken as a formula by Excel, LibreOffice or Sheets.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text: a leading formula trigger gets a `'` before it.

    Numbers are returned unchanged (a negative number is data, not a formula); only strings
    are changed. The quote is the convention spreadsheets themselves use for "text, not a
    formula"; the original value is the cell with its first `'` removed."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


__all__ = ["FORMULA_TRIGGERS", "csv_safe", "terminal_json", "terminal_safe"]


def format_duration(seconds: float) -> str:
    """A remaining time as people read it: "42 s", "1 min 20 s", "2 h 05 min" (negative → 0 s)."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
