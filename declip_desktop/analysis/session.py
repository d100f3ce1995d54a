"""`AnalysisSession`: the one place that runs a case's analyses, for the GUI and the CLI.

    session = AnalysisSession(case, model=None, device="auto", fast=False,
                              localizer_factory=load_localizer, model_resolver=resolve_model)
    choice = session.choose_model()      # which model, and why (before anything is loaded)
    summary = session.run(on_progress=print)

It decides which model a case uses (`choose_model`: the one asked for, else the case's pinned
model, else the store's default), builds the Localizer through the injected factory (so this
package never imports torch), pins the model in the case when a run starts, counts and runs
the queue (`queue.run_queue`), falls back to the CPU once when the device runs out of
memory, and handles pause, stop and cancel between images. Every stored result carries the
model card's snapshot (`queue.result_parameters`).

The factory is called as `localizer_factory(model, device=..., fast=..., batch_size=...,
on_status=...)` with what `model_resolver(name_or_path_or_None)` returned (an object with a
`.card` that has `name` and `sha256`); the model store's `load_localizer` and `resolve_model`
(`modelstore.loading`) fit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from declip_desktop.analysis.queue import ProgressEvent, RunSummary, run_queue, waiting_evidence
from declip_desktop.cases.case_settings import PinnedModel, pin_model, pinned_model
from declip_desktop.common.errors import DeviceUnavailable
from declip_desktop.common.facts import card_is_demo, demo_label
from declip_desktop.common.progress import CancelToken

LocalizerFactory = Callable[..., Any]
ModelResolver = Callable[[Any], Any]
Notice = Callable[[str, str, str], None]  # level ("info"|"warning"), message, detail


class AnalysisError(Exception):
    """An analysis could not start; the message says what happened and what to do."""


class ModelPinError(AnalysisError):
    """The model the case is pinned to is missing, or the installed one is another file."""


class ModelLoadError(AnalysisError):
    """The chosen model could not be found or loaded."""


@dataclass(frozen=True)
class ModelChoice:
    """The model a run will use and why: source is "requested", "case" (pinned) or "default"."""

    name: str
    sha256: str
    source: str
    model: Any = field(repr=False, compare=False)  # what the resolver returned; handed to the factory
    card: Any = field(repr=False, compare=False)

    @property
    def demo(self) -> bool:
        return card_is_demo(self.card)

    def describe(self) -> str:
        why = {"requested": "chosen for this run", "case": "the model this case is pinned to",
               "default": "the default model; the case will be pinned to it"}[self.source]
        text = f"{self.name} (SHA-256 {self.sha256[:12]}…), {why}"
        label = demo_label(self.card)
        return f"{text} — {label}" if label else text


@dataclass(frozen=True)
class ModelInUse:
    """A loaded model as the front ends show it (what `on_model` receives)."""

    name: str
    sha256: str
    device: str
    demo: bool
    label: str
    snapshot: dict  # the card snapshot stored with each result


def _card_of(resolved: Any) -> Any:
    card = getattr(resolved, "card", None)
    if card is None or not getattr(card, "name", None) or not getattr(card, "sha256", None):
        raise ModelLoadError(f"the model resolver returned {type(resolved).__name__} without a card naming "
                             "the model and its SHA-256")
    return card


class AnalysisSession:
    """Runs a case's queue with one model; see the module docstring.

    `model`, `device` and `fast` may be changed between runs; the loaded Localizer is kept
    while they stay the same. `pause`/`resume`/`stop`/`cancel` may be called from any thread;
    they act between images. `analyst` is written to the audit log."""

    def __init__(self, case: Any, model: Any = None, device: str = "auto", fast: bool = False, *,
                 localizer_factory: LocalizerFactory, model_resolver: ModelResolver, batch_size: int = 4,
                 analyst: str | None = None, on_status: Callable[[str], None] | None = None,
                 fall_back_when_unavailable: bool = False, tiling: Any = None):
        if not callable(localizer_factory) or not callable(model_resolver):
            raise TypeError("AnalysisSession needs a localizer_factory and a model_resolver (e.g. the model store's "
                            "load_localizer and resolve_model)")
        self.case = case
        self.model = model
        self.device = device or "auto"
        self.fast = bool(fast)
        self.batch_size = max(1, int(batch_size))
        self.analyst = analyst
        self.on_status = on_status
        #: A device this machine lacks: run on the CPU with a warning (GUI) instead of refusing (CLI).
        self.fall_back_when_unavailable = fall_back_when_unavailable
        #: `common.tiling_plan.TilingOptions`: also store a native-resolution tiled map per item
        #: (docs/INFERENCE.md); None = the squash only.
        self.tiling = tiling
        self._factory = localizer_factory
        self._resolver = model_resolver
        self._localizer: Any = None
        self._localizer_key: tuple | None = None
        self._unavailable: set[str] = set()  # devices this machine turned out not to have
        self.cancel_token = CancelToken()
        self.stop_token = CancelToken()
        self._resume = threading.Event()
        self._resume.set()

    # ------------------------------------------------------------------ control (any thread)
    def pause(self) -> None:
        self._resume.clear()

    def resume(self) -> None:
        self._resume.set()

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    def cancel(self) -> None:
        """Stop between images and take what is still waiting out of the queue."""
        self.cancel_token.cancel()
        self._resume.set()

    def stop(self) -> None:
        """Stop between images and leave the rest queued (closing the case or the app)."""
        self.stop_token.cancel()
        self._resume.set()

    def stop_requested(self) -> bool:
        """Whether a pause, stop or cancel is asked for now, without waiting (`_should_stop`
        waits while paused): the runner finishes storing what is computed before it asks."""
        return self.paused or self.stop_token() or self.cancel_token()

    def _should_stop(self) -> bool:
        while not self._resume.wait(0.1):  # paused: wait here, between two images
            if self.stop_token() or self.cancel_token():
                break
        return self.stop_token() or self.cancel_token()

    # ------------------------------------------------------------------ model
    def choose_model(self) -> ModelChoice:
        """Which model the next run uses (no torch, nothing written). Raises ModelPinError when
        the case's pinned model is missing or is another file than the one it was analysed with."""
        if self.model is not None:
            resolved = self._resolve(self.model, f"the model {self.model}")
            card = _card_of(resolved)
            return ModelChoice(card.name, card.sha256, "requested", resolved, card)
        pin = pinned_model(self.case)
        if pin is None:
            resolved = self._resolve(None, "the default model")
            card = _card_of(resolved)
            return ModelChoice(card.name, card.sha256, "default", resolved, card)
        try:
            resolved = self._resolver(pin.name)
        except Exception as exc:  # noqa: BLE001 - the engine's lookup errors vary; all mean "not there"
            raise ModelPinError(
                f"this case is analysed with the model {pin.name}{_sha_note(pin)}, which cannot be found: {exc}. "
                "Install that model again, or choose another one for the case explicitly "
                "(`declip case analyze DIR --model NAME`, or Models → Choose model…)") from None
        card = _card_of(resolved)
        if pin.sha256 is not None and card.sha256 != pin.sha256:
            raise ModelPinError(
                f"this case is analysed with the model {pin.name} (SHA-256 {pin.sha256[:12]}…), but the model "
                f"installed under that name is another file (SHA-256 {card.sha256[:12]}…). Nothing was analysed. "
                "Reinstall the model the case used, or choose the new one explicitly "
                "(`--model NAME`, or Models → Choose model…) to pin the case to it")
        return ModelChoice(card.name, card.sha256, "case", resolved, card)

    def _resolve(self, spec: Any, what: str) -> Any:
        try:
            return self._resolver(spec)
        except Exception as exc:  # noqa: BLE001 - reworded once, for every front end
            raise ModelLoadError(f"{what} could not be found: {exc}") from exc

    def localizer(self, choice: ModelChoice | None = None, on_notice: Notice | None = None,
                  device: str | None = None) -> Any:
        """The Localizer for `choice` (default: `choose_model()`), built once per model/device/mode."""
        choice = choice or self.choose_model()
        device = device or self.device
        if device in self._unavailable:
            device = "cpu"  # said once, when it was found missing
        key = (choice.sha256, device, self.fast, self.tiling)
        if self._localizer is not None and self._localizer_key == key:
            return self._localizer
        self._localizer = None  # free the previous model's memory before loading the next
        try:
            loc = self._build(choice.model, device)
        except DeviceUnavailable as exc:
            if not self.fall_back_when_unavailable or device == "cpu":
                raise ModelLoadError(str(exc)) from exc
            _notify(on_notice, "warning", f"{exc}. The analysis runs on the CPU.", "")
            self._unavailable.add(device)
            device = "cpu"
            key = (choice.sha256, device, self.fast, self.tiling)
            loc = self._build(choice.model, device)
        if str(loc.model_sha256) != choice.sha256:
            raise ModelLoadError(f"the loaded model's SHA-256 {str(loc.model_sha256)[:12]}… is not the chosen "
                                 f"{choice.name}'s {choice.sha256[:12]}…; nothing was analysed")
        self._localizer, self._localizer_key = loc, key
        return loc

    def _build(self, model: Any, device: str) -> Any:
        try:
            extra = {} if self.tiling is None else {"tiling": self.tiling}  # stand-in factories need not know it
            return self._factory(model, device=device, fast=self.fast, batch_size=self.batch_size,
                                 on_status=self.on_status, **extra)
        except DeviceUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - any load failure ends here with the model's name
            name = getattr(getattr(model, "card", None), "name", None) or model
            raise ModelLoadError(f"the model {name} could not be loaded: {exc}") from exc

    @staticmethod
    def model_in_use(localizer: Any) -> ModelInUse:
        snapshot = dict(localizer.card_snapshot)
        return ModelInUse(name=str(snapshot.get("name") or localizer.model_name), sha256=str(localizer.model_sha256),
                          device=str(localizer.device), demo=card_is_demo(snapshot), label=demo_label(snapshot),
                          snapshot=snapshot)

    # ------------------------------------------------------------------ queue
    def waiting(self, evidence_ids: Iterable[int] | None = None, model_sha256: str | None = None) -> list:
        """What a run would analyse now (the same function the runner uses)."""
        if model_sha256 is None:
            pin = pinned_model(self.case)
            model_sha256 = pin.sha256 if pin is not None else None
        return waiting_evidence(self.case, model_sha256, evidence_ids)

    def run(self, evidence_ids: Iterable[int] | None = None, *, requeue: bool = False,
            on_progress: Callable[[ProgressEvent], None] | None = None,
            on_start: Callable[[int], None] | None = None,
            on_model: Callable[[ModelInUse], None] | None = None,
            on_notice: Notice | None = None, pin: bool = True,
            extra_parameters: dict[str, Any] | None = None) -> RunSummary:
        """Analyse what is waiting (or `evidence_ids`; `requeue` analyses those again).

        `pin=False` leaves the case's model setting alone (a one-off re-analysis with another
        model); otherwise the case is pinned to the model used (audit-logged when it changes).
        `extra_parameters` are stored with every result (analysis.multi_model marks secondary ones).

        Raises AnalysisError (model missing, pin mismatch, load failure) before anything is
        changed, and CaseBusyError when another run holds the case."""
        self.cancel_token.clear()
        ids = None if evidence_ids is None else [int(i) for i in evidence_ids]
        choice = self.choose_model()
        localizer = self.localizer(choice, on_notice)
        if on_model is not None:
            on_model(self.model_in_use(localizer))
        if pin:
            self._pin(choice)
        if requeue and ids:
            self.case.requeue(ids, analyst=self.analyst)
        if on_start is not None:
            on_start(len(waiting_evidence(self.case, choice.sha256, ids)))
        while True:
            summary = run_queue(self.case, localizer, evidence_ids=ids, on_progress=on_progress,
                                should_stop=self._should_stop, stop_requested=self.stop_requested,
                                analyst=self.analyst,
                                extra_parameters=extra_parameters)
            if summary.out_of_memory and str(localizer.device) != "cpu":
                # run_queue put the batch back; the model moves to the CPU once.
                self.case.log_event("analysis.device_fallback", str(localizer.device),
                                    {"to": "cpu", "error": summary.message}, analyst=self.analyst)
                localizer = fall_back_to_cpu(localizer, summary.message,
                                             lambda: self.localizer(choice, on_notice, device="cpu"), on_notice)
                if on_model is not None:
                    on_model(self.model_in_use(localizer))
                continue
            break
        if self.cancel_token():
            remaining = waiting_evidence(self.case, choice.sha256, ids)
            if remaining:
                self.case.dequeue([e.id for e in remaining], analyst=self.analyst)
            summary.cancelled = True
            summary.remaining = 0
        return summary

    def _pin(self, choice: ModelChoice) -> None:
        pin = pinned_model(self.case)
        if pin is None or pin.name != choice.name or pin.sha256 != choice.sha256:
            pin_model(self.case, choice.name, choice.sha256, analyst=self.analyst)


def fall_back_to_cpu(localizer: Any, error: str, rebuild: Callable[[], Any], on_notice: Notice | None = None) -> Any:
    """The out-of-memory policy of every front end: move from the GPU to the CPU, once.

    Returns `rebuild()` (the CPU Localizer) after telling the user; a localizer already on the
    CPU has nowhere to go, so the error is raised as an AnalysisError."""
    if str(localizer.device) == "cpu":
        raise AnalysisError(error)
    _notify(on_notice, "warning", f"Out of memory on {localizer.device}; continuing on the CPU (slower).", error)
    return rebuild()


def _sha_note(pin: PinnedModel) -> str:
    return f" (SHA-256 {pin.sha256[:12]}…)" if pin.sha256 else ""


def _notify(on_notice: Notice | None, level: str, message: str, detail: str) -> None:
    if on_notice is not None:
        on_notice(level, message, detail)


__all__ = ["AnalysisError", "AnalysisSession", "ModelChoice", "ModelInUse", "ModelLoadError", "ModelPinError",
           "fall_back_to_cpu"]
