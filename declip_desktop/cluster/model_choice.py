"""Which model a cluster run uses: the same rule as a local run (analysis.AnalysisSession).

A model named by the analyst wins; otherwise the model the case is pinned to, which must still
be the same file (SHA-256) it was analysed with; otherwise the default model. After the run
has started, the case is pinned to the model used (audit-logged when it changes). Kept apart so
it can be replaced by the session's own choice when the two layers meet.
"""

from __future__ import annotations

from typing import Any

from declip_desktop.cases.case_settings import pin_model, pinned_model
from declip_desktop.cluster.connect import ClusterError


def choose_model(case: Any, requested: Any = None) -> tuple[Any, str]:
    """(InstalledModel, why: "requested" | "case" | "default"); ClusterError when the pin is broken.

    Found with the torch-free `modelstore.store.find_model` (this driver never imports torch),
    so an authors' `.pth` that is not imported yet is refused with the command that imports it.
    """
    from declip_desktop.common.model_card import ModelError
    from declip_desktop.modelstore.store import find_model as resolve_model

    try:
        if requested is not None:
            return resolve_model(requested), "requested"
        pin = pinned_model(case)
        if pin is None:
            return resolve_model(None), "default"
        installed = resolve_model(pin.name)
    except ModelError as exc:
        raise ClusterError(f"{exc}") from None
    if pin.sha256 is not None and installed.card.sha256 != pin.sha256:
        raise ClusterError(f"this case is analysed with the model {pin.name} (SHA-256 {pin.sha256[:12]}…), but the "
                           f"model installed under that name is another file (SHA-256 {installed.card.sha256[:12]}…). "
                           "Nothing was analysed. Reinstall the model the case used, or choose the new one "
                           "explicitly (--model NAME) to pin the case to it")
    return installed, "case"


def pin_case(case: Any, card: Any, analyst: str | None) -> None:
    pin = pinned_model(case)
    if pin is None or pin.name != card.name or pin.sha256 != card.sha256:
        pin_model(case, card.name, card.sha256, analyst=analyst)
