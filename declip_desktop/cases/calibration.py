"""Per-case calibration from reference-authentic evidence: roles, stored calibrations, readings.

An analyst marks evidence known to be authentic and like the questioned images (same camera,
platform or source) as a *reference*. A reference is not a questioned item: reports list it
apart. `calibrate` takes the references' latest results of one model (by SHA-256), derives the
image-score and pixel thresholds for the chosen false-alarm rates with bootstrap intervals
(`common.calibration`), and stores them. Every questioned result of that model then reads as a
rate ("score 0.91 — above 92.9 % of this case's authentic references (13 of 14, n = 14)").

Stored state and its audit entries (replayed by `cases.replay`, compared by `cases.reconcile`):

- table `evidence_roles` (evidence_id, role, set_by, set_at): action `evidence.role_changed`
  {old, new, set_by, set_at}; unmarking deletes the row (new = None).
- table `calibrations` (one row per calibration; never updated except to mark it cleared):
  action `calibration.computed` with every stored value; `calibration.cleared` {calibration_id,
  cleared_by, cleared_at}. The current calibration of a model is its newest one not cleared;
  recalibrating (after adding a reference, say) is a new row and a new entry, the old one stays.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from declip_desktop.cases import audit
from declip_desktop.cases.errors import CaseError
from declip_desktop.common import calibration as stats
from declip_desktop.common.hashing import sha256_file
from declip_desktop.common.version import SOFTWARE_VERSION

REFERENCE_ROLE = "reference-authentic"
ROLES = (REFERENCE_ROLE,)
METHOD = "conformal-quantile+bootstrap/v1"

#: Columns of `calibrations` that `calibration.computed` records (JSON ones hold lists / dicts).
CALIBRATION_COLUMNS = (
    "model_name", "model_sha256", "method", "image_rate", "pixel_rate", "seed", "resamples", "confidence", "n",
    "image_threshold", "image_low", "image_high", "image_attainable", "pixel_threshold", "pixel_low", "pixel_high",
    "reference_items", "summary", "warning", "software_version", "created_by", "created_at",
)
JSON_COLUMNS = ("reference_items", "summary")


@dataclass(frozen=True)
class Reference:
    evidence_id: int
    name: str
    sha256: str
    analysis_id: int
    score: float


@dataclass(frozen=True)
class Calibration:
    id: int
    model_name: str
    model_sha256: str
    method: str
    image_rate: float
    pixel_rate: float
    seed: int
    resamples: int
    confidence: float
    n: int
    image: stats.ThresholdEstimate
    pixel: stats.ThresholdEstimate
    references: tuple[Reference, ...]
    summary: dict[str, Any]
    warning: str | None
    software_version: str
    created_by: str
    created_at: str
    cleared_by: str | None = None
    cleared_at: str | None = None

    @property
    def reference_scores(self) -> list[float]:
        return [r.score for r in self.references]

    def standing(self, score: float) -> stats.Standing:
        return stats.standing(score, self.reference_scores)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "model_name": self.model_name, "model_sha256": self.model_sha256, "method": self.method,
            "image_rate": self.image_rate, "pixel_rate": self.pixel_rate, "seed": self.seed,
            "resamples": self.resamples, "confidence": self.confidence, "n": self.n,
            "image": self.image.as_dict(), "pixel": self.pixel.as_dict(),
            "references": [r.__dict__ for r in self.references], "summary": self.summary, "warning": self.warning,
            "software_version": self.software_version, "created_by": self.created_by, "created_at": self.created_at,
            "cleared_by": self.cleared_by, "cleared_at": self.cleared_at,
        }


@dataclass(frozen=True)
class Reading:
    """A questioned result read against its model's calibration."""

    calibration: Calibration
    score: float
    standing: stats.Standing
    above_image_threshold: bool
    analysis_id: int
    notes: list[str] = field(default_factory=list)

    @property
    def pixel_threshold(self) -> float:
        return self.calibration.pixel.threshold

    def text(self) -> str:
        """The standing, with the notes that qualify it (an item that is one of the calibration's
        own references is not read independently: every display must say so)."""
        return self.standing.text() + "".join(f"; NOTE: {note}" for note in self.notes)


