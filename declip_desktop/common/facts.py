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


def card_is_demo(card: Any) -> bool:
    """True when a model card (a `ModelCard`, or its snapshot dict) describes a demo model.

    The only place that decides it from a card. Today it reads the card's `demo` field and
    its kind (the bundled starter is always a demo). Issue 14 derives demo-ness from the
    weights themselves (known SHA-256 of bundled models) in `engine.models`; when that lands,
    this is the one function to route through it.
    """
    if card is None:
        return False
    if isinstance(card, Mapping):
        demo, kind = card.get("demo"), card.get("kind")
    else:
        demo, kind = getattr(card, "demo", False), getattr(card, "kind", None)
    return bool(demo) or kind == "starter"


def demo_label(card: Any) -> str:
    """The label a demo model's results carry ('' for a casework model)."""
    if not card_is_demo(card):
        return ""
    label = card.get("label") if isinstance(card, Mapping) else getattr(card, "label", "")
    return str(label or DEMO_LABEL)


__all__ = ["CASE_DB_NAME", "DEFAULT_THRESHOLD", "DEMO_LABEL", "card_is_demo", "demo_label"]
