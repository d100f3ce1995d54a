"""The report's appendices as HTML for QTextDocument: the audit trail as a fixed-column table,
the hash annex (every full hash the table shortens, in a monospace font) and notes in full.

Rules that keep the table readable on paper: a time, an action or an object never wraps
(`white-space: nowrap`); a hash is never printed whole in the table (a short form and a
reference `[H3]` into the annex, where it is printed whole on one line); a path may break only
after a separator. Words of ordinary text wrap at spaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape

from declip_desktop.reports.model import AuditRow, EvidenceItem, ReportData

#: Hex runs this long are hashes (MD5 = 32, SHA-256 = 64); shorter ones (IDs, colours) stay.
HASH_RE = re.compile(r"(?<![0-9A-Fa-f])[0-9a-f]{32,128}(?![0-9A-Fa-f])")
ZWSP = "\u200b"  # lets a long path wrap after a separator instead of anywhere
APPENDIX_A = "Appendix A — Audit trail"
APPENDIX_B = "Appendix B — Hash annex"
APPENDIX_C = "Appendix C — Notes in full"


@dataclass
class HashAnnex:
    """Full hashes in order of first appearance; each gets one reference number."""

    refs: dict[str, int] = field(default_factory=dict)
    where: dict[str, list[str]] = field(default_factory=dict)

    def ref(self, value: str, place: str) -> str:
        number = self.refs.setdefault(value, len(self.refs) + 1)
        seen = self.where.setdefault(value, [])
        if place not in seen:
            seen.append(place)
        return f"H{number}"


WJ = "\u2060"  # word joiner: no line break on either side of the ellipsis


def short(value: str) -> str:
    return f"{value[:8]}{WJ}…{WJ}{value[-4:]}"


def format_time(stamp: str) -> str:
    """'2026-12-01T20:25:11.515+00:00' -> '2026-12-01 20:25:11Z' (seconds are enough in a table;
    the full value stays in the case's audit log)."""
    m = re.match(r"^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:?\d\d)?$", stamp or "")
    if not m:
        return stamp or ""
    zone = m.group(3) or ""
    zone = "Z" if zone in ("Z", "+00:00", "+0000", "-00:00") else zone
    return f"{m.group(1)} {m.group(2)}{zone}"


MAX_SUMMARY_VALUE = 90  # characters of one value in the table; the case's audit log keeps it whole
#: Values the summary leaves out: the map file's name repeats its hash, `started` its `finished`; the
#: model's name and parameters are on the item's page (its SHA-256 stays, as [Hn]).
_SKIP = frozenset({"map_file", "started", "model_name", "parameters"})


def _scalar(value) -> str:  # noqa: ANN001 - any JSON value
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        if "model_card" in value and isinstance(value["model_card"], dict):
            rest = {k: v for k, v in value.items() if k != "model_card"}
            card = f"model card of {value['model_card'].get('name', '?')}"
            return card + (f", {_pairs(rest)}" if rest else "")
        return _pairs(value)
    if isinstance(value, list):
        return ", ".join(_scalar(v) for v in value)
    if value is None:
        return "none"
    text = str(value)
    if isinstance(value, str):
        text = text.replace("\n", " ")
        text = f"“{text[:MAX_SUMMARY_VALUE]}…”" if len(text) > MAX_SUMMARY_VALUE else (f"“{text}”" if " " in text or not text else text)
    return text


def _pairs(values: dict) -> str:
    return "; ".join(f"{k}: {_scalar(v)}" for k, v in values.items() if k not in _SKIP)


def summarise(fields: dict) -> str:
    """One entry's values as a reader wants them: a change as `field: old → new` for the fields that
    changed, long text cut, floats to six digits, a model card by its name."""
    if "new" in fields and "old" in fields:
        old, new = fields["old"], fields["new"]
        head = f"{fields['key']}: " if "key" in fields else ""
        if isinstance(old, dict) or isinstance(new, dict):
            old, new = old if isinstance(old, dict) else {}, new if isinstance(new, dict) else {}
            changed = [k for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]
            return head + "; ".join(f"{k}: {_scalar(old.get(k))} → {_scalar(new.get(k))}" for k in changed)
        return head + f"{_scalar(old)} → {_scalar(new)}"
    return _pairs(fields)


def _summary_cell(text: str, annex: HashAnnex, place: str) -> str:
    out, last = [], 0
    for m in HASH_RE.finditer(text):
        out.append(_breakable(text[last:m.start()]))
        value = m.group(0)
        ref = annex.ref(value, place)
        out.append(f"<tt>{escape(short(value))}</tt>&nbsp;[{ref}]")
        last = m.end()
    out.append(_breakable(text[last:]))
    return "".join(out)


def _breakable(text: str) -> str:
    """Escape, and allow a break after path separators inside long unbroken words."""
    words = []
    for word in text.split(" "):
        if len(word) > 24:
            word = re.sub(r"([/\\_.])", r"\1" + ZWSP, word)
        words.append(escape(word))
    return " ".join(words)


def _nowrap(text: str) -> str:
    return f"<td style='white-space: nowrap'>{escape(text)}</td>"


def audit_rows_html(rows: list[AuditRow], annex: HashAnnex, first_seq: int = 1) -> str:
    out = []
    for number, a in enumerate(rows, start=first_seq):
        place = f"entry {number}"
        out.append(
            "<tr>"
            f"<td>{number}</td>{_nowrap(format_time(a.time))}<td>{escape(a.actor)}</td>"
            f"{_nowrap(a.action)}{_nowrap(a.object)}<td>{_summary_cell(summarise(a.fields) if a.fields else a.details, annex, place)}</td>"
            "</tr>"
        )
    return "".join(out)


def appendix_html(d: ReportData, truncated: list[EvidenceItem]) -> str:
    annex = HashAnnex()
    rows = audit_rows_html(d.audit, annex) or (
        "<tr><td colspan='6'>The audit log holds no entry for this evidence.</td></tr>")
    html = (
        f"<h2>{APPENDIX_A}</h2>"
        "<p class='muted'>Entries from the case's audit log that concern the case or the evidence in this report, "
        f"oldest first ({len(d.audit)} entries; numbered here in the order shown). Times are UTC as recorded by the "
        "case store, to the second. Hashes are shortened to their first 8 and last 4 characters; [H<i>n</i>] "
        f"refers to the full value in {APPENDIX_B.split(' — ')[0]}.</p>"
        + anchor_html(d, annex) +
        "<table width='100%' border='0.5' cellspacing='0' cellpadding='1' style='font-size: 6.5pt'>"
        "<thead><tr><th width='4%'>#</th><th width='15%'>Time (UTC)</th><th width='10%'>Actor</th>"
        "<th width='13%'>Action</th><th width='10%'>Object</th><th width='48%'>Summary</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
    return html + hash_annex_html(d, annex) + notes_in_full_html(truncated)


def notes_in_full_html(truncated: list[EvidenceItem]) -> str:
    """Appendix C: the notes an item's page had to cut, whole."""
    if not truncated:
        return ""
    html = f"<h2>{APPENDIX_C}</h2>"
    for item in truncated:
        html += (f"<h3>ID {item.id} · {escape(item.name)}</h3>"
                 f"<p style='white-space: pre-wrap'>{escape(item.notes)}</p>")
    return html


def hash_annex_html(d: ReportData, annex: HashAnnex) -> str:
    if not annex.refs:
        return f"<h2>{APPENDIX_B}</h2><p>No hash appears in the audit entries above.</p>"
    rows = "".join(
        f"<tr><td>H{n}</td><td style='white-space: nowrap'><tt>{escape(value)}</tt></td>"
        f"<td>{escape(_places(annex.where[value]))}</td></tr>"
        for value, n in annex.refs.items()
    )
    return (
        f"<h2>{APPENDIX_B}</h2>"
        "<p class='muted'>Every hash shortened in the tables, in full (hexadecimal; 64 characters for SHA-256, "
        "32 for MD5).</p>"
        "<table border='0.5' cellspacing='0' cellpadding='2'>"
        "<thead><tr><th>Ref.</th><th>Full value</th><th>Appears in</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _places(places: list[str]) -> str:
    if len(places) <= 3:
        return ", ".join(places)
    return f"{', '.join(places[:3])} and {len(places) - 3} more"


def anchor_html(d: ReportData, annex: HashAnnex) -> str:
    """The audit head this report was made at: `declip case verify CASE --anchor THIS.pdf` proves the
    case's history still holds it (docs/INTEGRITY.md)."""
    if not d.audit_head:
        return ""
    ref = annex.ref(d.audit_head, "history anchor")
    return (f"<p><b>History anchor.</b> When this report was made the case's audit trail had {d.audit_count} "
            f"entries; the SHA-256 of the last one is <tt>{escape(short(d.audit_head))}</tt> [{ref}]. "
            "<tt>declip case verify</tt> with this report as <tt>--anchor</tt> checks that the history still "
            "holds it.</p>")
