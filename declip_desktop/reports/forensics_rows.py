"""Metadata, alerts and Content Credentials of an item, as rows for its report details page.

Called by `collect` (data) so the PDF code only draws label/value rows; the stored
examination is hash-checked on the way (`examination.load_examination`).
"""

from __future__ import annotations

from typing import Any

from declip_desktop.examination import ExaminationChanged, load_examination
from declip_desktop.forensics.metadata import key_fields

_WANTED = ("Software", "Creator tool", "GPS", "JPEG quality", "Lens", "ICC profile")
_MAX_ALERT_TITLES = 3

METHOD_HTML = """
<h3>Metadata, alerts and Content Credentials</h3>
<p>At import each file's metadata (EXIF, XMP, IPTC, ICC, PNG text, GPS, the embedded thumbnail and the
JPEG quantization tables) was read and checked for known generator and editor signatures and for
inconsistencies; Content Credentials (C2PA) were validated offline with the c2pa library. The record is
kept in the case with its SHA-256 in the audit log. Metadata is written by software and can be edited,
copied or removed: an alert is a reason to look closer, not a finding about the pixels, and the absence
of an alert or of Content Credentials proves nothing. A C2PA signature that is valid but not from a
trusted signer shows that the file is unchanged since someone signed it, not who that someone is.</p>
"""


def _c2pa_text(c2pa: dict[str, Any]) -> str:
    state = c2pa.get("state") or "none"
    if state == "none":
        return "none (proves nothing: most files carry none)"
    active = c2pa.get("active") or {}
    parts = [{"trusted": "valid, trusted signer", "valid": "valid, signer not trusted here",
              "invalid": "INVALID", "error": "unreadable"}.get(state, state)]
    if active.get("signer"):
        parts.append(f"signed by {active['signer']}")
    if c2pa.get("failure_codes"):
        parts.append("failures: " + ", ".join(c2pa["failure_codes"][:4]))
    sources = sorted({str(a.get("digital_source_type")).rsplit("/", 1)[-1] for a in c2pa.get("actions") or []
                      if a.get("digital_source_type")})
    if sources:
        parts.append("source: " + ", ".join(sources))
    return "; ".join(parts)


def rows_from_record(record: dict[str, Any]) -> list[tuple[str, str]]:
    """[(label, value)] for one examination record (dict stored by `examination`)."""
    fields = dict(key_fields(record.get("metadata") or {}))
    rows = [(label, fields[label]) for label in _WANTED if label in fields]
    rows += [(label, value[:120]) for label, value in fields.items() if label.startswith("PNG text")][:2]
    alerts = record.get("alerts") or []
    if alerts:
        titles = "; ".join(a["title"] for a in alerts[:_MAX_ALERT_TITLES])
        more = f" (+{len(alerts) - _MAX_ALERT_TITLES} more)" if len(alerts) > _MAX_ALERT_TITLES else ""
        rows.append((f"Alerts ({len(alerts)})", titles + more))
    else:
        rows.append(("Alerts", "none found by the metadata checks"))
    rows.append(("Content Credentials", _c2pa_text(record.get("c2pa") or {})))
    return rows


def forensics_rows(case, evidence_id: int) -> list[tuple[str, str]]:  # noqa: ANN001 - a cases.Case
    """Rows for the details page; says so plainly when there is no usable examination."""
    try:
        exam = load_examination(case, evidence_id)
    except ExaminationChanged as exc:
        return [("Metadata examination", f"NOT USED: {exc}")]
    if exam is None:
        return [("Metadata examination", "not examined (run `declip case examine`)")]
    return rows_from_record(exam.record)
