"""CSV/JSON export of a case's results: one row per evidence with its latest analysis.

The exported file's SHA-256 is written to the audit log, so a spreadsheet that later
circulates can be matched to the case."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from declip_desktop.cases.errors import CaseError
from declip_desktop.common.hashing import sha256_bytes
from declip_desktop.common.outputs import (
    DiskFullError,
    OutputRefused,
    Protected,
    check_destination,
    check_output_folder,
    write_output,
)
from declip_desktop.common.text import csv_safe
from declip_desktop.common.version import software_id

COLUMNS = [
    "evidence_id", "original_name", "original_path", "sha256", "md5", "size", "format", "width", "height",
    "imported_by", "imported_at", "status", "score", "threshold", "verdict", "notes", "reviewed_by",
    "reviewed_at", "model_name", "model_sha256", "map_file", "map_sha256", "device", "seconds",
    "software_version", "analysis_started", "analysis_finished", "analysis_error",
    "role", "calibration_id", "calibrated_above_references", "calibration_n",  # cases.calibration
    "tags", "bookmarked",  # cases.tags
    "calibrated_image_threshold", "calibrated_pixel_threshold", "calibration_note",
    "annotation_count", "annotations",  # cases.annotations: live ones, "#id 'label' shape"; JSON has them all
]


def _annotation_cell(items: list) -> str:
    return "; ".join(f"#{a.id} {a.label!r} {a.shape.describe()}" for a in items)


def result_rows(case: Any, with_annotation_records: bool = False) -> list[dict[str, Any]]:
    """One row per evidence; with `with_annotation_records` (JSON) each row also holds its
    annotations in full (geometry, author, times; deleted ones too, marked as such)."""
    from declip_desktop.cases.annotations import annotations
    from declip_desktop.cases.calibration import current_calibrations, reading, roles, uncalibrated_reason
    from declip_desktop.cases.tags import Marks, all_marks

    marks = all_marks(case)
    rows = []
    marked, cals = roles(case), current_calibrations(case)
    drawn: dict[int, list] = {}
    for item in annotations(case, include_deleted=True):
        drawn.setdefault(item.evidence_id, []).append(item)
    for ev in case.evidence_list():
        mark = marks.get(ev.id, Marks())
        a = case.latest_analysis(ev.id)
        read = reading(case, ev.id, cals) if cals else None
        live = [x for x in drawn.get(ev.id, []) if not x.deleted]
        note = "; ".join(read.notes) if read else uncalibrated_reason(case, ev.id, cals)
        extra: dict[str, Any] = {}
        if with_annotation_records:
            extra["annotation_records"] = [x.as_dict() for x in drawn.get(ev.id, [])]
        rows.append({
            "role": marked.get(ev.id), "calibration_id": read.calibration.id if read else None,
            "calibrated_above_references": read.standing.below if read else None,
            "calibration_n": read.standing.n if read else None,
            "calibrated_image_threshold": read.calibration.image.threshold if read else None,
            "calibrated_pixel_threshold": read.pixel_threshold if read else None,
            "calibration_note": note or None,
            "annotation_count": len(live), "annotations": _annotation_cell(live), **extra,
            "evidence_id": ev.id, "original_name": ev.original_name, "original_path": ev.original_path,
            "sha256": ev.sha256, "md5": ev.md5, "size": ev.size, "format": ev.format, "width": ev.width,
            "height": ev.height, "imported_by": ev.imported_by, "imported_at": ev.imported_at, "status": ev.status,
            "score": a.score if a else None, "threshold": ev.threshold, "verdict": ev.verdict, "notes": ev.notes,
            "reviewed_by": ev.reviewed_by, "reviewed_at": ev.reviewed_at,
            "model_name": a.model_name if a else None, "model_sha256": a.model_sha256 if a else None,
            "map_file": a.map_file if a else None, "map_sha256": a.map_sha256 if a else None,
            "device": a.device if a else None, "seconds": a.seconds if a else None,
            "software_version": a.software_version if a else None, "analysis_started": a.started if a else None,
            "analysis_finished": a.finished if a else None, "analysis_error": a.error if a else None,
            "tags": list(mark.tags), "bookmarked": mark.bookmarked,  # the analyst's labels (cases.tags)
        })
    return rows


def calibration_record(case: Any) -> dict[str, Any]:
    """The references and every calibration (current and past, with all stored values), for an
    export or bundle: what an opposing expert needs to check or redo a calibrated reading."""
    from declip_desktop.cases.calibration import calibrations, current_calibrations, roles

    current = {c.id for c in current_calibrations(case).values()}
    return {"roles": {str(k): v for k, v in roles(case).items()},
            "calibrations": [{**c.as_dict(), "current": c.id in current} for c in calibrations(case)]}


def case_originals(case: Any) -> Protected:
    """The case's evidence files and the originals they were imported from: never written over."""
    guard = Protected()
    for ev in case.evidence_list():
        guard.add(case.evidence_file(ev))
        if ev.original_path:
            guard.add(ev.original_path)
    return guard


