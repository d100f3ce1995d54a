"""Case database rows as records: the one place that turns `evidence` and `analyses` rows
into `Evidence` and `Analysis`, and values into the JSON text stored in their columns."""

from __future__ import annotations

import json
from typing import Any

from declip_desktop.cases.records import Analysis, Evidence

#: Which result of an item is shown (its "latest"): the newest one, except that a secondary model's
#: result of a multi-model run (analysis.multi_model) never hides the primary model's.
#: (CASE: a parameters value edited into invalid JSON must not break every listing: verify names it.)
SHOWN_FIRST = ("(CASE WHEN json_valid(parameters) THEN json_extract(parameters, '$.agreement.role') END "
               "IS 'secondary'), id DESC")

#: Every evidence row with the score and error of its latest (shown) analysis.
EVIDENCE_SELECT = f"""
SELECT e.*, a.score AS latest_score, a.error AS latest_error
FROM evidence e
LEFT JOIN analyses a ON a.id = (SELECT id FROM analyses WHERE evidence_id = e.id ORDER BY {SHOWN_FIRST} LIMIT 1)
"""
def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def evidence_from_row(row: dict[str, Any]) -> Evidence:
    return Evidence(
        id=row["id"],
        original_name=row["original_name"],
        original_path=row["original_path"] or "",
        sha256=row["sha256"],
        md5=row["md5"],
        size=row["size"],
        format=row["format"] or "",
        width=row["width"] or 0,
        height=row["height"] or 0,
        metadata=json.loads(row["metadata"] or "{}"),
        imported_by=row["imported_by"],
        imported_at=row["imported_at"],
        status=row["status"],
        threshold=row["threshold"],
        verdict=row["verdict"] or "not reviewed",
        notes=row["notes"] or "",
        score=row.get("latest_score"),
        error=row.get("latest_error"),
        stored_name=row["stored_name"],
        mode=row["mode"] or "",
        reviewed_by=row.get("reviewed_by"),
        reviewed_at=row.get("reviewed_at"),
    )


def analysis_from_row(row: dict[str, Any]) -> Analysis:
    return Analysis(
        id=row["id"],
        evidence_id=row["evidence_id"],
        model_name=row["model_name"],
        model_sha256=row["model_sha256"],
        parameters=json.loads(row["parameters"] or "{}"),
        score=row["score"],
        map_file=row["map_file"],
        map_sha256=row["map_sha256"],
        device=row["device"],
        seconds=row["seconds"],
        software_version=row["software_version"],
        started=row["started"],
        finished=row["finished"],
        error=row["error"],
        created_by=row["created_by"] or "",
    )