# ------------------------------------------------------------------------------ schema
def migrate_v4(db: Any) -> None:
    """Schema step: evidence roles (reference-authentic) and calibrations (cases.schema calls it)."""
    db["evidence_roles"].create({"evidence_id": int, "role": str, "set_by": str, "set_at": str},
                                pk="evidence_id", not_null={"role", "set_at"},
                                foreign_keys=[("evidence_id", "evidence", "id")])
    columns: dict[str, Any] = {"id": int}
    types = {"seed": int, "resamples": int, "n": int, "image_attainable": int}
    floats = {"image_rate", "pixel_rate", "confidence", "image_threshold", "image_low", "image_high",
              "pixel_threshold", "pixel_low", "pixel_high"}
    for name in CALIBRATION_COLUMNS:
        columns[name] = types.get(name, float if name in floats else str)
    columns.update({"cleared_by": str, "cleared_at": str})
    db["calibrations"].create(columns, pk="id", not_null={"model_sha256", "n", "created_at"})
    db["calibrations"].create_index(["model_sha256"])


# ------------------------------------------------------------------------------ roles
def _has_table(case: Any, name: str) -> bool:
    """False for an older case opened read-only (not migrated): it has no roles and no calibrations."""
    return case._store.scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)) is not None


def roles(case: Any) -> dict[int, str]:
    """{evidence id: role} for every item with a role (references)."""
    if not _has_table(case, "evidence_roles"):
        return {}
    return {int(r["evidence_id"]): r["role"] for r in case._store.query("SELECT evidence_id, role FROM evidence_roles")}


def reference_ids(case: Any) -> list[int]:
    return sorted(i for i, role in roles(case).items() if role == REFERENCE_ROLE)


def is_reference(case: Any, evidence_id: int) -> bool:
    return roles(case).get(int(evidence_id)) == REFERENCE_ROLE


def set_reference(case: Any, evidence_ids: Iterable[int], reference: bool = True,
                  analyst: str | None = None) -> list[int]:
    """Mark (or unmark) items as reference-authentic; one `evidence.role_changed` entry per item
    whose role changes. Returns the ids that changed. Unknown ids are refused before any change."""
    ids = sorted({int(i) for i in evidence_ids})
    new = REFERENCE_ROLE if reference else None
    changed = []
    with case._write() as conn:
        known = {r[0] for r in conn.execute("SELECT id FROM evidence")}
        missing = [i for i in ids if i not in known]
        if missing:
            raise CaseError(f"no evidence with ID {', '.join(map(str, missing))} in this case; nothing was marked. "
                            "`declip case status DIR` lists the IDs.")
        if reference:  # a known-authentic reference cannot be an item the analyst judged manipulated
            judged = [(r[0], r[1]) for r in conn.execute(
                f"SELECT id, original_name FROM evidence WHERE verdict = 'manipulated' AND id IN "
                f"({', '.join('?' * len(ids))})", ids)]
            if judged:
                raise CaseError("reference-authentic evidence must be known to be authentic, but the analyst's verdict "
                                "on " + ", ".join(f"{name} (evidence {i})" for i, name in judged) + " is "
                                "'manipulated'; nothing was marked. Leave it out, or change the verdict first if it "
                                "was wrong.")
        actor = case._actor(analyst, conn)
        for eid in ids:
            row = conn.execute("SELECT role FROM evidence_roles WHERE evidence_id = ?", (eid,)).fetchone()
            old = row[0] if row else None
            if old == new:
                continue
            set_at = audit.now_iso()
            if new is None:
                conn.execute("DELETE FROM evidence_roles WHERE evidence_id = ?", (eid,))
            else:
                conn.execute("INSERT INTO evidence_roles (evidence_id, role, set_by, set_at) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT(evidence_id) DO UPDATE SET role = excluded.role, set_by = excluded.set_by, "
                             "set_at = excluded.set_at", (eid, new, actor, set_at))
            audit.append(conn, actor, "evidence.role_changed", f"evidence:{eid}",
                         {"old": old, "new": new, "set_by": actor, "set_at": set_at}, eid)
            changed.append(eid)
    return changed


