"""The examiner's declaration that closes the report body: who examined what, for whom, what they
were asked, the declaration text (the case's template, filled in), and date and signature lines.

The fields come from `cases.examiner` through `ReportData.examiner`; an empty field is printed as
"[not set]" so a report made before the examiner filled them in cannot pass for a finished one.
"""

from __future__ import annotations

from html import escape

from declip_desktop.reports.formatting import format_generated_at
from declip_desktop.reports.model import ReportData

DECLARATION_HEADING = "Examiner's declaration"
NOT_SET = "[not set]"


def _value(text: str) -> str:
    return escape(text) if text.strip() else f"<span class='alert'>{NOT_SET}</span>"


def attestation_html(d: ReportData, new_page: bool = False) -> str:
    """`new_page`: start on a fresh page (when the block would otherwise be split across two)."""
    e = d.examiner
    rows = "".join(
        f"<tr><td width='30%'><b>{label}</b></td><td>{_value(value)}</td></tr>"
        for label, value in (
            ("Examiner", e.name), ("Role", e.role), ("Organisation", e.organisation),
            ("Requested by", e.requester), ("Request reference", e.reference), ("Question asked", e.question),
            ("Case", f"{d.case_number} — {d.case_title}"),
            ("Evidence examined", f"{len(d.evidence)} item(s), listed in the summary with their SHA-256"),
        )
    )
    declaration = e.declaration or NOT_SET
    return f"""
<h2{" style='page-break-before: always'" if new_page else ""}>{DECLARATION_HEADING}</h2>
<table width='100%' cellspacing='0' cellpadding='2'>{rows}</table>
<p style='white-space: pre-wrap'>{escape(declaration)}</p>
<p>Report generated {escape(format_generated_at(d))} by {escape(d.software)}.</p>
<table width='100%' cellspacing='0' cellpadding='4'>
<tr><td width='50%'><br><br>Date: ______________________________</td>
<td width='50%'><br><br>Signature: ______________________________</td></tr>
<tr><td></td><td>{_value(e.name)}{(', ' + escape(e.role)) if e.role.strip() else ''}</td></tr>
</table>
"""
