"""The application layer: runs analyses of a case for the GUI and the CLI (no Qt, no torch).

- `AnalysisSession` (analysis.session): model choice and pinning, the Localizer (built by an
  injected factory), the queue, counts, pause/stop/cancel, CPU fallback on out-of-memory.
- `run_queue`, `waiting_evidence`, `ProgressEvent`, `RunSummary` (analysis.queue): the runner
  underneath, storing each result with its model card's snapshot.
"""

from declip_desktop.analysis.queue import ProgressEvent, RunSummary, result_parameters, run_queue, waiting_evidence
from declip_desktop.analysis.session import (
    AnalysisError,
    AnalysisSession,
    ModelChoice,
    ModelInUse,
    ModelLoadError,
    ModelPinError,
    fall_back_to_cpu,
)

__all__ = [
    "AnalysisError",
    "AnalysisSession",
    "ModelChoice",
    "ModelInUse",
    "ModelLoadError",
    "ModelPinError",
    "ProgressEvent",
    "fall_back_to_cpu",
    "RunSummary",
    "result_parameters",
    "run_queue",
    "waiting_evidence",
]
