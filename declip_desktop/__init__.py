"""DeCLIP Desktop: forensic localization of generative edits with DeCLIP.

Layers (see docs/ARCHITECTURE.md): common → engine / cases → analysis / reports → gui.

The names a script needs, importable from here (loaded on first use, so `import declip_desktop`
stays torch-free and fast):

    from declip_desktop import Localizer, Case
    loc = Localizer()                        # the default installed model
    pred = loc.predict_one("photo.jpg")      # Prediction: prob_map H×W float32 in [0, 1], score
    pred.mask(0.5), pred.regions(0.5)        # bool H×W mask, connected regions above 0.5

`Localizer` / `Prediction` / `ModelCard` / `ModelStore` come from the engine, `Case` from the
case store, `AnalysisSession` runs a case's queue, `build_report` makes its PDF report.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from declip_desktop.common.version import SOFTWARE_VERSION as __version__

if TYPE_CHECKING:  # pragma: no cover
    from declip_desktop.analysis import AnalysisSession
    from declip_desktop.cases import Case
    from declip_desktop.engine.localizer import Localizer, Prediction
    from declip_desktop.engine.models import ModelCard, ModelStore
    from declip_desktop.reports import build_report

_LAZY = {
    "Localizer": "declip_desktop.engine.localizer",
    "Prediction": "declip_desktop.engine.localizer",
    "ModelCard": "declip_desktop.engine.models",
    "ModelStore": "declip_desktop.engine.models",
    "Case": "declip_desktop.cases",
    "AnalysisSession": "declip_desktop.analysis",
    "build_report": "declip_desktop.reports",
}

__all__ = ["AnalysisSession", "Case", "Localizer", "ModelCard", "ModelStore", "Prediction", "__version__",
           "build_report"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