def export_results(case: Any, out: str | os.PathLike[str], analyst: str | None = None, *,
                   force: bool = False) -> Path:
    """Write `out` (.csv or .json) atomically and log its hash. Returns the path written."""
    out_path, details = write_export(case, out, force=force)
    record_export(case, out_path, details, analyst=analyst)
    return out_path


def record_export(case: Any, out_path: Path, details: dict[str, Any], analyst: str | None = None,
                  wait_s: float | None = None) -> None:
    """The audit entry of an export written by `write_export` (a separate step, so an export can
    be read from a read-only snapshot and recorded afterwards, when the case can be written)."""
    case.log_event("case.exported", f"export:{out_path.name}", details, analyst=analyst, wait_s=wait_s)


def write_export(case: Any, out: str | os.PathLike[str], *, force: bool = False) -> tuple[Path, dict[str, Any]]:
    """Write `out` (.csv or .json) atomically; reads only. Returns (path, details for the audit entry).

    `out` may not be inside a case (except its exports/), an evidence file or original, or a
    symbolic link (OutputRefused); an existing file is replaced only with `force`. CSV cells
    that a spreadsheet would run as a formula are written as text (`common.text.csv_safe`)."""
    out_path = Path(out).expanduser().absolute()
    suffix = out_path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise CaseError(f"{out_path}: export to a .csv or .json file (the suffix chooses the format).")
    altered = case.check_records()
    if altered:  # an export must not hand over values changed outside the application
        raise CaseError(f"the case database does not match its audit trail ({len(altered)} problem(s), first: "
                        f"{altered[0].detail}); nothing was exported. Run `declip case verify {case.path}`.")
    protect = case_originals(case)
    check_output_folder(out_path.parent)  # created if needed, as before; never inside a case's internals
    check_destination(out_path, force=force, protect=protect, what="export")
    rows = result_rows(case, with_annotation_records=suffix == ".json")
    if suffix == ".csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if v is None else csv_safe("; ".join(v) if isinstance(v, list) else v))
                             for k, v in r.items()})
        data = buf.getvalue().encode("utf-8")
    else:
        info = case.info
        head, count = case.audit_head()
        doc = {
            "case": {"number": info.number, "title": info.title, "analyst": info.analyst,
                     "description": info.description, "created": info.created, "uuid": info.uuid},
            "exported_with": software_id(),
            "audit_head": head,
            "audit_entries": count,
            "evidence": rows,
            **calibration_record(case),
        }
        data = (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    try:
        out_path = write_output(out_path, data, force=force, protect=protect, what="export")
    except (DiskFullError, OutputRefused):
        raise
    except OSError as exc:
        raise CaseError(f"cannot write {out_path}: {exc.strerror or exc}. Choose another location.") from exc
    return out_path, {"path": str(out_path), "sha256": sha256_bytes(data), "rows": len(rows), "format": suffix[1:]}
