"""The model card of a ready network handed to `Localizer(net, card=...)`.

Results must name the weights that made them, so the card's `sha256` is replaced by the digest
of the network's own state dict (written as safetensors), not taken on the caller's word.
"""

from __future__ import annotations

from typing import Any


def card_for_network(net: Any, card: Any):
    """A copy of `card` whose `sha256` is the digest of `net`'s weights (what results record)."""
    import dataclasses

    from safetensors.torch import save

    from declip_desktop.common.hashing import sha256_bytes
    from declip_desktop.common.model_card import ModelCard

    if card is None:
        raise ValueError("a ready network needs its model card: Localizer(net, card=ModelCard(name=..., ...))")
    if isinstance(card, dict):
        card = ModelCard.from_dict(card)
    if not isinstance(card, ModelCard):
        raise TypeError(f"card must be a ModelCard or a dict, not {type(card).__name__}")
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    digest = sha256_bytes(save(state))
    extra = {**card.extra, "sha256_of": "state dict of a network passed to Localizer (safetensors bytes)"}
    return dataclasses.replace(card, sha256=digest, extra=extra)


__all__ = ["card_for_network"]