# ------------------------------------------------------------------------------ calibrations
def _from_row(row: dict[str, Any]) -> Calibration:
    refs = tuple(Reference(int(r["evidence_id"]), str(r["name"]), str(r["sha256"]), int(r["analysis_id"]),
                           float(r["score"])) for r in json.loads(row["reference_items"] or "[]"))
    image = stats.ThresholdEstimate(row["image_rate"], row["image_threshold"], row["image_low"], row["image_high"],
                                    float(np.mean([r.score > row["image_threshold"] for r in refs])) if refs else 0.0,
                                    bool(row["image_attainable"]))
    summary = json.loads(row["summary"] or "{}")
    pixel = stats.ThresholdEstimate(row["pixel_rate"], row["pixel_threshold"], row["pixel_low"], row["pixel_high"],
                                    float(summary.get("pixel_reference_rate", 0.0)), True)
    return Calibration(
        id=int(row["id"]), model_name=row["model_name"] or "", model_sha256=row["model_sha256"],
        method=row["method"] or METHOD, image_rate=row["image_rate"], pixel_rate=row["pixel_rate"],
        seed=int(row["seed"]), resamples=int(row["resamples"]), confidence=row["confidence"], n=int(row["n"]),
        image=image, pixel=pixel, references=refs, summary=summary, warning=row["warning"],
        software_version=row["software_version"] or "", created_by=row["created_by"] or "",
        created_at=row["created_at"], cleared_by=row["cleared_by"], cleared_at=row["cleared_at"])


def calibrations(case: Any, include_cleared: bool = True) -> list[Calibration]:
    if not _has_table(case, "calibrations"):
        return []
    where = "" if include_cleared else " WHERE cleared_at IS NULL"
    return [_from_row(r) for r in case._store.query(f"SELECT * FROM calibrations{where} ORDER BY id")]


def current_calibrations(case: Any) -> dict[str, Calibration]:
    """{model SHA-256: its newest calibration not cleared}."""
    out: dict[str, Calibration] = {}
    for cal in calibrations(case, include_cleared=False):
        out[cal.model_sha256] = cal  # ordered by id: the newest wins
    return out


def current_calibration(case: Any, model_sha256: str) -> Calibration | None:
    return current_calibrations(case).get(model_sha256)


def _reference_results(case: Any, ids: list[int]) -> dict[str, list[tuple[Any, Any]]]:
    """{model SHA-256: [(evidence, its latest successful analysis with that model)]}."""
    by_model: dict[str, list[tuple[Any, Any]]] = {}
    for eid in ids:
        ev = case.get_evidence(eid)
        latest: dict[str, Any] = {}
        for a in case.analyses(eid):
            if a.error is None and a.map_file:
                latest[a.model_sha256] = a  # ordered by id: the newest of each model wins
        for sha, a in latest.items():
            by_model.setdefault(sha, []).append((ev, a))
    return by_model


def _choose_model(case: Any, by_model: dict[str, list], ids: list[int], model_sha256: str | None) -> str:
    if model_sha256:
        if model_sha256 not in by_model:
            raise CaseError(f"none of the references has a result of the model {model_sha256[:12]}…. Analyse them "
                            "with it first (`declip case analyze DIR --model …`).")
        return model_sha256
    if not by_model:
        raise CaseError("none of the references has been analysed yet. Analyse them first (`declip case analyze "
                        "DIR`), then calibrate.")
    complete = [sha for sha, pairs in by_model.items() if len(pairs) == len(ids)]
    from declip_desktop.cases.case_settings import pinned_model

    pin = pinned_model(case)
    if pin is not None and pin.sha256 in by_model:
        return pin.sha256
    if len(complete) == 1 or len(by_model) == 1:
        return (complete or list(by_model))[0]
    raise CaseError("the references have results of several models (" + ", ".join(s[:12] + "…" for s in by_model)
                    + "). Say which one to calibrate with --model-sha256.")


