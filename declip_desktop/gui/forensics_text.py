"""HTML for the forensics tabs: alerts and the Content Credentials summary (no widgets here)."""

from __future__ import annotations

import html
from typing import Any

SEVERITY_COLOURS = {"warning": "#b91c1c", "notice": "#b45309", "info": "#475569"}
C2PA_COLOURS = {"trusted": "#15803d", "valid": "#1d4ed8", "invalid": "#b91c1c", "error": "#b91c1c", "none": "#475569"}


def _e(value: Any) -> str:
    return html.escape(str(value if value is not None else "—"))


def alerts_html(alerts: list[dict[str, Any]]) -> str:
    if not alerts:
        return ("<p><i>No alerts.</i> The metadata shows no generator or editor signature and no "
                "inconsistency found by these checks; that does not make the image authentic.</p>")
    parts = []
    for a in alerts:
        colour = SEVERITY_COLOURS.get(a.get("severity"), "#475569")
        ev = "".join(f"<li><code>{_e(x.get('tag'))}</code>: {_e(str(x.get('value'))[:300])}</li>"
                     for x in a.get("evidence") or [])
        parts.append(
            f"<p><b style='color:{colour}'>[{_e(a.get('severity'))}] {_e(a.get('title'))}</b></p>"
            f"<ul>{ev}</ul><p><b>Shows:</b> {_e(a.get('shows'))}<br>"
            f"<b>Does not prove:</b> {_e(a.get('does_not_prove'))}</p>")
    return "".join(parts)


def _ingredients_html(nodes: list[dict[str, Any]]) -> str:
    if not nodes:
        return ""
    items = []
    for n in nodes:
        codes = ", ".join(n.get("validation") or [])
        items.append(f"<li>{_e(n.get('title'))} ({_e(n.get('relationship'))}, {_e(n.get('format'))})"
                     + (f" — {_e(n.get('claim_generator'))}" if n.get("claim_generator") else "")
                     + (f" <span style='color:#b91c1c'>{_e(codes)}</span>" if codes else "")
                     + _ingredients_html(n.get("ingredients") or []) + "</li>")
    return "<ul>" + "".join(items) + "</ul>"


def c2pa_html(c2pa: dict[str, Any]) -> str:
    state = c2pa.get("state") or "none"
    colour = C2PA_COLOURS.get(state, "#475569")
    label = {"trusted": "valid, trusted signer", "valid": "valid, signer not trusted here",
             "invalid": "INVALID", "error": "unreadable", "none": "none"}.get(state, state)
    parts = [f"<h3>Content Credentials (C2PA): <span style='color:{colour}'>{_e(label)}</span></h3>",
             f"<p>{_e(c2pa.get('statement'))}</p>"]
    if c2pa.get("failure_codes"):
        parts.append("<p><b>Failures:</b> " + ", ".join(f"<code>{_e(c)}</code>" for c in c2pa["failure_codes"])
                     + "</p>")
    active = c2pa.get("active") or {}
    if active:
        rows = [("Signer", active.get("signer")), ("Issuer", active.get("issuer")),
                ("Signed", active.get("signing_time")), ("Claim generator", active.get("claim_generator")),
                ("Title", active.get("title")), ("Manifest", active.get("label"))]
        parts.append("<table>" + "".join(f"<tr><td><b>{_e(k)}</b></td><td>{_e(v)}</td></tr>" for k, v in rows)
                     + "</table>")
    if c2pa.get("actions"):
        parts.append("<p><b>Actions</b></p><ul>" + "".join(
            f"<li><code>{_e(a.get('action'))}</code>"
            + (f" — source type <code>{_e(str(a['digital_source_type']).rsplit('/', 1)[-1])}</code>"
               if a.get("digital_source_type") else "")
            + (f" — by {_e(a['software_agent'])}" if a.get("software_agent") else "")
            + (f" — {len(a['regions'])} declared region(s)" if a.get("regions") else "") + "</li>"
            for a in c2pa["actions"]) + "</ul>")
    if c2pa.get("ingredients"):
        parts.append("<p><b>Ingredients</b></p>" + _ingredients_html(c2pa["ingredients"]))
    if c2pa.get("sdk"):
        parts.append(f"<p style='color:#6b7280'>Read with {_e(c2pa['sdk'])}, offline.</p>")
    return "".join(parts)


def badge_for(summary: dict[str, Any] | None) -> tuple[str, str] | None:
    """(short text, tooltip) for the evidence list, from `examination.alert_summaries`."""
    if not summary:
        return None
    bits, tips = [], []
    if summary.get("warnings"):
        bits.append(f"⚠{summary['warnings']}")
    elif summary.get("alerts"):
        bits.append(f"ℹ{summary['alerts']}")  # U+2139, which DejaVu has (ⓘ U+24D8 drew as a box)
    state = summary.get("c2pa_state")
    if state in ("trusted", "valid"):
        bits.append("CR✓")
    elif state in ("invalid", "error"):
        bits.append("CR✗")
    if summary.get("codes"):
        tips.append("alerts: " + ", ".join(summary["codes"]))
    if state and state != "none":
        tips.append(f"Content Credentials: {state}")
    if summary.get("error"):
        bits.append("?")
        tips.append(f"not examined: {summary['error']}")
    return (" ".join(bits), "\n".join(tips)) if bits else None
