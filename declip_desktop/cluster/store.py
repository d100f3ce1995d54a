"""The one place a cluster run writes a result into the case (the driver is the only writer).

Kept apart and small so it can be switched to the analysis session's store path (issue 16)
without touching the dispatch code.
"""

from __future__ import annotations

from typing import Any

from declip_desktop.cases import Case, Evidence
from declip_desktop.cases.audit import now_iso
from declip_desktop.common.probmaps import decode_png16


def store_one_result(case: Case, ev: Evidence, result: dict[str, Any], *, model_name: str, model_sha256: str,
                     parameters: dict[str, Any], started: str, analyst: str | None) -> bool:
    """Store one worker result; False when this evidence already has a result from this model.

    The single place a cluster run writes a result (idempotent per evidence and model SHA-256)."""
    if any(a.ok and a.model_sha256 == model_sha256 for a in case.analyses(ev.id)):
        return False
    prob_map = decode_png16(result["map_png"])
    if prob_map.shape != (ev.height, ev.width):
        raise ValueError(f"the worker returned a {prob_map.shape[1]}×{prob_map.shape[0]} map for a "
                         f"{ev.width}×{ev.height} image")
    case.store_result(ev.id, model_name=model_name, model_sha256=model_sha256, parameters=parameters,
                      score=float(result["score"]), prob_map=prob_map, device=str(result.get("device") or ""),
                      seconds=float(result.get("seconds") or 0.0), started=started, finished=now_iso(),
                      analyst=analyst)
    return True
