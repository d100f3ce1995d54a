"""A calibrated image score: what fraction of unedited images score lower.

The raw image score (`preprocess.image_score`, the mean of the top 1 % of the map) has no
meaning a user can read: an untrained or over-eager model gives 0.7 to most unedited photos. A
card may carry `score_calibration` (written by the starter's packaging step from its validation
split, photos never used for training):

    {"authentic_scores": [sorted raw scores of the authentic validation images], "split": "...", ...}

and then the score a user sees is the empirical distribution function of those scores at the raw
score, linearly interpolated: **a score of 0.9 means about 10 % of unedited validation images
score higher.** It is monotone, so it ranks images exactly as the raw score does (same AUC).
Cards without the field keep the raw score.

A card may also set `score_top_fraction` (default 0.01): the share of the map whose mean is the raw
score. The starter's packaging chooses it on the validation split (the fraction that best separates
edited from unedited validation images) and fits `score_calibration` with the same fraction, so the
two always travel together in one card.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# The card fields' readers live in common (the GUI and the reports read them too); re-exported here.
from declip_desktop.common.score_meaning import (  # noqa: F401
    DEFAULT_TOP_FRACTION, authentic_scores, card_value, score_top_fraction,
)


def calibrate(raw: float, reference: Sequence[float]) -> float:
    """The interpolated share of `reference` (sorted) scores below `raw`, in [0, 1]."""
    ref = np.asarray(reference, dtype=np.float64)
    n = ref.size
    # Ranks 0..n-1 at the reference points, averaged over ties; 0 below the lowest, 1 above the highest.
    positions = np.arange(n, dtype=np.float64) / max(n - 1, 1)
    unique, first = np.unique(ref, return_index=True)
    counts = np.diff(np.append(first, n))
    tie_mean = np.array([positions[f:f + c].mean() for f, c in zip(first, counts)])
    return float(np.clip(np.interp(raw, unique, tie_mean, left=0.0, right=1.0), 0.0, 1.0))


def calibrated_score(raw: float, card: Any) -> float:
    """The score to show for a raw image score under `card` (the raw score if it has no calibration)."""
    reference = authentic_scores(card)
    return raw if reference is None else calibrate(raw, reference)


def raw_for_share_above(reference: Sequence[float], share: float) -> float:
    """The raw score that `share` (0..1) of the reference scores exceed (for the card's text)."""
    return float(np.quantile(np.asarray(reference, dtype=np.float64), 1.0 - share))
