"""An installed model prepared for this machine: the one service `declip models import`,
`models download`, `models prepare` and the app's Models dialogs call after an install.

`prepare_installed(name)` loads the model's hash-checked network only for a mode whose
converted file must be made (`engine.backends.prepare`), so preparing an already prepared model
costs a check of its converted files. Failures to write (disk full) never undo the install:
the report says so and that the conversion then runs at the first analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from declip_desktop.common.progress import ShouldStop, StepProgress
from declip_desktop.engine.backends.prepare import MODES, ModeOutcome, cache_states, parse_modes, prepare_caches
from declip_desktop.modelstore.store import InstalledModel, ModelStore

__all__ = ["MODES", "PreparationReport", "parse_modes", "prepare_installed", "preparation_states"]


@dataclass
class PreparationReport:
    """Every mode's outcome for one model; `message` is what a person is told."""

    name: str
    outcomes: list[ModeOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    @property
    def cancelled(self) -> bool:
        return any(o.state == "cancelled" for o in self.outcomes)

    @property
    def message(self) -> str:
        lines = [f"{o.mode} mode: {o.state} — {o.message}" for o in self.outcomes]
        if not self.ok:
            lines.append(f"{self.name} is installed and usable; later, `declip models prepare {self.name}` "
                         "prepares what is missing.")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "modes": [o.to_dict() for o in self.outcomes]}


def _exact_network(installed: InstalledModel):
    """The network as the Localizer hands it to a CPU back end: hash-checked, eval, no
    gradients, `optimize_exact`-ed (the converted file is made from exactly this)."""
    from declip_desktop.engine import accelerate
    from declip_desktop.modelstore.loading import load_network

    net = load_network(installed, device="cpu")
    for p in net.parameters():
        p.requires_grad_(False)
    return accelerate.optimize_exact(net.eval())


def _installed(model: str | InstalledModel, store: ModelStore | None) -> InstalledModel:
    return model if isinstance(model, InstalledModel) else (store or ModelStore()).get(model)


def prepare_installed(model: str | InstalledModel, modes: Any = MODES, *, store: ModelStore | None = None,
                      backend: str | None = None, progress: StepProgress | None = None,
                      should_stop: ShouldStop | None = None) -> PreparationReport:
    """Prepare an installed model (by name or `InstalledModel`) for `modes` on this machine.
    Raises ModelError for an unknown name or weights that fail their hash check (loaded only
    when something must be converted); ValueError for unknown modes."""
    installed = _installed(model, store)
    outcomes = prepare_caches(installed, lambda: _exact_network(installed), parse_modes(modes),
                              backend=backend, progress=progress, should_stop=should_stop)
    return PreparationReport(installed.name, outcomes)


def preparation_states(model: str | InstalledModel, modes: Any = MODES, *, store: ModelStore | None = None,
                       backend: str | None = None) -> dict[str, dict]:
    """Per mode, whether it is prepared (`engine.backends.prepare.cache_states`), for listings."""
    return cache_states(_installed(model, store), parse_modes(modes), backend)
