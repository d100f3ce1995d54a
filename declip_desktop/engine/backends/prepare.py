"""Preparing an installed model for this machine before its first analysis (issue 23 item 4).

Where a mode runs through OpenVINO (`backends.selection`), its first use converts the network
(ViT-L/14: about 45 s for exact mode's fp32 file, 75 s and 7 GB of memory for fast mode's bf16
one). `prepare_caches` does that work once, when a model is imported or downloaded (or later,
`declip models prepare`), by calling the back end's own `openvino_cpu.prepare` — the very cache
`open_network` checks and loads, so what is prepared is exactly what an analysis will run:

    ready       the converted model was there already and passed its check (digests, key)
    prepared    converted and written now
    not needed  this CPU runs the mode in PyTorch here (nothing to convert; the reason is given)
    unavailable the back end asked for cannot run the mode here (`selection.BackendUnavailable`)
    failed      the files could not be written (disk full, read-only): the model stays
                installed and the mode is converted at its first use instead
    cancelled   `should_stop()` said stop; nothing half-written is kept

Nothing here is evidence: a case never records a prepared cache (results record the back end
and recipe that ran). `cache_states` says, without converting or hashing gigabytes, whether
each mode is prepared (for `declip models list`).

Importing this module imports neither torch nor OpenVINO (the selection and the back end are
imported by the functions that need them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from declip_desktop.common.progress import ShouldStop, StepProgress

MODES = ("exact", "fast")
STATES = ("ready", "prepared", "not needed", "unavailable", "failed", "cancelled")


@dataclass(frozen=True)
class ModeOutcome:
    """What preparing one mode of one model did (`state` one of STATES)."""

    mode: str
    state: str
    message: str
    path: Path | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state in ("ready", "prepared", "not needed")

    def to_dict(self) -> dict:
        return {"mode": self.mode, "state": self.state, "message": self.message,
                "path": None if self.path is None else str(self.path), "seconds": round(self.seconds, 3)}


def parse_modes(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """"exact,fast" (or a list) → the modes in MODES order; ValueError naming a wrong one."""
    if text is None:
        return MODES
    items = [t.strip().lower() for t in (text.split(",") if isinstance(text, str) else text)]
    items = [t for t in items if t]
    wrong = [t for t in items if t not in MODES]
    if wrong or not items:
        raise ValueError(f"unknown mode(s) {', '.join(map(repr, wrong)) or '(none given)'}; "
                         f"use one or more of {','.join(MODES)} separated by commas")
    return tuple(m for m in MODES if m in items)


def plan(card: Any, mode: str, backend: str | None = None) -> tuple[str | None, str]:
    """(the OpenVINO precision this machine would compile for `mode`, or None when PyTorch runs
    it; a sentence saying so). Raises `selection.BackendUnavailable` as the Localizer would."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    kind = getattr(card, "kind", "declip") or "declip"
    if kind != "declip":
        return None, f"a {kind} network runs in PyTorch; there is nothing to convert"
    from declip_desktop.engine.backends import selection

    precision, message = selection.openvino_precision(backend, mode == "fast")
    if precision is None:
        return None, message or "this machine runs it in PyTorch (back end 'torch'); there is nothing to convert"
    from declip_desktop.engine.backends import openvino_cpu

    return precision, f"OpenVINO {openvino_cpu.short_version()} ({precision})"