def calibrate(case: Any, evidence_ids: Iterable[int] | None = None, *, image_rate: float = stats.DEFAULT_IMAGE_RATE,
              pixel_rate: float = stats.DEFAULT_PIXEL_RATE, seed: int = stats.DEFAULT_SEED,
              resamples: int = stats.DEFAULT_RESAMPLES, confidence: float = stats.DEFAULT_CONFIDENCE,
              model_sha256: str | None = None, analyst: str | None = None) -> Calibration:
    """Calibrate one model on the references (`evidence_ids`, marked as references first; default:
    every item marked). Every reference's file and map are hash-checked; each must have a result of
    the model. Stored as a new `calibrations` row with a `calibration.computed` entry."""
    if evidence_ids is not None:
        ids = sorted({int(i) for i in evidence_ids})
        if not ids:
            raise CaseError("no references given. Name the IDs of evidence known to be authentic.")
        known = {ev.id for ev in case.evidence_list()}
        missing = [i for i in ids if i not in known]
        if missing:
            raise CaseError(f"no evidence with ID {', '.join(map(str, missing))} in this case; nothing was marked "
                            "or calibrated. `declip case status DIR` lists the IDs.")
    else:
        ids = reference_ids(case)
        if not ids:
            raise CaseError("the case has no reference-authentic evidence. Mark some first (`declip case calibrate "
                            "DIR --references ID …`, or Mark as reference in the evidence list).")
    by_model = _reference_results(case, ids)
    sha = _choose_model(case, by_model, ids, model_sha256)
    pairs = by_model[sha]
    lacking = sorted(set(ids) - {ev.id for ev, _a in pairs})
    if lacking:
        raise CaseError(f"reference{'s' if len(lacking) > 1 else ''} {', '.join(map(str, lacking))} "
                        f"{'have' if len(lacking) > 1 else 'has'} no result of the model {sha[:12]}…. Analyse "
                        "them with it, or leave them out of --references; nothing was calibrated.")
    scores, curves, refs = [], [], []
    for ev, a in pairs:
        if sha256_file(case.evidence_file(ev)) != ev.sha256:
            raise CaseError(f"{ev.original_name} (evidence {ev.id}): the file no longer matches its import hash; it "
                            "cannot serve as a reference. Run `declip case verify`.")
        prob = case.load_map(a)  # hash-checked
        if a.score is None:
            raise CaseError(f"{ev.original_name} (evidence {ev.id}): its result has no score; re-analyse it.")
        scores.append(float(a.score))
        curves.append(stats.pixel_survival(prob))
        refs.append(Reference(ev.id, ev.original_name, ev.sha256, a.id, float(a.score)))
    try:
        image = stats.image_threshold(scores, image_rate, seed=seed, resamples=resamples, confidence=confidence)
        pixel = stats.pixel_threshold(np.stack(curves), pixel_rate, seed=seed, resamples=resamples,
                                      confidence=confidence)
    except stats.CalibrationInputError as exc:
        raise CaseError(str(exc)) from None
    summary = {"scores": stats.score_summary(scores), "pixel_quantiles": stats.pixel_quantiles(np.stack(curves)),
               "pixel_reference_rate": pixel.reference_rate, "image_reference_rate": image.reference_rate}
    model_name = pairs[0][1].model_name
    values = {
        "model_name": model_name, "model_sha256": sha, "method": METHOD, "image_rate": image.rate,
        "pixel_rate": pixel.rate, "seed": int(seed), "resamples": int(resamples), "confidence": float(confidence),
        "n": len(refs), "image_threshold": image.threshold, "image_low": image.low, "image_high": image.high,
        "image_attainable": int(image.attainable), "pixel_threshold": pixel.threshold, "pixel_low": pixel.low,
        "pixel_high": pixel.high, "reference_items": [r.__dict__ for r in refs], "summary": summary,
        "warning": stats.few_references_warning(len(refs), image), "software_version": SOFTWARE_VERSION,
    }
    if evidence_ids is not None:  # everything checked: now mark them (entries of their own), then store
        set_reference(case, ids, True, analyst=analyst)
    with case._write() as conn:
        actor = case._actor(analyst, conn)
        values.update(created_by=actor, created_at=audit.now_iso())
        stored = {k: (json.dumps(v, sort_keys=True) if k in JSON_COLUMNS else v) for k, v in values.items()}
        cur = conn.execute(f"INSERT INTO calibrations ({', '.join(stored)}) VALUES ({', '.join('?' * len(stored))})",
                           tuple(stored.values()))
        cal_id = int(cur.lastrowid)
        audit.append(conn, actor, "calibration.computed", f"calibration:{cal_id}",
                     {"calibration_id": cal_id, **values})
    return _from_row(case._store.one("SELECT * FROM calibrations WHERE id = ?", (cal_id,)))


