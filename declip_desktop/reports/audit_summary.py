"""The compact layout's audit appendix: the trail summarised per action, and the full trail attached.

A compact report is read for its results; an audit table of one line per entry takes three pages
for 13 items and grows with every review. The compact layout therefore prints one line per kind of
action (how many entries, first and last time, who), the history anchor with its full hash, and
says where the whole trail is: attached to this PDF as `audit-trail.json` (every entry the report
covers, with all its values and its chain hashes: `reports.build` embeds it in both layouts), in
the full layout's table (`--layout full`), and in the case itself (`declip case verify`).
"""

from __future__ import annotations

import json
from html import escape

from declip_desktop.reports.appendix import APPENDIX_A, format_time
from declip_desktop.reports.model import ReportData

AUDIT_ATTACHMENT = "audit-trail.json"
#: What each action means, in a reader's words (unknown actions print their own name only).
ACTION_TEXT = {
    "case.created": "case created",
    "case.updated": "case title or description changed",
    "case.migrated": "case format upgraded",
    "case.recovered": "interrupted work finished or discarded",
    "case.exported": "results exported",
    "case.bundled": "reproducibility bundle written",
    "evidence.imported": "evidence imported (hashed on import)",
    "evidence.duplicate": "duplicate file not imported again",
    "evidence.rejected": "file refused at import",
    "forensics.examined": "metadata, alerts and provenance examined",
    "forensics.failed": "metadata examination failed",
    "forensics.pinned": "view pinned to the report",
    "forensics.unpinned": "view unpinned from the report",
    "evidence.tags_changed": "analyst's tags or bookmark changed",
    "analysis.stored": "analysis result stored",
    "analysis.failed": "analysis failed",
    "analysis.requeued": "evidence queued again",
    "analysis.dequeued": "evidence taken off the queue",
    "analysis.interrupted": "analysis interrupted and requeued",
    "analysis.stopped": "analysis run stopped",
    "analysis.device_fallback": "analysis moved to another device",
    "analysis.cluster_started": "cluster run started",
    "analysis.cluster_finished": "cluster run finished",
    "review.changed": "verdict, notes or threshold changed",
    "setting.changed": "case setting changed",
    "report.registered": "report registered (SHA-256 recorded)",
    "report.signed": "report signed",
    "key.registered": "signing key recorded",
}


def audit_summary_html(d: ReportData) -> str:
    """Appendix A of the compact layout, as HTML for QTextDocument."""
    groups: dict[str, list] = {}
    for row in d.audit:
        groups.setdefault(row.action, []).append(row)
    lines = []
    for action, rows in groups.items():  # in order of first appearance, as the trail is
        actors = sorted({r.actor for r in rows})
        who = ", ".join(actors[:3]) + (f" and {len(actors) - 3} more" if len(actors) > 3 else "")
        meaning = ACTION_TEXT.get(action, "")
        first, last = format_time(rows[0].time), format_time(rows[-1].time)
        lines.append(
            f"<tr><td style='white-space: nowrap'>{escape(action)}</td><td>{escape(meaning)}</td>"
            f"<td align='right'>{len(rows)}</td><td style='white-space: nowrap'>{escape(first)}</td>"
            f"<td style='white-space: nowrap'>{escape(last if last != first else '')}</td><td>{escape(who)}</td></tr>")
    body = "".join(lines) or "<tr><td colspan='6'>The audit log holds no entry for this evidence.</td></tr>"
    anchor = ""
    if d.audit_head:
        anchor = (f"<p><b>History anchor.</b> When this report was made the case's audit trail had {d.audit_count} "
                  "entries; the SHA-256 of the last one is</p>"
                  f"<p style='white-space: nowrap'><tt>{escape(d.audit_head)}</tt></p>"
                  "<p><tt>declip case verify</tt> with this report as <tt>--anchor</tt> checks that the history "
                  "still holds it.</p>")
    return (
        f"<h2>{APPENDIX_A} (summary)</h2>"
        f"<p class='muted'>The {len(d.audit)} entries of the case's audit log that concern the case or the evidence "
        "in this report, one line per kind of action (times UTC, to the second). Every entry in full, with its "
        f"values and chain hashes, is attached to this PDF as <tt>{AUDIT_ATTACHMENT}</tt> (a PDF reader lists it "
        "under attachments); the full layout of this report prints it as a table; and the case itself keeps it "
        "(<tt>declip case verify</tt> checks every entry).</p>"
        + anchor +
        "<table width='100%' border='0.5' cellspacing='0' cellpadding='2'>"
        "<thead><tr><th>Action</th><th>Meaning</th><th>Entries</th><th>First (UTC)</th><th>Last (UTC)</th>"
        f"<th>By</th></tr></thead><tbody>{body}</tbody></table>"
    )


def audit_attachment(d: ReportData) -> bytes:
    """The report's audit entries in full (UTF-8 JSON): what the table or the summary shows, unshortened."""
    doc = {
        "case_number": d.case_number,
        "case_uuid": d.case_uuid,
        "audit_head": d.audit_head,
        "audit_count": d.audit_count,
        "scope": "entries of the case and of the evidence in this report" if not d.whole_case
        else "entries of the case and of all its evidence",
        "entries": [row.entry or {"ts": row.time, "actor": row.actor, "action": row.action, "object": row.object,
                                  "details_text": row.details} for row in d.audit],
    }
    return json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")


__all__ = ["ACTION_TEXT", "AUDIT_ATTACHMENT", "audit_attachment", "audit_summary_html"]
