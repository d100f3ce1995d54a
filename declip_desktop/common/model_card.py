"""Model cards: what a model is and where it came from (JSON, no torch).

A `ModelCard` is stored as `<name>.json` beside the weights and, as its `card_snapshot`, with
every result. It lives here, below the engine and the model store, because both use it: the
Localizer reads a card's preprocessing and labels, the store reads and writes the files.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from declip_desktop.common.facts import card_is_demo, demo_label
from declip_desktop.common.version import SOFTWARE_VERSION

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ModelError(Exception):
    """A model that cannot be imported, found or loaded; the message says what and what to do."""


#: Training sets named in the authors' checkpoint file names.
TRAINING_SETS = {
    "pluralistic": "Dolos Pluralistic",
    "lama": "Dolos LaMa",
    "repaint-p2-9k": "Dolos RePaint-p2-9k",
    "ldm": "Dolos LDM",
    "cocosd": "COCO-SD",
}


@dataclass
class ModelCard:
    """What a model is and where it came from; stored as `<name>.json`."""

    name: str
    kind: str = "declip"  # "declip" | "starter"
    backbone: str = ""  # "ViT-L/14" | "RN50" | "ViT-L/14,RN50" | "starter-fcn"
    layer: str | None = None  # "layer20"; None for starter models
    decoder: str = ""  # "conv-20" | "conv-12" | "conv-4" | "linear" | …
    training_set: str | None = None  # key of TRAINING_SETS ("ldm") or free text
    source_file: str | None = None  # file name the model was imported from
    source_sha256: str | None = None
    sha256: str = ""  # of the .safetensors file
    created: str = ""  # ISO 8601 UTC
    software_version: str = SOFTWARE_VERSION
    demo: bool = False
    label: str = ""  # shown to users
    input_size: int = 224  # preprocessing: resize to input_size × input_size (bilinear) …
    mean: list[float] = field(default_factory=lambda: list(CLIP_MEAN))  # … then normalize
    std: list[float] = field(default_factory=lambda: list(CLIP_STD))
    notes: str = ""
    metrics: dict = field(default_factory=dict)
    #: Files the weights were assembled from besides `source_file` (fusion backbones):
    #: [{"role": "ViT-L/14", "file": "ViT-L-14.pt", "sha256": …}, …]
    backbone_sources: list = field(default_factory=list)
    #: Card fields this version does not know (written by a newer one); kept on rewrite.
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        extra = data.pop("extra")
        return {**extra, **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> ModelCard:
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        if not isinstance(data, dict) or "name" not in data:
            raise ValueError("a model card is a JSON object with at least a 'name'")
        kwargs = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**kwargs, extra=extra)

    @classmethod
    def from_json_file(cls, path: str | Path) -> ModelCard:
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise ModelError(f"cannot read model card {path}: {exc}") from None

    @property
    def display_name(self) -> str:
        return f"{self.name} ({self.label})" if self.label else self.name


#: The card fields every stored result keeps (issue 14 item 7), in this order.
SNAPSHOT_FIELDS = ("name", "sha256", "kind", "backbone", "layer", "decoder", "training_set", "demo", "label",
                   "input_size", "source_file", "source_sha256", "software_version")


def card_snapshot(card: ModelCard) -> dict:
    """What a result must say about the model that made it, frozen at analysis time.

    A plain JSON-able dict (stored with each result, read by reports made later or on a
    machine where the model is not installed). `demo` goes through `common.facts.card_is_demo`,
    the single demo test; `software_version` is the version that wrote the card.
    """
    snapshot = {name: getattr(card, name, None) for name in SNAPSHOT_FIELDS}
    snapshot["demo"] = card_is_demo(card)
    snapshot["label"] = demo_label(card) if snapshot["demo"] else (card.label or "")
    return snapshot
