"""The queue runner under `AnalysisSession` (see docs/ARCHITECTURE.md).

`run_queue` takes the evidence of a case that is waiting for the given model, feeds it
to a Localizer in batches, and stores every result as soon as it arrives. It never
imports torch: the caller builds the Localizer (engine layer) and passes it in, so
the GUI can keep torch in its worker and tests can pass a stand-in.

Batches are read, hash-checked and decoded one ahead on a thread (`analysis.prefetch`)
while the current one is analysed; results are stored in order, each in one transaction.

Resuming: only evidence not yet done with this model is picked up; evidence left
'analysing' by a killed run is put back in the queue when the next run starts (it
holds the case's analysis lock, so nobody else can be analysing it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from declip_desktop.cases import Case, CaseBusyError, Evidence
from declip_desktop.cases.audit import now_iso
from declip_desktop.analysis.prefetch import BatchPrefetcher, LoadedEvidence
from declip_desktop.common.errors import AnalysisStopped, OutOfDeviceMemory


@dataclass(frozen=True)
class ProgressEvent:
    done: int  # evidence finished in this run (stored results + failures)
    total: int  # evidence this run set out to analyse
    evidence_id: int | None
    status: str  # "analysing" | "done" | "failed" | "out_of_memory" | "stopped" | "finished"
    eta_seconds: float | None
    score: float | None = None
    error: str | None = None
    tiles: tuple[int, int] | None = None  # status "tiles": (done, total) forward passes of the current image


@dataclass
class RunSummary:
    total: int = 0
    done: int = 0
    failed: int = 0
    stopped: bool = False  # should_stop() ended the run early
    cancelled: bool = False  # the analyst cancelled: what was still waiting left the queue (AnalysisSession)
    out_of_memory: bool = False  # the device ran out of memory; retry with device="cpu"
    message: str = ""
    seconds: float = 0.0
    model_name: str = ""
    model_sha256: str = ""
    device: str = ""
    failures: list[tuple[int, str]] = field(default_factory=list)  # (evidence id, error)
    remaining: int = 0  # still queued for this model when the run ended

    @property
    def ok(self) -> bool:
        return not self.failed and not self.stopped and not self.out_of_memory


def waiting_evidence(case: Case, model_sha256: str | None, evidence_ids: Iterable[int] | None = None) -> list[Evidence]:
    """What is queued: the one definition the GUI, the CLI and the runner count and run.

    Evidence with status 'queued', plus, for a known model, done/failed evidence never analysed
    with it (`Case.queued_evidence`); restricted to `evidence_ids` when given."""
    todo = case.queued_evidence(model_sha256)
    if evidence_ids is None:
        return todo
    wanted = {int(i) for i in evidence_ids}
    return [e for e in todo if e.id in wanted]


def result_parameters(localizer: Any) -> dict[str, Any]:
    """What each stored result records about how it was computed, with the model card's snapshot.

    The snapshot (`localizer.card_snapshot`, see common.model_card.card_snapshot) is what reports
    show about the model later, on any machine; a localizer without one cannot store results."""
    params = getattr(localizer, "parameters", None)
    out: dict[str, Any] = dict(params) if isinstance(params, dict) else {}
    snapshot = getattr(localizer, "card_snapshot", None)
    if not isinstance(snapshot, dict) or not snapshot.get("sha256"):
        raise TypeError(f"{type(localizer).__name__} has no card_snapshot (a dict with the model's name and "
                        "sha256); results cannot say which model made them")
    if snapshot["sha256"] != str(localizer.model_sha256):
        raise ValueError(f"the model card's SHA-256 {snapshot['sha256'][:12]}… differs from the loaded model's "
                         f"{str(localizer.model_sha256)[:12]}…; nothing was analysed")
    out["model_card"] = dict(snapshot)
    return out


def _model_name(localizer: Any) -> str:
    card = getattr(localizer, "card", None)
    return str(getattr(card, "name", None) or getattr(localizer, "model_name", None) or "unknown")


def run_queue(
    case: Case,
    localizer: Any,
    *,
    evidence_ids: Iterable[int] | None = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    analyst: str | None = None,
    extra_parameters: dict[str, Any] | None = None,
) -> RunSummary:
    """Analyse the evidence waiting for `localizer`'s model; see the module docstring.
    `extra_parameters` are stored with each result too (e.g. a multi-model run's role).

    Raises CaseBusyError if another run holds this case's analysis lock."""
    t0 = time.monotonic()
    model_sha = str(localizer.model_sha256)
    summary = RunSummary(model_name=_model_name(localizer), model_sha256=model_sha,
                         device=str(getattr(localizer, "device", "") or ""))
    params = {**result_parameters(localizer), **(extra_parameters or {})}
    lock = case.analysis_lock()
    if not lock.acquire(blocking=False):
        raise CaseBusyError(f"{case.path}: another analysis is already running on this case. "
                            "Wait for it to finish or stop it, then try again.")
    try:
        case.requeue_interrupted()
        wanted = None if evidence_ids is None else {int(i) for i in evidence_ids}
        todo = waiting_evidence(case, model_sha, wanted)
        summary.total = len(todo)
        batch_size = max(1, int(getattr(localizer, "batch_size", 1) or 1))

        def emit(evidence_id: int | None, status: str, score: float | None = None, error: str | None = None,
                 tiles: tuple[int, int] | None = None) -> None:
            if on_progress is None:
                return
            elapsed = time.monotonic() - t0
            finished = summary.done + summary.failed
            eta = elapsed / finished * (summary.total - finished) if finished else None
            on_progress(ProgressEvent(finished, summary.total, evidence_id, status, eta, score, error, tiles))

        tiled_mode = getattr(localizer, "tiling", None) is not None
        current: list[int | None] = [None]
        if tiled_mode:  # many forward passes per image: stop and report between tile batches
            localizer.should_stop = should_stop
            localizer.on_tile = lambda done, total: emit(current[0], "tiles", tiles=(done, total))

        chunks = [todo[start:start + batch_size] for start in range(0, len(todo), batch_size)]
        with BatchPrefetcher(case, localizer, chunks) as prefetch:
            for _ in chunks:
                if should_stop is not None and should_stop():
                    summary.stopped = True
                    emit(None, "stopped")
                    break
                if not _run_batch(case, localizer, prefetch.next(), summary, params, emit, analyst, current):
                    break  # stopped inside a tiled image, or out of device memory: the batch is queued again
        summary.remaining = len(waiting_evidence(case, model_sha, wanted))
    finally:
        if getattr(localizer, "tiling", None) is not None:
            localizer.should_stop = localizer.on_tile = None
        lock.release()
    summary.seconds = time.monotonic() - t0
    if on_progress is not None and not summary.out_of_memory:
        on_progress(ProgressEvent(summary.done + summary.failed, summary.total, None,
                                  "stopped" if summary.stopped else "finished", 0.0))
    return summary


def store_tiled_pair(case: Case, evidence_id: int, pred: Any, params: dict, summary: RunSummary, started: str,
                     analyst: str | None) -> dict:
    """Store the tiled map as its own analysis (`parameters.mode` "tiled" + tile, overlap,
    scales, passes, and the same model card snapshot); return the squash's parameters, which
    name it (`tiled_analysis_id`). The tiled one goes first, so the squash, the paper's method
    that calibration and every older reader expect, stays the item's latest analysis."""
    tiled = pred.tiled
    tiled_params = {**params, **tiled.parameters}
    stored = case.store_result(
        evidence_id, model_name=str(getattr(pred, "model_name", None) or summary.model_name),
        model_sha256=str(getattr(pred, "model_sha256", None) or summary.model_sha256), parameters=tiled_params,
        score=float(tiled.score), prob_map=tiled.prob_map, device=summary.device, seconds=float(tiled.seconds),
        started=started, finished=now_iso(), analyst=analyst)
    return {**params, "mode": "squash", "tiled_analysis_id": stored.id}


def _run_batch(case: Case, localizer: Any, loaded: list[LoadedEvidence], summary: RunSummary, params: dict,
               emit: Callable[..., None], analyst: str | None, current: list[int | None]) -> bool:
    """Analyse and store one prefetched batch, in order; False when the run ends here: asked to
    stop inside a tiled image, or the device ran out of memory (the batch is queued again).
    `current[0]` is the evidence whose tiles are running (tile progress names it)."""
    model_sha = summary.model_sha256
    loaded = [item for item in loaded if case.mark_analysing(item.evidence.id)]
    batch = [item.evidence for item in loaded]
    if not batch:
        return True
    for ev in batch:
        emit(ev.id, "analysing")
    started = now_iso()
    ready = [item for item in loaded if item.error is None]
    broken = [(item.evidence, str(item.error)) for item in loaded if item.error is not None]
    predictions: Sequence[Any] = []
    try:
        if ready:
            current[0] = ready[0].evidence.id
            predictions = _predict(localizer, [item.source for item in ready])
    except Exception as exc:  # noqa: BLE001 - one bad batch must not lose the rest of the queue
        if isinstance(exc, AnalysisStopped):  # asked to stop inside a tiled image: nothing stored
            case.requeue([e.id for e in batch], analyst=analyst)
            summary.stopped = True
            emit(None, "stopped")
            return False
        if isinstance(exc, OutOfDeviceMemory):
            case.requeue([e.id for e in batch], analyst=analyst)
            summary.out_of_memory = True
            summary.message = (f"the {summary.device or 'device'} ran out of memory: {exc}. "
                               "Run again on the CPU (device 'cpu') or with a smaller batch.")
            emit(batch[0].id, "out_of_memory", error=summary.message)
            return False
        broken.extend((item.evidence, f"the model failed on this image: {type(exc).__name__}: {exc}")
                      for item in ready)
        ready = []
    if len(predictions) != len(ready):
        broken.extend((item.evidence, "the model returned no result for this image") for item in ready)
        ready = []
    for item, pred in zip(ready, predictions):
        ev = item.evidence
        err = getattr(pred, "error", None)
        if err is None and getattr(pred, "prob_map", None) is None:
            err = "the model returned no probability map"
        if err is not None:
            broken.append((ev, str(err)))
            continue
        summary.device = str(getattr(pred, "device", "") or summary.device)
        stored_params = params
        if getattr(pred, "tiled", None) is not None:
            stored_params = store_tiled_pair(case, ev.id, pred, params, summary, started, analyst)
        case.store_result(
            ev.id, model_name=str(getattr(pred, "model_name", None) or summary.model_name),
            model_sha256=str(getattr(pred, "model_sha256", None) or model_sha), parameters=stored_params,
            score=float(pred.score), prob_map=pred.prob_map, device=summary.device,
            seconds=float(getattr(pred, "seconds", 0.0) or 0.0), started=started, finished=now_iso(),
            analyst=analyst)
        summary.done += 1
        emit(ev.id, "done", score=float(pred.score))
    for ev, err in broken:
        case.store_failure(ev.id, model_name=summary.model_name, model_sha256=model_sha, parameters=params,
                           error=err, started=started, finished=now_iso(), device=summary.device or None,
                           analyst=analyst)
        summary.failed += 1
        summary.failures.append((ev.id, err))
        emit(ev.id, "failed", error=err)
    return True


def _predict(localizer: Any, sources: list[Any]) -> Sequence[Any]:
    """A localizer that prepared the images (see analysis.prefetch) runs them as they are."""
    if callable(getattr(localizer, "prepare", None)) and callable(getattr(localizer, "predict_prepared", None)):
        return localizer.predict_prepared(sources)
    return localizer.predict(sources)


__all__ = ["ProgressEvent", "RunSummary", "result_parameters", "run_queue", "store_tiled_pair", "waiting_evidence"]
