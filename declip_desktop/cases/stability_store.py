"""Stability checks in the case: one row per check, written with its audit entry in one transaction.

A check (made by `analysis.stability`) re-analyses copies of an evidence item re-saved as JPEG,
down-scaled and blurred, and records per region of the original result in how many copies it
persists (`common.stability`). Everything a check computed is in its `stability.stored` audit
entry, so `cases.replay` rebuilds the row and `cases.reconcile` catches a hand edit.

The copies live in a scratch folder `.tmp/stability-<token>/` (`scratch_folder`), deleted when
the check ends in any way; a folder left by a killed process is deleted by the next check or
the next read-write open of the case (`discard_scratch`, under the case's analysis lock).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from declip_desktop.cases import audit
from declip_desktop.cases.errors import CaseError
from declip_desktop.cases.files import TMP_DIR
from declip_desktop.common.stability import RegionStability
from declip_desktop.common.version import SOFTWARE_VERSION

ACTION = "stability.stored"
SCRATCH_PREFIX = "stability-"
#: Columns a check's audit entry records, in the table's order.
FIELDS = ("evidence_id", "analysis_id", "model_name", "model_sha256", "evidence_sha256", "threshold", "min_iou",
          "variants", "regions", "parameters", "software_version", "started", "finished", "seconds")
JSON_FIELDS = ("variants", "regions", "parameters")


@dataclass(frozen=True)
class StabilityCheck:
    id: int
    evidence_id: int
    analysis_id: int
    model_name: str
    model_sha256: str
    evidence_sha256: str
    threshold: float
    min_iou: float
    variants: list[dict]  # name, label, kind, value, sha256 of the copy, score, seconds
    regions: list[RegionStability]
    parameters: dict
    software_version: str
    started: str
    finished: str
    seconds: float
    created_by: str

    def variant_labels(self) -> dict[str, str]:
        return {v["name"]: v.get("label", v["name"]) for v in self.variants}

    def region_for(self, bbox: tuple[int, int, int, int], area_px: int) -> RegionStability | None:
        """The checked region with this bounding box and area (a region at the check's threshold)."""
        for r in self.regions:
            if tuple(r.bbox) == tuple(bbox) and r.area_px == int(area_px):
                return r
        return None


def _check(row: dict[str, Any]) -> StabilityCheck:
    def load(name: str, default: Any) -> Any:
        try:
            return json.loads(row[name]) if row[name] else default
        except ValueError:
            raise CaseError(f"stability check {row['id']}: its {name} are unreadable in the database (edited "
                            "outside the application). Run `declip case verify`.") from None

    return StabilityCheck(
        id=int(row["id"]), evidence_id=int(row["evidence_id"]), analysis_id=int(row["analysis_id"]),
        model_name=row["model_name"] or "", model_sha256=row["model_sha256"],
        evidence_sha256=row["evidence_sha256"] or "", threshold=float(row["threshold"]),
        min_iou=float(row["min_iou"]), variants=load("variants", []),
        regions=[RegionStability.from_dict(r) for r in load("regions", [])], parameters=load("parameters", {}),
        software_version=row["software_version"], started=row["started"] or "", finished=row["finished"] or "",
        seconds=float(row["seconds"] or 0.0), created_by=row["created_by"] or "")


def _has_table(case: Any) -> bool:
    return case._store.scalar(  # noqa: SLF001 - this package's own store
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'stability_checks'") is not None


def store_check(case: Any, *, evidence_id: int, analysis_id: int, model_name: str, model_sha256: str,
                evidence_sha256: str, threshold: float, min_iou: float, variants: list[dict],
                regions: list[RegionStability], parameters: dict, started: str, finished: str, seconds: float,
                analyst: str | None = None) -> StabilityCheck:
    """Store one finished check and its audit entry in one transaction (nothing partial)."""
    analysis = case.get_analysis(analysis_id)
    if analysis.evidence_id != int(evidence_id) or not analysis.ok:
        raise CaseError(f"analysis {analysis_id} is not a successful result of evidence {evidence_id}; "
                        "the stability check was not stored.")
    values = {
        "evidence_id": int(evidence_id), "analysis_id": int(analysis_id), "model_name": str(model_name),
        "model_sha256": str(model_sha256), "evidence_sha256": str(evidence_sha256), "threshold": float(threshold),
        "min_iou": float(min_iou), "variants": [dict(v) for v in variants],
        "regions": [r.as_dict() for r in regions], "parameters": dict(parameters),
        "software_version": SOFTWARE_VERSION, "started": started, "finished": finished, "seconds": float(seconds),
    }
    with case._write() as conn:  # noqa: SLF001 - this package's own transaction
        actor = case._actor(analyst, conn)  # noqa: SLF001
        row = {k: (json.dumps(v, sort_keys=True, ensure_ascii=False) if k in JSON_FIELDS else v)
               for k, v in values.items()}
        cur = conn.execute(
            f"INSERT INTO stability_checks ({', '.join(FIELDS)}, created_by) "  # noqa: S608 - fixed names
            f"VALUES ({', '.join('?' * len(FIELDS))}, ?)", (*(row[k] for k in FIELDS), actor))
        check_id = int(cur.lastrowid)
        audit.append(conn, actor, ACTION, f"stability:{check_id}",
                     {k: v for k, v in values.items() if k != "evidence_id"}, int(evidence_id))
    return get_check(case, check_id)


def get_check(case: Any, check_id: int) -> StabilityCheck:
    row = case._store.one("SELECT * FROM stability_checks WHERE id = ?", (int(check_id),))  # noqa: SLF001
    if row is None:
        raise CaseError(f"no stability check with id {check_id} in this case.")
    return _check(row)


def checks(case: Any, evidence_id: int | None = None) -> list[StabilityCheck]:
    """The case's checks (of one item), oldest first; none in a case older than the table."""
    if not _has_table(case):
        return []
    if evidence_id is None:
        rows = case._store.query("SELECT * FROM stability_checks ORDER BY id")  # noqa: SLF001
    else:
        rows = case._store.query("SELECT * FROM stability_checks WHERE evidence_id = ? ORDER BY id",  # noqa: SLF001
                                 (int(evidence_id),))
    return [_check(r) for r in rows]


def latest_check(case: Any, evidence_id: int, analysis_id: int | None = None) -> StabilityCheck | None:
    """The newest check of an item (of one of its results, when `analysis_id` is given)."""
    found = [c for c in checks(case, evidence_id) if analysis_id is None or c.analysis_id == int(analysis_id)]
    return found[-1] if found else None


@contextlib.contextmanager
def scratch_folder(case: Any) -> Iterator[Path]:
    """A new empty folder under the case's `.tmp/` for the copies; removed however the block ends."""
    folder = Path(case.path) / TMP_DIR / f"{SCRATCH_PREFIX}{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=False)


def discard_scratch(tmp: Path) -> int:
    """Delete scratch folders a killed check left in `tmp`; call only while holding the case's
    analysis lock (no check is running). Returns how many were removed."""
    removed = 0
    if not tmp.is_dir():
        return 0
    for entry in tmp.iterdir():
        if entry.name.startswith(SCRATCH_PREFIX) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
            removed += 1
    return removed


__all__ = ["ACTION", "StabilityCheck", "checks", "discard_scratch", "get_check", "latest_check", "scratch_folder",
           "store_check"]
