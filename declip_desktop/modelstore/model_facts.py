"""What a weights file *is*, read from its bytes and tensor shapes rather than from its card.

A model card is a JSON file anyone can edit. Two facts matter too much to take from it:
- whether the model is a demo (not for casework): known from the SHA-256 of the bundled
  demo networks, whatever the card says (a card may make a model *more* cautious — mark it a
  demo — never less);
- its architecture (DeCLIP backbone, feature layer, decoder, or the starter network), which
  the tensor names and shapes determine.

No torch here: `declip models verify`, the model list and the GUI use it cheaply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from declip_desktop.common.facts import BUNDLED_DEMO_SHA256  # noqa: F401 - re-exported; defined once, there

VIT, RN50, FUSION = "ViT-L/14", "RN50", "ViT-L/14,RN50"  # as engine.networks names them
STARTER_BACKBONE = "starter-fcn"
#: Top-level modules of the starter network (engine.starter) and nothing else.
_STARTER_MODULES = frozenset({"stem", "enc1", "enc2", "enc3", "enc4", "dec1", "dec2", "dec3", "head"})


@dataclass(frozen=True)
class Architecture:
    kind: str  # "declip" | "starter" | "unknown"
    backbone: str  # VIT | RN50 | FUSION | "starter-fcn" | ""
    layer: str | None  # "layer20", "layer3" …; None for the starter
    decoder: str | None  # "conv-20" | "conv-4" | "linear" …; None when the shapes cannot say (starter)

    def describe(self) -> str:
        if self.kind == "starter":
            return "the starter network"
        if self.kind != "declip":
            return "no known network"
        return f"DeCLIP {self.backbone} {self.layer} {self.decoder}"


def architecture_from_shapes(shapes: Mapping[str, tuple[int, ...]]) -> Architecture:
    """The architecture a DeclipNet / starter state dict's names and shapes describe."""
    tops = {k.split(".")[0] for k in shapes}
    if tops and tops <= _STARTER_MODULES:
        return Architecture("starter", STARTER_BACKBONE, None, None)
    if not tops or not tops <= {"backbone", "decoder"}:
        return Architecture("unknown", "", None, None)
    has_vit = any(k.startswith("backbone.vit.") for k in shapes)
    has_rn = any(k.startswith("backbone.rn50.") for k in shapes)
    backbone = FUSION if has_vit and has_rn else VIT if has_vit else RN50 if has_rn else ""
    layer = None
    if has_vit:
        blocks = [int(m.group(1)) for k in shapes if (m := re.match(r"backbone\.vit\.transformer\.resblocks\.(\d+)\.", k))]
        layer = f"layer{max(blocks)}" if blocks else None
    elif has_rn:
        stages = [int(m.group(1)) for k in shapes if (m := re.match(r"backbone\.rn50\.layer(\d)\.", k))]
        layer = f"layer{max(stages)}" if stages else None
    first = shapes.get("decoder.fc.0.weight")
    if first is None:
        decoder = None
    elif len(first) == 2:
        decoder = "linear"
    else:
        convs = sum(1 for k, v in shapes.items() if k.startswith("decoder.fc.") and k.endswith(".weight") and len(v) == 4)
        decoder = f"conv-{convs - 1}"
    return Architecture("declip" if backbone else "unknown", backbone, layer, decoder)


def card_contradictions(card, arch: Architecture) -> list[str]:
    """What the card claims about the architecture that the weights contradict (empty: none)."""
    problems = []
    if arch.kind == "unknown":
        return [f"its tensors form {arch.describe()} (neither a DeCLIP network nor the starter)"]
    if card.kind != arch.kind:
        problems.append(f"the card says kind {card.kind!r}, the weights are {arch.describe()}")
        return problems
    if arch.kind == "declip":
        for field in ("backbone", "layer", "decoder"):
            claimed, actual = getattr(card, field), getattr(arch, field)
            if claimed != actual:
                problems.append(f"the card says {field} {claimed!r}, the weights have {actual!r}")
    elif card.backbone != arch.backbone:
        problems.append(f"the card says backbone {card.backbone!r}, the weights are the starter network")
    return problems
