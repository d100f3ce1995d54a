"""What a model's image score means, read from its card (no torch, no Qt: the engine, the GUI and
the reports all ask here).

Two card fields decide it: `score_top_fraction` (the share of the map whose mean is the raw score;
default 1 %) and `score_calibration.authentic_scores` (the raw scores of unedited validation images;
with them the engine shows the share of those images that score lower, see
`engine.score_calibration`). `score_meaning` turns them into the sentence an analyst reads beside
a score, so a 0.93 is never shown without saying what 0.93 means.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from declip_desktop.common.model_card import ModelError

#: The raw score's default share of the map (`engine.preprocess.SCORE_TOP_FRACTION` is this value).
DEFAULT_TOP_FRACTION = 0.01


def card_value(card: Any, name: str) -> Any:
    """A card field from a ModelCard (its attribute or its `extra`) or a plain dict; None if absent."""
    if card is None:
        return None
    if isinstance(card, Mapping):
        return card.get(name)
    value = getattr(card, name, None)
    if value is None:
        value = (getattr(card, "extra", None) or {}).get(name)
    return value


def score_top_fraction(card: Any) -> float:
    """The card's `score_top_fraction`, or the default. A value that is not a number in (0, 1] is an
    error rather than a silent default: the card's calibration was fitted with its own fraction."""
    value = card_value(card, "score_top_fraction")
    if value is None:
        return DEFAULT_TOP_FRACTION
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) <= 1.0:
        raise ModelError(f"the model card's score_top_fraction must be a number in (0, 1], not {value!r}; "
                         "the card was edited by hand or is damaged: reinstall the model")
    return float(value)


def authentic_scores(card: Any) -> list[float] | None:
    """The card's sorted reference scores, or None when it has none or they are not ≥ 2 finite numbers
    in [0, 1] (a hand-edited card then keeps the raw score rather than inventing a meaning)."""
    cal = card_value(card, "score_calibration")
    if not isinstance(cal, Mapping):
        return None
    scores = cal.get("authentic_scores")
    if not isinstance(scores, Sequence) or isinstance(scores, (str, bytes)) or len(scores) < 2:
        return None
    try:
        values = sorted(float(s) for s in scores if not isinstance(s, bool))
    except (TypeError, ValueError):
        return None
    if len(values) != len(scores) or not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
        return None
    return values


def score_meaning(card: Any) -> str:
    """One sentence: what this model's image score means (calibrated or not, and its read-out)."""
    try:
        share = f"{score_top_fraction(card) * 100:g} %"
    except ModelError as exc:  # a damaged card: say so instead of a meaning
        return f"unknown: {exc}"
    reference = authentic_scores(card)
    if reference is None:
        return (f"uncalibrated: the mean of the top {share} of the map; a ranking aid, "
                "not the probability that the image was edited")
    return (f"calibrated on {len(reference)} unedited validation images: a score s means about (1 − s) of "
            f"them scored higher (0.90 ≈ 10 %); read-out: the mean of the top {share} of the map")
