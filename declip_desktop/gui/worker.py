"""The analysis worker: one QThread per open case that owns the model and runs the queue.

The UI thread never waits on it. It talks to the window only through queued
signals; pause and cancel are thread-safe flags read between images by
`analysis.run_queue(..., should_stop=...)`. Everything heavy (torch, the case
database connection it writes through) lives on this thread: the modules are
imported here, at run time, so importing the GUI never imports torch.

Results are stored by `run_queue` as each image finishes, so closing the window
mid-queue loses at most the image in flight, which stays queued and is analysed
when the case is opened again.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

log = logging.getLogger("declip_desktop.gui")


def make_localizer(model: str | None, device: str, fast: bool, on_status=None):
    """Build the engine's Localizer (imports torch: call on the worker thread only).

    On the CPU torch gets one core less than the machine has: the UI thread keeps a
    core to itself, so the event loop is never starved by the analysis.
    """
    from declip_desktop.engine.localizer import Localizer

    threads = max(1, (os.cpu_count() or 2) - 1)
    # One image per batch: pause and cancel take effect between images, as promised.
    return Localizer(model, device=device, fast=fast, threads=threads, batch_size=1, on_status=on_status)


def preload_engine() -> None:
    """Import torch and the engine ahead of the first analysis (call off the UI thread).

    Loading torch's shared libraries happens inside one C call that holds the GIL
    for a second or more; doing it once at startup, while the analyst is still on the
    start screen or opening a case, keeps that pause out of the analysis itself.
    """
    import declip_desktop.analysis  # noqa: F401
    import declip_desktop.engine.checkpoints  # noqa: F401  (torch, safetensors)
    import declip_desktop.engine.localizer  # noqa: F401
    from declip_desktop.engine import networks

    try:
        networks.VitSpec.from_open_clip()  # reads a local config: imports open_clip and what it pulls in
    except Exception:  # only a warm-up: the analysis reports real problems itself
        log.exception("warming up open_clip failed")
    freeze_long_lived_objects()


def freeze_long_lived_objects() -> None:
    """Take everything allocated so far out of the garbage collector's full passes.

    torch, open_clip and the model leave ~400 000 tracked objects; a full collection
    over them holds the GIL for 0.5–0.7 s on this project's CPUs, and any thread's
    allocations can trigger one, which froze the UI. These objects live as long as
    the process, so `gc.freeze()` (made for exactly this) loses nothing. No collection
    first: that would be the very pause this avoids.
    """
    gc.freeze()


@dataclass(frozen=True)
class RunRequest:
    model: str | None  # installed model name (None: the store's default)
    device: str = "auto"  # auto | cpu | cuda
    fast: bool = False
    evidence_ids: tuple[int, ...] | None = None  # None: everything queued
    requeue: bool = False  # analyse again even if done with this model
    generation: int = 0  # set by the controller; a cancel drops every request submitted before it
    load_only: bool = False  # just load the model (on opening a case), analyse nothing


@dataclass
class ModelInfo:
    name: str
    sha256: str
    device: str
    demo: bool
    label: str
    card: dict = field(default_factory=dict)


class AnalysisWorker(QObject):
    """Lives on its own QThread; `run` is invoked through a queued signal."""

    model_ready = Signal(object)  # ModelInfo
    progress = Signal(object)  # analysis.ProgressEvent
    run_started = Signal(int)  # total queued for this run
    run_finished = Signal(str, object)  # reason (done|paused|cancelled|stopped|error), RunSummary|None
    notice = Signal(str, str, str)  # level, message, detail

    def __init__(self, case_path: Path):
        super().__init__()
        self.case_path = Path(case_path)
        self._stop = threading.Event()
        self._cancel = threading.Event()
        self._resume = threading.Event()
        self._resume.set()
        self._localizer = None
        self._localizer_key: tuple | None = None
        self.busy = False
        self.cancel_generation = 0

    # ----- flags (called from the UI thread) ---------------------------------------------------
    def request_pause(self) -> None:
        self._resume.clear()

    def request_resume(self) -> None:
        self._resume.set()

    def request_cancel(self) -> None:
        self.cancel_generation += 1
        self._cancel.set()
        self._resume.set()

    def request_stop(self) -> None:
        """Stop between images and keep the rest queued (closing the case or the app)."""
        self._stop.set()
        self._resume.set()

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    def _should_stop(self) -> bool:
        # Pausing blocks here, between two images, on the worker thread only.
        while not self._resume.wait(0.1):
            if self._stop.is_set() or self._cancel.is_set():
                break
        return self._stop.is_set() or self._cancel.is_set()

    # ----- the work (worker thread) ------------------------------------------------------------
    def _get_localizer(self, request: RunRequest, device: str):
        key = (request.model, device, request.fast)
        if self._localizer is None or self._localizer_key != key:
            self._localizer = None  # release the previous model's memory first
            self._localizer = make_localizer(request.model, device, request.fast,
                                             on_status=lambda message: self.notice.emit("info", message, ""))
            self._localizer_key = key
            freeze_long_lived_objects()
            loc = self._localizer
            card = loc.card
            card_dict = card.to_dict() if hasattr(card, "to_dict") else dict(getattr(card, "__dict__", {}))
            self.model_ready.emit(
                ModelInfo(
                    name=card.name,
                    sha256=loc.model_sha256,
                    device=loc.device,
                    demo=bool(loc.is_demo),
                    label=getattr(card, "label", "") or "",
                    card=card_dict,
                )
            )
        return self._localizer

    @Slot(object)
    def run(self, request: RunRequest) -> None:
        _lower_priority()
        if self._stop.is_set():
            self.run_finished.emit("stopped", None)
            return
        if request.generation < self.cancel_generation:
            self.run_finished.emit("cancelled", None)
            return
        self._cancel.clear()
        self.busy = True
        try:
            self._run(request)
        finally:
            self.busy = False

    def _run(self, request: RunRequest) -> None:
        from declip_desktop import analysis
        from declip_desktop.cases import Case

        try:
            case = Case.open(self.case_path)
        except Exception as exc:
            self.notice.emit("error", f"The analysis could not open the case: {exc}", traceback.format_exc())
            self.run_finished.emit("error", None)
            return
        try:
            device = request.device
            try:
                try:
                    localizer = self._get_localizer(request, device)
                except Exception as exc:
                    if type(exc).__name__ != "DeviceUnavailable":
                        raise
                    self.notice.emit("warning", f"{exc} The analysis runs on the CPU.", "")
                    localizer = self._get_localizer(request, "cpu")
            except Exception as exc:
                detail = traceback.format_exc()
                self.notice.emit("error", f"The model could not be loaded: {exc}", detail)
                _audit(case, "gui.model_load_failed", request.model or "default", {"error": str(exc)})
                self.run_finished.emit("error", None)
                return
            if request.load_only:
                self.run_finished.emit("loaded", None)
                return
            ids = list(request.evidence_ids) if request.evidence_ids is not None else None
            if request.requeue and ids:
                case.requeue(ids)
            queued = case.queued_evidence(localizer.model_sha256)
            if ids is not None:
                wanted = set(ids)
                queued = [ev for ev in queued if ev.id in wanted]
            self.run_started.emit(len(queued))
            summary = None
            while True:
                summary = analysis.run_queue(
                    case,
                    localizer,
                    evidence_ids=ids,
                    on_progress=self.progress.emit,
                    should_stop=self._should_stop,
                )
                if summary.out_of_memory and localizer.device != "cpu":
                    # run_queue put the batch back in the queue; the model moves to the CPU once.
                    message = f"Out of memory on {localizer.device}; the analysis continues on the CPU (slower)."
                    self.notice.emit("warning", message, summary.message)
                    _audit(case, "gui.device_fallback", localizer.device, {"to": "cpu", "error": summary.message})
                    localizer = self._get_localizer(request, "cpu")
                    continue
                break
            if self._cancel.is_set():
                remaining = case.queued_evidence(localizer.model_sha256)
                if ids is not None:
                    remaining = [ev for ev in remaining if ev.id in set(ids)]
                if remaining:
                    case.dequeue([ev.id for ev in remaining])
                self.run_finished.emit("cancelled", summary)
            elif self._stop.is_set():
                self.run_finished.emit("stopped", summary)
            else:
                self.run_finished.emit("done", summary)
        except Exception as exc:
            if type(exc).__name__ == "CaseBusyError":
                self.notice.emit("warning", str(exc), "")
                self.run_finished.emit("busy", None)
                return
            self.notice.emit("error", f"The analysis stopped: {exc}", traceback.format_exc())
            _audit(case, "gui.analysis_error", "queue", {"error": str(exc)})
            self.run_finished.emit("error", None)
        finally:
            try:
                case.close()
            except Exception:
                log.exception("closing the worker's case connection failed")


def _lower_priority() -> None:
    """Make the analysis thread yield the CPU to the UI thread on a busy machine.

    On Linux a thread has its own nice value (setpriority on its thread id), and the
    threads torch and the Localizer start from here inherit it; elsewhere Qt's thread
    priority does the same job. The GIL is released inside torch's operations, so
    the UI then only competes for the CPU, which this settles in its favour.
    """
    thread = QThread.currentThread()
    if thread.priority() != QThread.Priority.LowPriority:
        thread.setPriority(QThread.Priority.LowPriority)
        if sys.platform.startswith("linux"):
            try:
                tid = threading.get_native_id()
                os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + 10))
            except OSError as exc:  # not permitted: carry on at normal priority
                log.info("could not lower the analysis thread's priority: %s", exc)


def _audit(case, action: str, obj: str, details: dict) -> None:
    try:
        case.log_event(action, obj, details)
    except Exception:
        log.exception("could not write %s to the audit log", action)


class WorkerController(QObject):
    """UI-side handle: starts the thread, forwards requests, shuts down cleanly."""

    submit = Signal(object)  # RunRequest, queued to the worker thread

    def __init__(self, case_path: Path, parent=None):
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("declip-analysis")
        self.worker = AnalysisWorker(case_path)
        self.worker.moveToThread(self.thread)
        self.submit.connect(self.worker.run)
        self.pending = 0
        self.worker.run_finished.connect(self._on_finished)
        self.thread.start()
        self.started_at: float | None = None

    def start(self, request: RunRequest) -> None:
        self.pending += 1
        self.started_at = time.monotonic()
        # A paused queue stays paused (new imports wait); the analyst resumes it.
        self.submit.emit(replace(request, generation=self.worker.cancel_generation))

    def _on_finished(self, _reason: str, _summary) -> None:
        self.pending = max(0, self.pending - 1)

    @property
    def running(self) -> bool:
        return self.pending > 0

    def pause(self) -> None:
        self.worker.request_pause()

    def resume(self) -> None:
        self.worker.request_resume()

    def cancel(self) -> None:
        self.worker.request_cancel()

    def retire(self) -> None:
        """Stop between images and let the thread end on its own (switching cases: no waiting)."""
        self.worker.request_stop()
        self.thread.quit()

    def shutdown(self, wait_ms: int = 120_000) -> bool:
        """Stop between images and wait for the thread (quitting; the window is hidden by then)."""
        self.retire()
        return self.thread.wait(wait_ms)