def prepare_caches(source: Any, load_torch_net: Callable[[], Any], modes: Iterable[str] = MODES, *,
                   backend: str | None = None, progress: StepProgress | None = None,
                   should_stop: ShouldStop | None = None) -> list[ModeOutcome]:
    """Prepare each of `modes` for `source` (an installed model: `card`, `card_path`,
    `read_only`). `load_torch_net()` gives a fresh `optimize_exact`-ed torch network (called
    only for a mode whose converted model must be made). Idempotent: a good cache is only
    checked. `progress(done, total, text)` after each step and with the back end's messages."""
    from declip_desktop.engine.backends import openvino_cpu, selection

    modes = parse_modes(list(modes))
    report = progress or (lambda _d, _t, _m: None)
    stop = should_stop or (lambda: False)
    outcomes: list[ModeOutcome] = []
    for index, mode in enumerate(modes):
        if stop():
            outcomes.append(ModeOutcome(mode, "cancelled", "cancelled before it started"))
            continue
        try:
            precision, how = plan(source.card, mode, backend)
        except selection.BackendUnavailable as exc:
            outcomes.append(ModeOutcome(mode, "unavailable", str(exc)))
            continue
        if precision is None:
            outcomes.append(ModeOutcome(mode, "not needed", how))
            report(index + 1, len(modes), f"{mode} mode: nothing to prepare ({how})")
            continue
        report(index, len(modes), f"{mode} mode: checking the converted model for {how}…")
        said: list[str] = []
        loaded: list[bool] = []

        def on_status(message: str, _index=index) -> None:
            said.append(message)
            report(_index, len(modes), f"{mode} mode: {message}")

        def load():
            loaded.append(True)
            return load_torch_net()

        started = time.perf_counter()
        try:
            path = openvino_cpu.prepare(source, load_torch_net=load, precision=precision, on_status=on_status,
                                        should_stop=stop)
        except openvino_cpu.PrepareStopped:
            outcomes.append(ModeOutcome(mode, "cancelled", "cancelled; nothing was written (the conversion "
                                        "runs at its first use, or run `declip models prepare` again)",
                                        seconds=time.perf_counter() - started))
            continue
        seconds = time.perf_counter() - started
        if path is None:
            why = said[-1] if said else "the converted model could not be written"
            outcomes.append(ModeOutcome(mode, "failed", f"{why} The model stays installed; {mode} mode converts it "
                                        "at its first use instead.", seconds=seconds))
        elif loaded:
            outcomes.append(ModeOutcome(mode, "prepared", f"converted for {how} in {seconds:.1f} s", path, seconds))
        else:
            outcomes.append(ModeOutcome(mode, "ready", f"already prepared for {how} (checked)", path, seconds))
        report(index + 1, len(modes), f"{mode} mode: {outcomes[-1].message}")
    return outcomes


def cache_states(source: Any, modes: Iterable[str] = MODES, backend: str | None = None) -> dict[str, dict]:
    """{mode: {"runs_on": …, "prepared": True | False | None, "detail": …}} without converting
    anything or hashing the converted files (every load still checks them): None when there is
    nothing to prepare on this machine."""
    from declip_desktop.engine.backends import openvino_cpu, selection

    states: dict[str, dict] = {}
    for mode in parse_modes(list(modes)):
        try:
            precision, how = plan(source.card, mode, backend)
        except selection.BackendUnavailable as exc:
            states[mode] = {"runs_on": None, "prepared": None, "detail": str(exc)}
            continue
        if precision is None:
            states[mode] = {"runs_on": "torch", "prepared": None, "detail": how}
            continue
        card = source.card
        sha, size = card.sha256, int(getattr(card, "input_size", None) or 224)
        recipe = openvino_cpu.IR_RECIPES[precision]
        root = openvino_cpu.cache_root(source)
        if root is None:
            states[mode] = {"runs_on": how, "prepared": False, "detail": "no card file: converted at every start"}
            continue
        directory = openvino_cpu.cache_dir(root, sha, size, recipe)
        try:
            openvino_cpu.check_cached(directory, sha, size, recipe, hash_files=False)
        except openvino_cpu.CacheError as exc:
            detail = "not prepared: converted at its first use" if not directory.exists() else f"not usable: {exc}"
            states[mode] = {"runs_on": how, "prepared": False, "detail": detail}
            continue
        states[mode] = {"runs_on": how, "prepared": True, "detail": str(directory)}
    return states
