"""The desktop application: the GUI wired to the engine (`declip-desktop`, `python main.py`).

The composition root sits above `gui` so the GUI's import graph never reaches torch: the
engine's Localizer factory, model resolver, checkpoint importer and warm-up are handed to the window as
`gui.services.EngineServices`.
"""

from __future__ import annotations

import functools
import logging
import os
import sys

from declip_desktop.gui.services import EngineServices
from declip_desktop.gui.worker import freeze_long_lived_objects

log = logging.getLogger("declip_desktop.gui")


def preload_engine() -> None:
    """Import torch and the engine ahead of the first analysis (call off the UI thread).

    Loading torch's shared libraries happens inside one C call that holds the GIL for a
    second or more; doing it once at startup, while the analyst is still on the start screen
    or opening a case, keeps that pause out of the analysis itself.

    open_clip (pure Python, seconds of import holding the GIL) is warmed only when the default
    model is a DeCLIP one, which needs it: with the bundled starter, that import ran beside the
    first analysis and doubled it (launch → first result 12.7 s against 6.1 s without it,
    docs/PERFORMANCE.md), because every operator of the forward waits for the GIL.
    """
    import declip_desktop.engine.localizer  # noqa: F401
    import declip_desktop.modelstore.loading  # noqa: F401  (torch, safetensors)
    from declip_desktop.engine import networks

    if default_model_needs_open_clip():
        try:
            networks.VitSpec.from_open_clip()  # reads a local config: imports open_clip and what it pulls in
        except Exception:  # only a warm-up: the analysis reports real problems itself
            log.exception("warming up open_clip failed")
    freeze_long_lived_objects()


def default_model_needs_open_clip() -> bool:
    """Whether the store's default model is a DeCLIP model (CLIP backbone, built with open_clip's
    configs). True when the default cannot be read: the analysis will then say what is wrong."""
    from declip_desktop.common.model_card import ModelError
    from declip_desktop.modelstore.store import ModelStore

    try:
        card = ModelStore().default().card
    except (ModelError, LookupError, OSError) as exc:
        log.info("default model not read for the warm-up (%s); warming open_clip", exc)
        return True
    return (getattr(card, "kind", None) or "declip") == "declip"


def engine_services() -> EngineServices:
    """The real engine. On the CPU torch gets one core less than the machine has: the UI
    thread keeps a core to itself, so the event loop is never starved by the analysis."""
    from declip_desktop.modelstore.checkpoint_import import import_checkpoint
    from declip_desktop.modelstore.loading import load_localizer, resolve_model
    from declip_desktop.modelstore.preparation import prepare_installed, preparation_states

    threads = max(1, (os.cpu_count() or 2) - 1)
    return EngineServices(localizer_factory=functools.partial(load_localizer, threads=threads),
                          model_resolver=resolve_model, preload=preload_engine,
                          checkpoint_importer=import_checkpoint, model_preparer=prepare_installed,
                          preparation_reader=preparation_states)


def main(argv: list[str] | None = None) -> int:
    from declip_desktop.gui.app import main as gui_main

    return gui_main(argv, services=engine_services())


if __name__ == "__main__":
    sys.exit(main())
