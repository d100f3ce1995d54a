"""What the GUI needs from the engine, handed in by the application (`declip_desktop.desktop`).

The GUI never imports the engine's torch side: the Localizer factory, the model resolver, the
checkpoint importer and the warm-up come in through this object, so "the GUI never imports torch" holds for the
import graph, not only at run time. Tests pass the same object, or stand-ins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _nothing_to_preload() -> None:
    return None


@dataclass(frozen=True)
class EngineServices:
    #: `localizer_factory(model, device=, fast=, batch_size=, on_status=)`: see analysis.session.
    localizer_factory: Callable[..., Any]
    #: `model_resolver(name_or_None)` → an installed model with `.card` (name, sha256).
    model_resolver: Callable[[Any], Any]
    #: Imports torch and the engine ahead of the first analysis (run off the UI thread).
    preload: Callable[[], None] = _nothing_to_preload
    #: `checkpoint_importer(path, name=, clip_weights=, store=, progress=, adopt_default=,
    #: expected_architecture=)` → ModelCard: the store's importer (imports torch; called only
    #: on worker threads), for Models → Import and Models → Download.
    checkpoint_importer: Callable[..., Any] | None = None
    #: `model_preparer(name, progress=, should_stop=)` → a report with `.ok`, `.cancelled` and
    #: `.message`: converts a just-installed model for this machine's back end
    #: (`modelstore.preparation.prepare_installed`; torch, worker threads only), so that no first
    #: analysis waits for it. None: nothing is prepared (the first analysis converts).
    model_preparer: Callable[..., Any] | None = None
    #: `preparation_reader(name)` → {mode: {"runs_on", "prepared": True | False | None, "detail"}}:
    #: whether each mode of an installed model is prepared on this machine, read without converting
    #: (`modelstore.preparation.preparation_states`; imports the back ends, so worker threads only).
    #: None: the Models dialog does not show it.
    preparation_reader: Callable[[str], dict] | None = None


__all__ = ["EngineServices"]
