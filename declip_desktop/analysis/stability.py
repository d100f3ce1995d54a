"""Stability under re-compression, per evidence item: re-analyse copies, store how each region fares.

    result = check_stability(case, localizer, evidence_id)        # one item, stored, audit-logged
    results = check_many(session, [3, 5])                          # the CLI and the GUI: the case's model

For an item's stored result of the localizer's model, the evidence file (hash-checked first, and
only ever opened for reading) is decoded, and each variant of `common.stability.VARIANTS` is
written as a new file into a scratch folder under the case's `.tmp/`; the localizer analyses
those copies, the scaled copy's map is brought back to the original size, and
`common.stability.region_stability` compares each variant map with the stored map at the
item's threshold. The figures and the hashes of the copies are stored in one transaction with
their audit entry (`cases.stability_store`); the scratch folder is removed however the check
ends. A check that fails or is stopped stores nothing.

The Localizer is passed in (built by the engine through `AnalysisSession`), so this module
imports no torch; the check holds the case's analysis lock like an analysis run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from declip_desktop.analysis.queue import result_parameters
from declip_desktop.cases import CaseBusyError, CaseError
from declip_desktop.cases.audit import now_iso
from declip_desktop.cases.case_settings import case_threshold, effective_threshold
from declip_desktop.cases.stability_store import StabilityCheck, discard_scratch, scratch_folder, store_check
from declip_desktop.common.hashing import sha256_bytes, sha256_file
from declip_desktop.common.images import load_rgb
from declip_desktop.common.stability import (
    DEFAULT_MIN_IOU,
    VARIANTS,
    Variant,
    describe_region,
    make_variant,
    map_to_original,
    region_stability,
)


class StabilityError(Exception):
    """A stability check could not be made; the message says why and what to do. Nothing was stored."""


@dataclass
class StabilitySummary:
    checks: list[StabilityCheck] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)  # (evidence id, why)
    stopped: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures and not self.stopped


def _base_analysis(case: Any, evidence_id: int, model_sha256: str) -> Any:
    found = [a for a in case.analyses(evidence_id) if a.ok and a.model_sha256 == model_sha256]
    if not found:
        raise StabilityError(f"evidence {evidence_id} has no stored result of the model {model_sha256[:12]}…; "
                             "analyse it with that model first (`declip case analyze`), then check its stability")
    return found[-1]


def check_stability(case: Any, localizer: Any, evidence_id: int, *, threshold: float | None = None,
                    variants: Sequence[Variant] = VARIANTS, min_iou: float = DEFAULT_MIN_IOU,
                    analyst: str | None = None, should_stop: Callable[[], bool] | None = None) -> StabilityCheck:
    """Check one item (see the module docstring). `threshold`: default the item's by the case's
    rule. Raises StabilityError (nothing stored) or CaseBusyError (another run holds the case)."""
    lock = case.analysis_lock()
    if not lock.acquire(blocking=False):
        raise CaseBusyError(f"{case.path}: an analysis or stability check is already running on this case. "
                            "Wait for it to finish or stop it, then try again.")
    try:
        discard_scratch(case.path / ".tmp")  # what a killed check left; nobody else holds the lock
        return _check_locked(case, localizer, int(evidence_id), threshold, tuple(variants), float(min_iou),
                             analyst, should_stop)
    finally:
        lock.release()


def _check_locked(case: Any, localizer: Any, evidence_id: int, threshold: float | None,
                  variants: tuple[Variant, ...], min_iou: float, analyst: str | None,
                  should_stop: Callable[[], bool] | None) -> StabilityCheck:
    ev = case.get_evidence(evidence_id)
    model_sha = str(localizer.model_sha256)
    params = result_parameters(localizer)  # refuses a localizer that cannot say which model it is
    base = _base_analysis(case, evidence_id, model_sha)
    if threshold is None:
        threshold, _source = effective_threshold(ev, case_threshold(case))
    original = case.load_map(base)  # hash-checked
    path = case.evidence_file(ev)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StabilityError(f"the evidence file {path.name} is missing from the case folder; run "
                             "`declip case verify`") from None
    if sha256_bytes(data) != ev.sha256:
        raise StabilityError(f"evidence {evidence_id}: the file changed since import (SHA-256 mismatch); "
                             "not checked. Run `declip case verify`")
    rgb = load_rgb(path)
    if rgb.shape[:2] != original.shape:
        original = map_to_original(original, rgb.shape[:2])
    t0 = time.monotonic()
    started = now_iso()
    records: list[dict] = []
    maps: dict[str, Any] = {}
    with scratch_folder(case) as folder:
        files = []
        for v in variants:
            blob, suffix = make_variant(rgb, v)
            target = folder / f"{v.name}{suffix}"
            try:
                target.write_bytes(blob)
            except OSError as exc:  # a full disk, most often: say where, lose nothing else
                raise StabilityError(f"the copies of evidence {evidence_id} could not be written to the case's "
                                     f"scratch folder {folder.parent} ({exc.strerror or exc}); free some space "
                                     "on that disk and check again. Nothing was stored") from None
            files.append(target)
            records.append({**v.as_dict(), "sha256": sha256_bytes(blob)})
        if should_stop is not None and should_stop():
            raise StabilityError("stopped before the copies were analysed; nothing was stored")
        try:
            predictions = list(localizer.predict([str(f) for f in files]))
        except Exception as exc:  # noqa: BLE001 - any model failure ends the check with its reason
            raise StabilityError(f"the model failed on a copy of evidence {evidence_id}: "
                                 f"{type(exc).__name__}: {exc}") from exc
        if len(predictions) != len(files):
            raise StabilityError(f"the model returned {len(predictions)} results for {len(files)} copies")
        for v, rec, pred in zip(variants, records, predictions):
            err = getattr(pred, "error", None)
            if err is not None or getattr(pred, "prob_map", None) is None:
                raise StabilityError(f"the model failed on the {v.label} copy of evidence {evidence_id}: "
                                     f"{err or 'no probability map'}")
            maps[v.name] = map_to_original(pred.prob_map, original.shape)
            rec["score"] = float(pred.score)
            rec["seconds"] = float(getattr(pred, "seconds", 0.0) or 0.0)
    # A copy whose map cannot be matched would be a wrong figure: region_stability refuses it.
    regions = region_stability(original, maps, float(threshold), min_iou=min_iou)
    if sha256_file(path) != ev.sha256:  # the evidence is only read; prove it stayed so
        raise StabilityError(f"evidence {evidence_id}: the file changed during the check; nothing was stored")
    return store_check(case, evidence_id=evidence_id, analysis_id=base.id, model_name=str(localizer.model_name),
                       model_sha256=model_sha, evidence_sha256=ev.sha256, threshold=float(threshold),
                       min_iou=min_iou, variants=records, regions=regions, parameters=params, started=started,
                       finished=now_iso(), seconds=time.monotonic() - t0, analyst=analyst)


def check_many(case: Any, localizer: Any, evidence_ids: Iterable[int], *, threshold: float | None = None,
               thresholds: Mapping[int, float] | None = None, analyst: str | None = None,
               should_stop: Callable[[], bool] | None = None,
               on_item: Callable[[int, int, int, StabilityCheck | None, str | None], None] | None = None,
               ) -> StabilitySummary:
    """Check several items; one that cannot be checked is a failure, the others go on. `thresholds`
    (evidence id → threshold, e.g. the one the inspector shows) overrides `threshold` per item.
    `on_item(done, total, evidence_id, check or None, error or None)` after each."""
    ids = [int(i) for i in evidence_ids]
    summary = StabilitySummary()
    for n, eid in enumerate(ids, start=1):
        if should_stop is not None and should_stop():
            summary.stopped = True
            break
        try:
            own = (thresholds or {}).get(eid, threshold)
            check = check_stability(case, localizer, eid, threshold=own, analyst=analyst,
                                    should_stop=should_stop)
        except (StabilityError, CaseError) as exc:
            if isinstance(exc, CaseBusyError):
                raise
            summary.failures.append((eid, str(exc)))
            if on_item is not None:
                on_item(n, len(ids), eid, None, str(exc))
            continue
        summary.checks.append(check)
        if on_item is not None:
            on_item(n, len(ids), eid, check, None)
    return summary


__all__ = ["StabilityError", "StabilitySummary", "check_many", "check_stability", "describe_region"]
