"""Formatting shared by the report's pages: numbers, hashes, result labels, metadata picks."""

from __future__ import annotations

import re

from PySide6.QtGui import QColor

from declip_desktop.reports import layout as L
from declip_desktop.reports.model import EvidenceItem, ModelInfo, ReportData


def fmt_score(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def fmt_threshold(value: float) -> str:
    return f"{value:.2f}"


def short_hash(sha: str) -> str:
    return f"{sha[:12]}…{sha[-4:]}" if len(sha) > 16 else sha


def result_label(item: EvidenceItem) -> str:
    if item.analysed:
        return "analysed"
    if item.failed:
        return "ANALYSIS FAILED"
    return f"not analysed ({item.status})"


VERDICT_COLORS = {
    "manipulated": L.ALERT,
    "authentic": L.OK,
    "inconclusive": QColor(160, 100, 0),
}


# ----------------------------------------------------------------------------------------------
# Metadata shown on the details page


def _flatten(meta: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in (meta or {}).items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}".lower()] = value
    return flat


def _pick(flat: dict[str, object], *names: str) -> str | None:
    for name in names:
        for key, value in flat.items():
            if (key == name or key.endswith("." + name)) and value not in (None, ""):
                return str(value).strip()
    return None


def key_metadata(item: EvidenceItem) -> list[tuple[str, str]]:
    """Camera, capture date, software and dimensions, whatever names the importer used."""
    flat = _flatten(item.metadata)
    camera = _pick(flat, "camera")
    if camera is None:
        make, model = _pick(flat, "make", "camera_make"), _pick(flat, "model", "camera_model")
        if model and make and model.lower().startswith(make.lower()):
            make = None  # many cameras repeat the maker in the model name
        camera = " ".join(filter(None, (make, model))) or None
    captured = _pick(flat, "capture_date", "captured", "datetimeoriginal", "datetime_original", "datetime", "date_time")
    software = _pick(flat, "software", "processing_software")
    dims = f"{item.width} × {item.height} px" if item.width and item.height else "unknown"
    return [
        ("Camera", camera or "not recorded"),
        ("Capture date", captured or "not recorded"),
        ("Software", software or "not recorded"),
        ("Dimensions", dims),
    ]


def threshold_note(item: EvidenceItem) -> str:
    return {"default": " (default)", "case": " (case default)", "report": " (for this report)"}.get(
        item.threshold_source, "")


def distinct_models(items: list[EvidenceItem]) -> list[ModelInfo]:
    seen: dict[str, ModelInfo] = {}
    for item in items:
        if item.analysis is not None and item.analysis.status == "done":
            seen.setdefault(item.analysis.model.sha256, item.analysis.model)
    return list(seen.values())


def format_generated_at(d: ReportData) -> str:
    t = d.generated_at
    offset = t.strftime("%z")
    return f"{t.strftime('%Y-%m-%d %H:%M:%S')} {t.tzname() or ''} (UTC{offset[:3]}:{offset[3:]})".replace("  ", " ")


def breakable_path(path: str) -> str:
    """A path that wraps after its separators rather than inside a folder's name (zero-width spaces)."""
    return re.sub(r"([/\\])", "\\1\u200b", path)


def marks_rows(item: EvidenceItem) -> list[tuple[str, str]]:
    """The analyst's tags and bookmark, when the item has any (one row)."""
    parts = (["★ bookmarked"] if item.bookmarked else []) + ([", ".join(item.tags)] if item.tags else [])
    return [("Tags", " · ".join(parts))] if parts else []


def custody_rows(item: EvidenceItem) -> list[tuple[str, str]]:
    """Where the file came from, who brought it into the case and when, and the file's own
    times then (modified / status changed, as the source file system reported them)."""
    times = item.file_times or {}
    rows = [
        ("Original name", item.name),
        ("Imported from", breakable_path(item.original_path) if item.original_path else "not recorded"),
        ("Imported", " by ".join(filter(None, (item.imported_at, item.imported_by))) or "not recorded"),
        ("File modified", times.get("modified") or "not recorded (imported before times were kept)"),
    ]
    if times.get("created"):
        rows.append(("File created", times["created"]))
    if times.get("changed"):
        rows.append(("Status changed", times["changed"]))
    rows.append(("Size", f"{item.size:,} bytes" if item.size is not None else "unknown"))
    return rows
