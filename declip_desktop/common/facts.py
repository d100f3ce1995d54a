"""Facts every layer shares, defined once: the demo label, the default threshold, how a
model card says it is a demo, and the file names that make a folder a case.

Kept here (the lowest layer) so the engine, the case store, the reports and the GUI quote
the same value instead of each writing its own copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Shown next to every result of a model that must not be used for casework.
DEMO_LABEL = "demo model — not for casework"

#: The probability above which a pixel counts as manipulated when nobody chose another
#: value: the paper's evaluation threshold. A case may set its own default (cases.Case.
#: default_threshold) and each evidence item may override that.
DEFAULT_THRESHOLD = 0.5

#: The SQLite file that makes a folder a case folder (cases/case.py creates it).
CASE_DB_NAME = "case.sqlite"


#: SHA-256 of the demo networks shipped in the repository's models/ folder. Weights with one
#: of these hashes are a demo model whatever their card says. Kept here, not read from the
#: bundled card (which is as editable as any card); a test checks every bundled demo model's
#: hash is listed, so retraining the starter cannot forget to update it.
BUNDLED_DEMO_SHA256 = frozenset({
    "969d164f28d5a74ba9f3ff7235278e7b99e59959b35e04d5f78a978c0a24388a",  # models/starter.safetensors (phase 6)
    "af28448fd0d7b469694cb20885f7a28c233e4195afcdd31aaf6835f6a6ffd238",  # phase 5, bundled until session 9
})


def card_is_demo(card: Any) -> bool:
    """True when a model card (a `ModelCard`, or its snapshot dict) describes a demo model.

    The only place that decides it. Derived from the weights where the card cannot be
    trusted: weights whose SHA-256 is a bundled demo network are a demo whatever the card's
    `demo` says; so is any starter network (kind or backbone). Otherwise the card's own
    `demo: true` makes it a demo: a card can make a model more cautious, never less.
    (`declip models verify` also checks the architecture the weights form against the card.)
    """
    if card is None:
        return False
    get = card.get if isinstance(card, Mapping) else (lambda name: getattr(card, name, None))
    return bool(get("sha256") in BUNDLED_DEMO_SHA256 or get("demo") is True or get("kind") == "starter"
                or get("backbone") == "starter-fcn")


def demo_label(card: Any) -> str:
    """The label a demo model's results carry ('' for a casework model); it always says demo."""
    if not card_is_demo(card):
        return ""
    label = str((card.get("label") if isinstance(card, Mapping) else getattr(card, "label", "")) or "")
    if DEMO_LABEL in label:
        return label
    return f"{label} ({DEMO_LABEL})" if label else DEMO_LABEL


__all__ = ["BUNDLED_DEMO_SHA256", "CASE_DB_NAME", "DEFAULT_THRESHOLD", "DEMO_LABEL", "card_is_demo", "demo_label"]
