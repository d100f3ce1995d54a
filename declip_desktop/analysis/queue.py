"""The queue runner under `AnalysisSession` (see docs/ARCHITECTURE.md).

`run_queue` takes the evidence of a case that is waiting for the given model, feeds it
to a Localizer in batches, and stores every result as soon as it arrives. It never
imports torch: the caller builds the Localizer (engine layer) and passes it in, so
the GUI can keep torch in its worker and tests can pass a stand-in.

Batches are read, hash-checked and decoded one ahead on a thread (`analysis.prefetch`)
while the current one is analysed, and a computed batch is stored on another thread
(`analysis.storing`) while the next one is analysed; results are stored in order, each in
one transaction, and an item is 'done' only once its row and map file are durable.

Pause, stop and cancel act as they did when everything ran on one thread: before
`should_stop()` is asked, what is computed is stored (so a pause never holds a computed
result unstored), and no batch is started once it says stop. `stop_requested()` (the
session's non-blocking question) lets the runner skip that wait while nobody asks to stop.

Resuming: only evidence not yet done with this model is picked up; evidence left
'analysing' by a killed run is put back in the queue when the next run starts (it
holds the case's analysis lock, so nobody else can be analysing it).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from declip_desktop.cases import Case, CaseBusyError, Evidence
from declip_desktop.cases.audit import now_iso
from declip_desktop.analysis.prefetch import BatchPrefetcher, LoadedEvidence
from declip_desktop.analysis.storing import BatchStorer
from declip_desktop.common.errors import AnalysisStopped, OutOfDeviceMemory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProgressEvent:
    done: int  # evidence finished in this run (stored results + failures)
    total: int  # evidence this run set out to analyse
    evidence_id: int | None
    # "analysing" | "done" | "failed" | "out_of_memory" | "stopped" | "finished", or "queued": claimed,
    # then put back unanalysed because a pause or stop was asked before the run would have started it
    status: str
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
    stop_requested: Callable[[], bool] | None = None,
    analyst: str | None = None,
    extra_parameters: dict[str, Any] | None = None,
    store_thread: bool = True,
) -> RunSummary:
    """Analyse the evidence waiting for `localizer`'s model; see the module docstring.
    `extra_parameters` are stored with each result too (e.g. a multi-model run's role).

    `should_stop()` is asked between batches, only once everything computed is stored (it may
    block, as a pause does). `stop_requested()`, when given, answers at once whether
    `should_stop()` would pause or stop: while it says no, the next batch is computed while the
    last is stored (`analysis.storing`); without it every batch is stored before the question.
    `store_thread=False` stores on this thread (the serial runner). `on_progress` may be called
    from the storing thread, never from two threads at once.

    Raises CaseBusyError if another run holds this case's analysis lock, and what stopped a
    result's storing (a full disk, a locked database), after putting what this run claimed
    and did not store back in the queue."""
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
        emitting = threading.Lock()  # the runner and the storing thread both report progress

        def emit(evidence_id: int | None, status: str, score: float | None = None, error: str | None = None,
                 tiles: tuple[int, int] | None = None) -> None:
            if on_progress is None:
                return
            with emitting:
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
        try:
            with BatchPrefetcher(case, localizer, chunks) as prefetch, \
                    BatchStorer(store_thread, asked=stop_requested) as storer:
                loaded: list[LoadedEvidence] | None = None
                while loaded is not None or prefetch.remaining:
                    if should_stop is not None and (stop_requested is None or stop_requested()):
                        storer.wait()  # a pause or stop comes after what is computed is stored
                        if should_stop():
                            summary.stopped = True
                            emit(None, "stopped")
                            break
                    loaded = loaded if loaded is not None else prefetch.next()
                    computed = compute_batch(case, localizer, loaded, summary, emit, analyst, current)
                    asked = storer.wait()  # at most one batch is stored while the next is computed
                    if computed.end is not None:  # stopped inside a tiled image, or out of device memory
                        computed.end(emit)
                        break
                    if asked and should_stop is not None and stop_requested is not None and stop_requested():
                        # Asked to pause or stop before the last batch was stored: the one-thread
                        # runner would not have started this one. Drop it unstored (nothing of it
                        # is held during a pause) and ask; after a pause it is computed again.
                        case.release_claim(computed.claims)
                        for ev, _ in computed.claims:
                            emit(ev, "queued")
                        continue
                    storer.submit(functools.partial(store_batch, case, computed, summary, params, emit, analyst))
                    loaded = None
        except BaseException:
            _requeue_claimed(case)
            raise
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


def _requeue_claimed(case: Case) -> None:
    """The run ends with an error: what it claimed and did not store goes back to the queue now
    (this run holds the analysis lock, so every 'analysing' item is its own). When even that
    cannot be written (the disk or database that failed), opening the case does it later."""
    try:
        case.requeue_interrupted()
    except Exception:  # noqa: BLE001 - the error being raised is the one the user must see
        log.warning("could not put the interrupted items of %s back in the queue; the next run or "
                    "opening the case does", case.path, exc_info=True)


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
        started=started, finished=now_iso(), analyst=analyst, finishes_item=False)  # the squash map finishes it
    return {**params, "mode": "squash", "tiled_analysis_id": stored.id}


@dataclass
class ComputedBatch:
    """A batch the network has run: what to store, in order (`store_batch`), or why the run
    ends here (`end(emit)` reports it; the batch was put back in the queue)."""

    started: str = ""
    claims: list[tuple[int, str]] = field(default_factory=list)  # (evidence id, its status before the claim)
    results: list[tuple[Evidence, Any]] = field(default_factory=list)  # (evidence, prediction)
    broken: list[tuple[Evidence, str]] = field(default_factory=list)  # (evidence, error)
    end: Callable[[Callable[..., None]], None] | None = None


def compute_batch(case: Case, localizer: Any, loaded: list[LoadedEvidence], summary: RunSummary,
                  emit: Callable[..., None], analyst: str | None, current: list[int | None]) -> ComputedBatch:
    """Claim one prefetched batch and run the network on it; nothing is stored here. Asked to
    stop inside a tiled image or out of device memory: the batch is queued again and `end` set.
    `current[0]` is the evidence whose tiles are running (tile progress names it)."""
    loaded = [item for item in loaded if case.mark_analysing(item.evidence.id)]
    batch = [item.evidence for item in loaded]
    out = ComputedBatch(started=now_iso(), claims=[(ev.id, ev.status) for ev in batch])
    if not batch:
        return out
    for ev in batch:
        emit(ev.id, "analysing")
    ready = [item for item in loaded if item.error is None]
    out.broken = [(item.evidence, str(item.error)) for item in loaded if item.error is not None]
    predictions: Sequence[Any] = []
    try:
        if ready:
            current[0] = ready[0].evidence.id
            predictions = _predict(localizer, [item.source for item in ready])
    except Exception as exc:  # noqa: BLE001 - one bad batch must not lose the rest of the queue
        if isinstance(exc, AnalysisStopped):  # asked to stop inside a tiled image: nothing stored
            case.requeue([e.id for e in batch], analyst=analyst)
            summary.stopped = True
            out.end = lambda emit: emit(None, "stopped")
            return out
        if isinstance(exc, OutOfDeviceMemory):
            case.requeue([e.id for e in batch], analyst=analyst)
            summary.out_of_memory = True
            summary.message = (f"the {summary.device or 'device'} ran out of memory: {exc}. "
                               "Run again on the CPU (device 'cpu') or with a smaller batch.")
            out.end = lambda emit: emit(batch[0].id, "out_of_memory", error=summary.message)
            return out
        out.broken.extend((item.evidence, f"the model failed on this image: {type(exc).__name__}: {exc}")
                          for item in ready)
        ready = []
    if len(predictions) != len(ready):
        out.broken.extend((item.evidence, "the model returned no result for this image") for item in ready)
        ready = []
    for item, pred in zip(ready, predictions):
        err = getattr(pred, "error", None)
        if err is None and getattr(pred, "prob_map", None) is None:
            err = "the model returned no probability map"
        if err is not None:
            out.broken.append((item.evidence, str(err)))
        else:
            out.results.append((item.evidence, pred))
    return out


def store_batch(case: Case, computed: ComputedBatch, summary: RunSummary, params: dict, emit: Callable[..., None],
                analyst: str | None) -> None:
    """Store a computed batch in order: the results, then the failures, each in its own
    transaction; the first error (a full disk, a locked database) ends it and is raised."""
    model_sha, started = summary.model_sha256, computed.started
    for ev, pred in computed.results:
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
    for ev, err in computed.broken:
        case.store_failure(ev.id, model_name=summary.model_name, model_sha256=model_sha, parameters=params,
                           error=err, started=started, finished=now_iso(), device=summary.device or None,
                           analyst=analyst)
        summary.failed += 1
        summary.failures.append((ev.id, err))
        emit(ev.id, "failed", error=err)


def _predict(localizer: Any, sources: list[Any]) -> Sequence[Any]:
    """A localizer that prepared the images (see analysis.prefetch) runs them as they are."""
    if callable(getattr(localizer, "prepare", None)) and callable(getattr(localizer, "predict_prepared", None)):
        return localizer.predict_prepared(sources)
    return localizer.predict(sources)


__all__ = ["ComputedBatch", "ProgressEvent", "RunSummary", "compute_batch", "result_parameters", "run_queue",
           "store_batch", "store_tiled_pair", "waiting_evidence"]
