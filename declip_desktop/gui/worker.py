"""The analysis worker: a thin Qt adapter over `analysis.AnalysisSession`, one thread per case.

The session decides everything (which model, the queue and its counts, pause/stop/cancel,
the CPU fallback, what each result records); this module only moves it onto a QThread and
turns its callbacks into queued signals, so the UI thread never waits. The Localizer comes
from the injected `EngineServices` (built by `declip_desktop.desktop`), so nothing here
imports torch.

Results are stored as each image finishes, so closing the window mid-queue loses at most the
image in flight, which stays queued and is analysed when the case is opened again.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from declip_desktop.analysis import AnalysisError, AnalysisSession
from declip_desktop.analysis.multi_model import secondary_parameters
from declip_desktop.cases import Case, CaseBusyError
from declip_desktop.gui.services import EngineServices

log = logging.getLogger("declip_desktop.gui")


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
    model: str | None = None  # None: the model the case is pinned to (else the store's default)
    device: str = "auto"  # auto | cpu | cuda
    fast: bool = False
    evidence_ids: tuple[int, ...] | None = None  # None: everything queued
    requeue: bool = False  # analyse again even if done with this model
    pin: bool = True  # False: a one-off re-analysis that leaves the case's model alone
    generation: int = 0  # set by the controller; a cancel drops every request submitted before it
    load_only: bool = False  # just load the model (on opening a case), analyse nothing
    tiling: object = None  # common.tiling_plan.TilingOptions: also store a tiled map (gui.window_tiling)
    estimate_only: bool = False  # with tiling: time the model and count passes (estimate_ready), analyse nothing
    agreement_primary: str | None = None  # SHA-256: a secondary model of a multi-model run (analysis.multi_model)


class AnalysisWorker(QObject):
    """Lives on its own QThread; `run` is invoked through a queued signal."""

    model_ready = Signal(object)  # analysis.ModelInUse
    progress = Signal(object)  # analysis.ProgressEvent
    run_started = Signal(int)  # total queued for this run
    run_finished = Signal(str, object)  # reason (done|loaded|paused|cancelled|stopped|busy|error), RunSummary|None
    notice = Signal(str, str, str)  # level, message, detail
    estimate_ready = Signal(object, object)  # analysis.tiling.TilingEstimate, the RunRequest it is for

    def __init__(self, case_path: Path, services: EngineServices):
        super().__init__()
        self.case_path = Path(case_path)
        # Created here so pause/cancel work before the first run; the case connection is
        # opened on the worker thread for each request.
        self.session = AnalysisSession(
            None, localizer_factory=services.localizer_factory, model_resolver=services.model_resolver,
            batch_size=1,  # one image per batch: pause and cancel take effect between images, as promised
            on_status=lambda message: self.notice.emit("info", message, ""), fall_back_when_unavailable=True)
        self.busy = False
        self.cancel_generation = 0

    # ----- flags (called from the UI thread) ---------------------------------------------------
    def request_pause(self) -> None:
        self.session.pause()

    def request_resume(self) -> None:
        self.session.resume()

    def request_cancel(self) -> None:
        self.cancel_generation += 1
        self.session.cancel()

    def request_stop(self) -> None:
        """Stop between images and keep the rest queued (closing the case or the app)."""
        self.session.stop()

    @property
    def paused(self) -> bool:
        return self.session.paused

    # ----- the work (worker thread) ------------------------------------------------------------
    @Slot(object)
    def run(self, request: RunRequest) -> None:
        _lower_priority()
        if self.session.stop_token():
            self.run_finished.emit("stopped", None)
            return
        if request.generation < self.cancel_generation:
            self.run_finished.emit("cancelled", None)
            return
        self.busy = True
        try:
            self._run(request)
        finally:
            self.busy = False

    def _model_ready(self, info) -> None:
        freeze_long_lived_objects()
        self.model_ready.emit(info)

    def _run(self, request: RunRequest) -> None:
        try:
            case = Case.open(self.case_path)
        except Exception as exc:
            self.notice.emit("error", f"The analysis could not open the case: {exc}", traceback.format_exc())
            self.run_finished.emit("error", None)
            return
        session = self.session
        session.case, session.model, session.device, session.fast = case, request.model, request.device, request.fast
        session.tiling = request.tiling
        try:
            if request.estimate_only:
                from declip_desktop.analysis.tiling import estimate_session

                self.estimate_ready.emit(estimate_session(session, request.evidence_ids), request)
                self.run_finished.emit("estimated", None)
                return
            if request.load_only:
                loc = session.localizer(on_notice=self.notice.emit)
                self._model_ready(session.model_in_use(loc))
                self.run_finished.emit("loaded", None)
                return
            summary = session.run(request.evidence_ids, requeue=request.requeue, pin=request.pin,
                                  on_progress=self.progress.emit, on_start=self.run_started.emit,
                                  on_model=self._model_ready, on_notice=self.notice.emit,
                                  extra_parameters=secondary_parameters(request.agreement_primary)
                                  if request.agreement_primary else None)
            reason = "cancelled" if summary.cancelled else "stopped" if session.stop_token() else "done"
            self.run_finished.emit(reason, summary)
        except CaseBusyError as exc:
            self.notice.emit("warning", str(exc), "")
            self.run_finished.emit("busy", None)
        except AnalysisError as exc:
            self.notice.emit("error", f"The model could not be used: {exc}", traceback.format_exc())
            _audit(case, "gui.model_load_failed", request.model or "case model", {"error": str(exc)})
            self.run_finished.emit("error", None)
        except Exception as exc:
            self.notice.emit("error", f"The analysis stopped: {exc}", traceback.format_exc())
            _audit(case, "gui.analysis_error", "queue", {"error": str(exc)})
            self.run_finished.emit("error", None)
        finally:
            session.case = None
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

    def __init__(self, case_path: Path, services: EngineServices, parent=None):
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("declip-analysis")
        self.worker = AnalysisWorker(case_path, services)
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
