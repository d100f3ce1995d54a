"""Analyse a case's queue on a Ray cluster; this process (the driver) is the case's only writer.

    with ClusterSession("local") as session:
        summary = run_on_cluster(case, "vit-ldm", session, ClusterOptions(actors=2))

Flow: take the case's analysis lock (one run per case, as for local runs), put back evidence a
killed run left 'analysing', start the model actors (`worker.ModelWorker`; the weights go once
through the object store), then keep every accepted actor fed with `in_flight` batches. Each
result is stored the moment its batch returns, by `store_one_result`, which skips evidence that
already has a result from this model (so a retried item is never stored twice). Where Ray itself
retries (an actor process that crashed is restarted, its tasks re-run: `max_restarts`,
`max_task_retries`) nothing here notices; an actor that is gone for good has its in-flight items
put back at the front of the queue for the others, a replacement actor is started, and an item
whose workers died `max_attempts` times is recorded as failed. Killing the driver loses nothing:
the items it had sent are still 'analysing' and the next run re-queues them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from declip_desktop.cases import Case, CaseBusyError, Evidence
from declip_desktop.cases.audit import now_iso
from declip_desktop.cluster.connect import ClusterError, ClusterSession
from declip_desktop.cluster.model_choice import choose_model, pin_case
from declip_desktop.cluster.options import ClusterOptions
from declip_desktop.cluster.stats import ClusterProgress, ClusterRunSummary, NodeStats
from declip_desktop.cluster.store import store_one_result
from declip_desktop.common.hashing import sha256_file
from declip_desktop.common.version import SOFTWARE_VERSION


@dataclass
class _Worker:
    index: int
    actor: Any
    info: dict[str, Any] = field(default_factory=dict)
    in_flight: int = 0
    alive: bool = True
    accepted: bool = False  # reported the right model from ready(); only then does it get work
    started: float = 0.0  # monotonic time the actor was asked for

    @property
    def node(self) -> str:
        return str(self.info.get("node_id", ""))


@dataclass
class _Item:
    ev: Evidence
    attempts: int = 0


class ClusterAnalysis:
    """One run; `run()` returns a ClusterRunSummary. `workers` is public so tests can kill one."""

    def __init__(self, case: Case, model: Any, session: ClusterSession, options: ClusterOptions | None = None, *,
                 evidence_ids: Iterable[int] | None = None, on_progress: Callable[[ClusterProgress], None] | None = None,
                 should_stop: Callable[[], bool] | None = None, analyst: str | None = None):
        from declip_desktop.common.model_card import card_snapshot

        self.case, self.session, self.ray = case, session, session.ray
        self.options = options or ClusterOptions()
        self.options.check()
        self.installed, self.model_source = choose_model(case, model)
        self.card = self.installed.card
        self.snapshot = card_snapshot(self.card)  # stored with every result, as a local run does
        self.wanted = None if evidence_ids is None else {int(i) for i in evidence_ids}
        self.on_progress, self.should_stop, self.analyst = on_progress, should_stop, analyst
        self.workers: list[_Worker] = []
        self.summary = ClusterRunSummary(model_name=self.card.name, model_sha256=self.card.sha256,
                                         address=session.address)
        self._nodes: dict[str, NodeStats] = {}
        self._t0 = time.monotonic()
        self._weights_ref: Any = None
        self._shipped: list[Any] = []
        self._replacements = 0
        self._gpus = 0.0  # per actor, fixed when the run starts
        self._count = 0  # actors wanted
        self._started = False  # a first actor accepted the model
        self._dispatching = False  # enough actors accepted it (options.start_with): work is being sent

    # ------------------------------------------------------------------ public

    def run(self) -> ClusterRunSummary:
        lock = self.case.analysis_lock()
        if not lock.acquire(blocking=False):
            raise CaseBusyError(f"{self.case.path}: another analysis is already running on this case. "
                                "Wait for it to finish or stop it, then try again.")
        try:
            self.case.requeue_interrupted()
            todo = [e for e in self.case.queued_evidence(self.card.sha256)
                    if self.wanted is None or e.id in self.wanted]
            self.summary.total = len(todo)
            if todo:
                self._log("analysis.cluster_started", {"address": self.session.address, "items": len(todo),
                                                       "options": self.options.__dict__})
                try:
                    self._run(deque(_Item(e) for e in todo))
                finally:
                    self._stop_workers()
                    # We hold the lock, so whatever is still 'analysing' was sent by this run and
                    # not stored (an error or Ctrl-C ended it): back to the queue, in the audit trail.
                    self.case.requeue_interrupted()
                    self.summary.nodes = sorted(self._nodes.values(), key=lambda n: n.hostname + n.node_id)
                    self._log("analysis.cluster_finished", self.summary.as_dict())
            self.summary.remaining = len([e for e in self.case.queued_evidence(self.card.sha256)
                                          if self.wanted is None or e.id in self.wanted])
        finally:
            lock.release()
        self.summary.seconds = time.monotonic() - self._t0
        self._emit(None, "stopped" if self.summary.stopped else "finished")
        return self.summary

    # ------------------------------------------------------------------ run

    def _run(self, queue: deque[_Item]) -> None:
        ray = self.ray
        self._check_model_file()
        if self.options.model_from == "ship":
            self._weights_ref = ray.put(np.fromfile(self.installed.weights_path, dtype=np.uint8))
        # In a list, the reference travels as a reference: each actor fetches the weights itself
        # (once per node through the object store), also after Ray restarted it.
        self._shipped = [self._weights_ref] if self._weights_ref is not None else []
        info = self.session.info()
        self._gpus = self._gpus_per_actor(info.gpus)
        self._count = self._actor_count(info.cpus, info.gpus)
        ready: dict[Any, _Worker] = {}
        for i in range(self._count):
            worker = self._start_worker(i)
            ready[worker.actor.ready.remote(self._shipped)] = worker
        # Work starts once `start_with` actors have accepted the model (or every actor has answered);
        # the others join when they are ready (an actor the cluster has no room for times out and
        # is reported, the rest go on).
        pending: dict[Any, tuple[_Worker, list[_Item], str]] = {}
        while queue or pending:  # an actor still loading when nothing is left to do is not waited for
            if self.should_stop is not None and self.should_stop():
                self.summary.stopped = True
                self._give_back(queue, pending)
                break
            accepted = [w for w in self.workers if w.alive and w.accepted]
            if accepted and not self._dispatching and (len(accepted) >= self.options.start_with or not ready):
                self._dispatching = True
                pin_case(self.case, self.card, self.analyst)  # as a local run: the case keeps the model it used
                self._emit(None, "started")
            for worker in accepted if self._dispatching else []:
                while worker.in_flight < self.options.in_flight and queue:
                    batch = self._take_batch(queue)
                    if batch:
                        ref = worker.actor.analyse.remote(self._payload(batch), self._shipped)
                        pending[ref] = (worker, batch, now_iso())
                        worker.in_flight += 1
            if not pending and not ready:
                if not self._started:
                    raise ClusterError("no worker accepted the model: "
                                       + "; ".join(self.summary.refused or ["none started"])
                                       + ". Install the same model (same SHA-256) on the nodes, or ship it "
                                       "(the default)")
                if queue:  # every worker is gone and no replacement could start
                    raise ClusterError("every worker was lost and none could be restarted; "
                                       "run again to analyse the rest (nothing stored is lost)")
                break
            done, _ = ray.wait(list(pending) + list(ready), num_returns=1, timeout=0.5)
            for ref, late in [(r, w) for r, w in ready.items() if r not in done
                              and time.monotonic() - w.started > self.options.ready_timeout]:
                del ready[ref]
                late.alive = False
                self.summary.refused.append(f"worker {late.index} did not load the model within "
                                            f"{self.options.ready_timeout:.0f} s (no free CPUs/GPUs for it?)")
                self.ray.kill(late.actor)
            for ref in done:
                if ref in ready:
                    self._accept(ref, ready.pop(ref))
                    continue
                worker, batch, started = pending.pop(ref)
                worker.in_flight -= 1
                self._collect(ref, worker, batch, started, queue, ready)

    def _collect(self, ref: Any, worker: _Worker, batch: list[_Item], started: str, queue: deque[_Item],
                 ready: dict[Any, _Worker]) -> None:
        ray = self.ray
        stats = self._stats(worker)
        try:
            results = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError) as exc:
            if worker.alive:
                worker.alive = False
                self.ray.kill(worker.actor)  # frees its CPUs/GPUs for the replacement if it lingers
                stats.actor_deaths += 1
                self.summary.actor_deaths += 1
                self._emit(None, "worker_lost", error=f"worker {worker.index} on {stats.hostname}: {type(exc).__name__}")
                if self._replacements < self._count:
                    self._replacements += 1
                    new = self._start_worker(len(self.workers))
                    ready[new.actor.ready.remote(self._shipped)] = new
            for item in reversed(batch):
                item.attempts += 1
                if item.attempts >= self.options.max_attempts:
                    self._fail(item.ev, f"the workers analysing this image were lost {item.attempts} times "
                               "(it may crash the model: out of memory?)", started, worker)
                else:
                    queue.appendleft(item)
            return
        except ray.exceptions.RayTaskError as exc:
            cause = str(getattr(exc, "cause", None) or exc).strip().splitlines()
            for item in batch:
                self._fail(item.ev, f"the model failed on node {stats.hostname}: {cause[-1] if cause else exc}",
                           started, worker)
            return
        by_id = {item.ev.id: item for item in batch}
        busy = sum(float(r.get("seconds") or 0.0) for r in results)
        stats.busy_seconds += busy
        for res in results:
            item = by_id.get(int(res["evidence_id"]))
            if item is None:
                continue
            if res.get("error"):
                self._fail(item.ev, str(res["error"]), started, worker)
                continue
            try:
                stored = store_one_result(self.case, item.ev, res, model_name=self.card.name,
                                          model_sha256=self.card.sha256, parameters=self._parameters(worker),
                                          started=started, analyst=self.analyst)
            except ValueError as exc:
                self._fail(item.ev, f"node {stats.hostname} returned an unusable map: {exc}", started, worker)
                continue
            if stored:
                self.summary.done += 1
                stats.items += 1
                self._emit(item.ev.id, "done", score=float(res["score"]), node=stats.hostname)
            else:
                self.summary.duplicates_skipped += 1

    # ------------------------------------------------------------------ workers

    def _actor_count(self, cluster_cpus: float, cluster_gpus: float) -> int:
        if self.options.actors is not None:
            return int(self.options.actors)
        if self._gpus:
            return max(1, int(cluster_gpus / self._gpus))
        return max(1, int(cluster_cpus // self.options.cpus_per_actor))

    def _gpus_per_actor(self, cluster_gpus: float) -> float:
        if self.options.gpus_per_actor is not None:
            return float(self.options.gpus_per_actor)
        return 1.0 if cluster_gpus >= 1 and self.options.device != "cpu" else 0.0

    def _start_worker(self, index: int) -> _Worker:
        from declip_desktop.cluster.worker import ModelWorker

        opts, gpus = self.options, self._gpus
        spec = {"model_sha256": self.card.sha256, "card": self.card.to_dict(), "model_from": opts.model_from,
                "models_dir": opts.models_dir, "cache_dir": opts.cache_dir,
                "device": "cpu" if not gpus else opts.device, "batch_size": opts.batch_size, "fast": opts.fast,
                "threads": opts.cpus_per_actor, "software_version": SOFTWARE_VERSION}
        try:
            return self._create_worker(index, ModelWorker, spec, gpus)
        except Exception as exc:  # noqa: BLE001 - e.g. the cluster cannot import this package
            raise ClusterError(f"the cluster could not create a model actor: {type(exc).__name__}: {exc}. Install "
                               f"DeCLIP Desktop {SOFTWARE_VERSION} (with the cluster extra) on every node") from exc

    def _create_worker(self, index: int, worker_class: Any, spec: dict[str, Any], gpus: float) -> _Worker:
        opts = self.options
        cls = self.ray.remote(worker_class).options(
            num_cpus=opts.cpus_per_actor, num_gpus=gpus, max_restarts=opts.max_restarts,
            max_task_retries=opts.max_restarts, name=None)
        worker = _Worker(index, cls.remote(spec), started=time.monotonic())
        self.workers.append(worker)
        return worker

    def _accept(self, ref: Any, w: _Worker) -> None:
        """An actor reported back from `ready()`: put it to work, or refuse it and say why."""
        ray = self.ray
        try:
            w.info = ray.get(ref)
        except ray.exceptions.RayError as exc:
            w.alive = False
            self.summary.refused.append(f"worker {w.index}: failed to start: {type(exc).__name__}: "
                                        f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}")
            return
        stats = self._stats(w)
        if w.info.get("refused") or w.info.get("model_sha256") != self.card.sha256:
            w.alive = False
            stats.refused = str(w.info.get("refused") or "it loaded a different model")
            self.summary.refused.append(f"node {stats.hostname} ({stats.address}): {stats.refused}")
            ray.kill(w.actor)
            return
        w.accepted = True
        stats.actors += 1
        stats.device = str(w.info.get("device_name") or w.info.get("device") or "")
        self._started = True

    def _stop_workers(self) -> None:
        for w in self.workers:
            try:
                self.ray.kill(w.actor)
            except Exception:  # noqa: BLE001 - already dead: nothing to stop
                continue

    def _stats(self, worker: _Worker) -> NodeStats:
        key = worker.node or f"unknown-{worker.index}"
        if key not in self._nodes:
            self._nodes[key] = NodeStats(node_id=key, address=str(worker.info.get("node_ip", "")),
                                         hostname=str(worker.info.get("hostname", "") or key[:12]))
        return self._nodes[key]

    # ------------------------------------------------------------------ items

    def _take_batch(self, queue: deque[_Item]) -> list[_Item]:
        batch: list[_Item] = []
        while queue and len(batch) < self.options.batch_size:
            item = queue.popleft()
            if item.attempts == 0 and not self.case.mark_analysing(item.ev.id):
                continue  # dequeued/skipped meanwhile
            ok, why = self._check_file(item.ev)
            if not ok:
                self._fail(item.ev, why, now_iso(), None)
                continue
            batch.append(item)
        return batch

    def _check_file(self, ev: Evidence) -> tuple[bool, str]:
        path = self.case.evidence_file(ev)
        try:
            actual = sha256_file(path)
        except FileNotFoundError:
            return False, f"the evidence file {path.name} is missing from the case folder"
        if actual != ev.sha256:
            return False, "the evidence file changed since import (SHA-256 mismatch); not analysed"
        return True, ""

    def _payload(self, batch: list[_Item]) -> list[dict[str, Any]]:
        out = []
        for item in batch:
            path = self.case.evidence_file(item.ev)
            entry: dict[str, Any] = {"evidence_id": item.ev.id, "sha256": item.ev.sha256}
            if self.options.evidence_from == "shared":
                root = self.options.shared_root or str(self.case.path)
                entry["path"] = f"{root.rstrip('/')}/{path.relative_to(self.case.path).as_posix()}"
            else:
                entry["data"] = path.read_bytes()
            out.append(entry)
        return out

    def _fail(self, ev: Evidence, error: str, started: str, worker: _Worker | None) -> None:
        device = str(worker.info.get("device", "")) if worker is not None else None
        self.case.store_failure(ev.id, model_name=self.card.name, model_sha256=self.card.sha256,
                                parameters=self._parameters(worker) if worker is not None
                                else {"model_card": dict(self.snapshot)},
                                error=error, started=started, finished=now_iso(), device=device or None,
                                analyst=self.analyst)
        self.summary.failed += 1
        self.summary.failures.append((ev.id, error))
        if worker is not None:
            self._stats(worker).failures += 1
        self._emit(ev.id, "failed", error=error)

    def _give_back(self, queue: deque[_Item], pending: dict[Any, tuple[_Worker, list[_Item], str]]) -> None:
        ids = [item.ev.id for _, batch, _ in pending.values() for item in batch]
        ids += [item.ev.id for item in queue if item.attempts > 0]
        if ids:
            self.case.requeue(ids, analyst=self.analyst)

    def _parameters(self, worker: _Worker) -> dict[str, Any]:
        params = dict(worker.info.get("parameters") or {})
        params["model_card"] = dict(self.snapshot)
        params["cluster"] = {k: worker.info.get(k) for k in ("node_id", "node_ip", "hostname", "pid", "gpu_ids",
                                                              "ray_version")}
        params["cluster"].update(address=self.session.address, evidence_from=self.options.evidence_from,
                                 model_from=self.options.model_from, device_name=worker.info.get("device_name"))
        return params

    def _check_model_file(self) -> None:
        actual = sha256_file(self.installed.weights_path)
        if actual != self.card.sha256:
            raise ClusterError(f"the model file {self.installed.weights_path} hashes to {actual}, not its card's "
                               f"{self.card.sha256}. Re-install the model (`declip models verify`)")

    def _log(self, action: str, details: dict[str, Any]) -> None:
        self.case.log_event(action, f"model:{self.card.sha256}", details, analyst=self.analyst)

    def _emit(self, evidence_id: int | None, status: str, score: float | None = None, error: str | None = None,
              node: str | None = None) -> None:
        if self.on_progress is None:
            return
        finished = self.summary.done + self.summary.failed
        elapsed = time.monotonic() - self._t0
        eta = elapsed / finished * (self.summary.total - finished) if finished else None
        self.on_progress(ClusterProgress(finished, self.summary.total, evidence_id, status, eta, score, error, node))


def run_on_cluster(case: Case, model: Any, session: ClusterSession, options: ClusterOptions | None = None,
                   **kwargs: Any) -> ClusterRunSummary:
    """Analyse `case`'s queue for `model` on the cluster of `session`; see the module docstring.

    Raises CaseBusyError (another run holds the case), ClusterError (no worker could run)."""
    return ClusterAnalysis(case, model, session, options, **kwargs).run()


__all__ = ["ClusterAnalysis", "ClusterOptions", "run_on_cluster", "store_one_result"]
