"""Analyse a case with several models in one action, for agreement across models.

    run = MultiModelRun(case, ["declip-ldm", "declip-lama"], localizer_factory=Localizer,
                        model_resolver=resolve_model)
    run.plan()        # [(ModelChoice, role)], checked before anything runs
    summary = run.run(on_progress=...)

Each model's maps are stored as ordinary analyses (each with its card snapshot), through the
same `AnalysisSession` as a single-model run. One model is the *primary*: the case's pinned
model when it is among those asked for, else the first one named; it is pinned as usual. The
others are *secondary*: their results carry `parameters["agreement"] = {"role": "secondary",
"primary": <SHA-256>}` and never replace the primary's result as the one the inspector, the
report and the exports show (`Case.latest_analysis` prefers non-secondary results). They run
first and the primary last, so an item's shown state is the primary's.

Agreement itself is computed from the stored maps (`cases.model_agreement`, `common.agreement`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from declip_desktop.analysis.queue import ProgressEvent, RunSummary
from declip_desktop.analysis.session import AnalysisError, AnalysisSession, ModelChoice, ModelInUse, Notice
from declip_desktop.cases.case_settings import pinned_model
from declip_desktop.cases.records import SECONDARY_ROLE

PRIMARY, SECONDARY = "primary", SECONDARY_ROLE


def secondary_parameters(primary_sha256: str) -> dict[str, Any]:
    """What a secondary model's results store besides the usual parameters (never shown first)."""
    return {"agreement": {"role": SECONDARY, "primary": str(primary_sha256)}}


@dataclass
class MultiRunSummary:
    runs: list[tuple[str, str, RunSummary]] = field(default_factory=list)  # (model name, role, summary)
    primary: str = ""

    @property
    def failed(self) -> int:
        return sum(s.failed for _n, _r, s in self.runs)

    @property
    def stopped(self) -> bool:
        return any(s.stopped or s.cancelled for _n, _r, s in self.runs)

    @property
    def out_of_memory(self) -> bool:
        return any(s.out_of_memory for _n, _r, s in self.runs)


def parse_models(text: str) -> list[str]:
    """"a,b , c" → ["a", "b", "c"]; refuses empty names and repeats (say what to type instead)."""
    names = [n.strip() for n in str(text).split(",")]
    if not names or any(not n for n in names):
        raise AnalysisError(f"--models {text!r} names an empty model. Give installed model names separated by "
                            "commas, e.g. --models declip-ldm,declip-lama")
    if len(set(names)) != len(names):
        raise AnalysisError(f"--models {text!r} names a model twice; name each model once")
    return names


class MultiModelRun:
    """Several models over the same evidence; see the module docstring."""

    def __init__(self, case: Any, models: Sequence[Any], *, localizer_factory: Callable[..., Any],
                 model_resolver: Callable[[Any], Any], device: str = "auto", fast: bool = False,
                 batch_size: int = 4, analyst: str | None = None, on_status: Callable[[str], None] | None = None,
                 fall_back_when_unavailable: bool = False):
        if len(models) < 2:
            raise AnalysisError("agreement needs at least two models; name two or more (or analyse with one "
                                "model as usual)")
        self.case = case
        self.models = list(models)
        self._factory = localizer_factory
        self._resolver = model_resolver
        self._kw = dict(device=device, fast=fast, batch_size=batch_size, analyst=analyst, on_status=on_status,
                        fall_back_when_unavailable=fall_back_when_unavailable)
        self._current: AnalysisSession | None = None
        self._spec: dict[str, Any] = {}  # SHA-256 → the name or path it was asked for as
        self._cancelled = False

    def _session(self, model: Any) -> AnalysisSession:
        return AnalysisSession(self.case, model=model, localizer_factory=self._factory,
                               model_resolver=self._resolver, **self._kw)

    def plan(self) -> list[tuple[ModelChoice, str]]:
        """Every model resolved (AnalysisError before anything runs), secondaries first, primary last."""
        choices = [self._session(m).choose_model() for m in self.models]
        self._spec = {c.sha256: m for c, m in zip(choices, self.models)}
        seen: dict[str, str] = {}
        for c in choices:
            if c.sha256 in seen:
                raise AnalysisError(f"{seen[c.sha256]} and {c.name} are the same weights (SHA-256 "
                                    f"{c.sha256[:12]}…); agreement needs different models")
            seen[c.sha256] = c.name
        pin = pinned_model(self.case)
        primary = next((c for c in choices if pin is not None and pin.sha256 == c.sha256), choices[0])
        return [(c, SECONDARY) for c in choices if c is not primary] + [(primary, PRIMARY)]

    def cancel(self) -> None:
        self._cancelled = True
        if self._current is not None:
            self._current.cancel()

    def stop(self) -> None:
        self._cancelled = True
        if self._current is not None:
            self._current.stop()

    def run(self, evidence_ids: Iterable[int] | None = None, *,
            on_progress: Callable[[ProgressEvent], None] | None = None,
            on_model: Callable[[ModelInUse], None] | None = None, on_notice: Notice | None = None,
            on_plan: Callable[[str, str, int, int], None] | None = None) -> MultiRunSummary:
        """Run every model of `plan()` in turn. `on_plan(name, role, step, steps)` before each."""
        ids = None if evidence_ids is None else [int(i) for i in evidence_ids]
        plan = self.plan()
        primary = plan[-1][0]
        summary = MultiRunSummary(primary=primary.name)
        for step, (choice, role) in enumerate(plan, start=1):
            if self._cancelled:
                break
            if on_plan is not None:
                on_plan(choice.name, role, step, len(plan))
            session = self._session(self._spec[choice.sha256])
            self._current = session
            result = session.run(ids, on_progress=on_progress, on_model=on_model, on_notice=on_notice,
                                 pin=role == PRIMARY,
                                 extra_parameters=secondary_parameters(primary.sha256) if role == SECONDARY else None)
            summary.runs.append((choice.name, role, result))
            if result.out_of_memory:
                break
        self._current = None
        return summary


__all__ = ["PRIMARY", "SECONDARY", "MultiModelRun", "MultiRunSummary", "parse_models", "secondary_parameters"]