def clear_calibration(case: Any, model_sha256: str | None = None, analyst: str | None = None) -> list[int]:
    """Mark the current calibration of a model (default: of every model) as cleared; results read
    uncalibrated again. The rows stay (history); returns the ids cleared. A model given that has
    no calibration in force is an error (a mistyped SHA-256 must not look like success)."""
    cleared = []
    with case._write() as conn:
        actor = case._actor(analyst, conn)
        rows = conn.execute("SELECT id, model_sha256 FROM calibrations WHERE cleared_at IS NULL ORDER BY id").fetchall()
        if model_sha256 and model_sha256 not in {sha for _id, sha in rows}:
            raise CaseError(f"no calibration of the model {model_sha256[:12]}… is in force; nothing was cleared. "
                            "`declip case calibrate DIR --list` shows each calibration's full model SHA-256.")
        for cal_id, sha in rows:
            if model_sha256 and sha != model_sha256:
                continue
            at = audit.now_iso()
            conn.execute("UPDATE calibrations SET cleared_by = ?, cleared_at = ? WHERE id = ?", (actor, at, cal_id))
            audit.append(conn, actor, "calibration.cleared", f"calibration:{cal_id}",
                         {"calibration_id": cal_id, "model_sha256": sha, "cleared_by": actor, "cleared_at": at})
            cleared.append(int(cal_id))
    return cleared


def reading(case: Any, evidence_id: int, calibrations_by_model: dict[str, Calibration] | None = None) -> Reading | None:
    """The item's latest successful result read against its model's current calibration (None:
    no result, no calibration of that model). A reference reads against the calibration it is
    part of, with a note saying so (its standing is not independent evidence)."""
    analysis = case.latest_analysis(int(evidence_id), successful=True)
    if analysis is None or analysis.score is None:
        return None
    cals = current_calibrations(case) if calibrations_by_model is None else calibrations_by_model
    cal = cals.get(analysis.model_sha256)
    if cal is None:
        return None
    notes = []
    if any(r.evidence_id == int(evidence_id) for r in cal.references):
        notes.append("this item is one of the calibration's references")
    stale = [r.name for r in cal.references if r.evidence_id == int(evidence_id) and r.analysis_id != analysis.id]
    if stale:
        notes.append("its result changed since the calibration: recalibrate")
    return Reading(cal, float(analysis.score), cal.standing(float(analysis.score)),
                   float(analysis.score) > cal.image.threshold, analysis.id, notes)


def uncalibrated_reason(case: Any, evidence_id: int,
                        calibrations_by_model: dict[str, Calibration] | None = None) -> str | None:
    """Why an item with a result has no calibrated reading although the case is calibrated (its
    latest result is of a model no calibration is for); None when it has a reading, no result,
    or the case has no calibration. So a report never leaves an analyst to guess."""
    cals = current_calibrations(case) if calibrations_by_model is None else calibrations_by_model
    analysis = case.latest_analysis(int(evidence_id), successful=True)
    if not cals or analysis is None or analysis.model_sha256 in cals:
        return None
    models = ", ".join(f"{c.model_name} ({sha[:12]}…)" for sha, c in cals.items())
    return (f"none — this result is of the model {analysis.model_name} ({analysis.model_sha256[:12]}…), and the case "
            f"is calibrated only for {models}; analyse the references with that model and calibrate it to read "
            "this result as a rate")


__all__ = [
    "CALIBRATION_COLUMNS", "METHOD", "REFERENCE_ROLE", "ROLES", "Calibration", "Reading", "Reference", "calibrate",
    "calibrations", "clear_calibration", "current_calibration", "current_calibrations", "is_reference",
    "migrate_v4", "reading", "reference_ids", "roles", "set_reference", "uncalibrated_reason",
]
