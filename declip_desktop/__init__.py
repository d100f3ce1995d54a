"""DeCLIP Desktop: forensic localization of generative edits with DeCLIP.

Layers (see docs/ARCHITECTURE.md): common → engine (inference) → modelstore → training, and
common → cases; analysis / reports above them; gui on top.

The names a script needs, importable from here (loaded on first use, so `import declip_desktop`
stays torch-free and fast):

    from declip_desktop import load_localizer, Case
    loc = load_localizer()                   # a Localizer for the default installed model
    pred = loc.predict_one("photo.jpg")      # Prediction: prob_map H×W float32 in [0, 1], score
    pred.mask(0.5), pred.regions(0.5)        # bool H×W mask, connected regions above 0.5

`Localizer` (over a network you built, with its `ModelCard`) and `Prediction` come from the
engine, `load_localizer` (by model name or file) and `ModelStore` from the model store, `Case`
from the case store, `AnalysisSession` runs a case's queue, `build_report` makes its PDF report.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from declip_desktop.common.version import SOFTWARE_VERSION as __version__

if TYPE_CHECKING:  # pragma: no cover
    from declip_desktop.analysis import AnalysisSession
    from declip_desktop.cases import Case
    from declip_desktop.common.model_card import ModelCard
    from declip_desktop.engine.localizer import Localizer
    from declip_desktop.engine.prediction import Prediction
    from declip_desktop.modelstore.loading import load_localizer
    from declip_desktop.modelstore.store import ModelStore
    from declip_desktop.reports import build_report

_LAZY = {
    "Localizer": "declip_desktop.engine.localizer",
    "Prediction": "declip_desktop.engine.prediction",
    "ModelCard": "declip_desktop.common.model_card",
    "ModelStore": "declip_desktop.modelstore.store",
    "load_localizer": "declip_desktop.modelstore.loading",
    "Case": "declip_desktop.cases",
    "AnalysisSession": "declip_desktop.analysis",
    "build_report": "declip_desktop.reports",
}

__all__ = ["AnalysisSession", "Case", "Localizer", "ModelCard", "ModelStore", "Prediction", "__version__",
           "build_report", "load_localizer"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
