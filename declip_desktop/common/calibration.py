"""Calibration statistics: thresholds with a known false-alarm rate, from known-authentic references.

Pure numpy; the case layer (`cases.calibration`) feeds it the stored scores and maps of the
references and stores what it returns. Two rates, because analysts ask two questions:

- **Image rate** ("how often would an authentic image like these score this high?"): the
  threshold on the image score is the conformal quantile of the n reference scores, the
  k-th smallest with k = ⌈(1 − rate)(n + 1)⌉. For a new image exchangeable with the
  references, the chance that its score is strictly above that threshold is at most `rate`
  (distribution-free). With fewer than 1/rate − 1 references no reference score can promise
  that; the threshold is then the largest reference score and `attainable` is False (the
  rate it can promise is 1/(n + 1)).
- **Pixel rate** ("which share of an authentic image's pixels would light up?"): the
  threshold t on the probability map such that the references' share of pixels strictly
  above t, averaged over the references (each image weighs the same, whatever its size), is
  at most `rate`. Maps are compared at the 16-bit levels the case stores them in (value ×
  65535), so the computation is exact for stored maps; t is put half-way between two levels
  so "p > t" selects the same pixels however the map's floats were rounded.

The confidence interval of each threshold is a percentile bootstrap over the references
(images, not pixels: the pixels of one photo are not independent), seeded so that the same
references, seed and resample count always give the same interval.

All of it holds only for images like the references (same camera, platform, processing).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

LEVELS = 65536  # 16-bit maps: the resolution the case stores probabilities at
DEFAULT_SEED = 19
DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_IMAGE_RATE = 0.05
DEFAULT_PIXEL_RATE = 0.01
#: Below this many references the figures are shown with a warning (issue 19: "say fewer than 10").
MIN_REFERENCES = 10
_BOOTSTRAP_BLOCK = 64  # resamples per matrix product: ~32 MB of float64 at 65536 levels


class CalibrationInputError(ValueError):
    """The scores, maps or parameters given cannot be calibrated (the message says why)."""


@dataclass(frozen=True)
class ThresholdEstimate:
    """A threshold for a requested false-alarm rate and its bootstrap interval.

    `reference_rate`: the share of the references (images, or pixels averaged per image) strictly
    above `threshold`; `attainable`: False when the references are too few to promise `rate`."""

    rate: float
    threshold: float
    low: float
    high: float
    reference_rate: float
    attainable: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Standing:
    """Where a score stands among the reference scores: strictly above `below` of `n`."""

    score: float
    below: int
    n: int

    @property
    def percent(self) -> float:
        return 100.0 * self.below / self.n if self.n else 0.0

    def text(self) -> str:
        return (f"score {self.score:.2f} — above {format_percent(self.percent)} of this case's authentic references "
                f"({self.below} of {self.n}, n = {self.n})")


def format_percent(value: float) -> str:
    """99.2 %, 100 %, 0 % — one decimal unless it is a whole number."""
    return f"{value:.0f} %" if abs(value - round(value)) < 1e-9 else f"{value:.1f} %"


def _check_rate(rate: float, what: str) -> float:
    try:
        value = float(rate)
    except (TypeError, ValueError):
        raise CalibrationInputError(f"the {what} false-alarm rate {rate!r} is not a number. "
                                    "Give a share between 0 and 1, e.g. 0.05 for 5 %.") from None
    if not 0.0 < value < 1.0:  # also refuses NaN
        raise CalibrationInputError(f"the {what} false-alarm rate {rate!r} is outside 0…1 (exclusive). "
                                    "Give a share, e.g. 0.05 for 5 % (not 5).")
    return value


def _check_bootstrap(resamples: int, confidence: float) -> None:
    if int(resamples) < 100:
        raise CalibrationInputError(f"{resamples} bootstrap resamples are too few for an interval; use at least 100.")
    if not 0.5 <= float(confidence) < 1.0:
        raise CalibrationInputError(f"confidence {confidence!r} must be in 0.5…1, e.g. 0.95.")


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


# ------------------------------------------------------------------------------ image scores
def _conformal_rank(n: int, rate: float) -> int:
    """1-based rank of the order statistic that keeps P(new score > it) ≤ rate; may exceed n."""
    return math.ceil((1.0 - rate) * (n + 1) - 1e-9)


def image_threshold(scores: Any, rate: float = DEFAULT_IMAGE_RATE, *, seed: int = DEFAULT_SEED,
                    resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE) -> ThresholdEstimate:
    """Threshold on image scores (n values in 0…1, one per reference) for false-alarm `rate`."""
    rate = _check_rate(rate, "image")
    _check_bootstrap(resamples, confidence)
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0:
        raise CalibrationInputError("no reference scores: analyse the references first.")
    if not np.all(np.isfinite(s)):
        raise CalibrationInputError("a reference score is NaN or infinite; re-analyse that reference.")
    n = s.size
    rank = _conformal_rank(n, rate)
    attainable = rank <= n
    index = min(rank, n) - 1
    threshold = float(np.sort(s)[index])
    rng = np.random.default_rng(int(seed))
    boot = np.sort(s[rng.integers(0, n, size=(int(resamples), n))], axis=1)[:, index]
    low, high = _interval(boot, confidence)
    return ThresholdEstimate(rate, threshold, low, high, float(np.mean(s > threshold)), attainable)


def standing(score: float, reference_scores: Any) -> Standing:
    """How many reference scores `score` is strictly above."""
    refs = np.asarray(reference_scores, dtype=np.float64).ravel()
    return Standing(float(score), int(np.count_nonzero(refs < float(score))), int(refs.size))


# ------------------------------------------------------------------------------ pixel maps
def map_levels(prob_map: Any) -> np.ndarray:
    """A probability map (values in 0…1) as its 16-bit levels, the way the case stores it."""
    p = np.asarray(prob_map)
    if p.dtype == np.uint16:
        return p
    if p.size == 0:
        raise CalibrationInputError("an empty probability map cannot be calibrated on.")
    p = p.astype(np.float64)
    if not np.all(np.isfinite(p)):
        raise CalibrationInputError("a reference map holds NaN or infinite values; re-analyse that reference.")
    return (np.clip(p, 0.0, 1.0) * (LEVELS - 1) + 0.5).astype(np.uint16)


def pixel_survival(prob_map: Any) -> np.ndarray:
    """S[k] = share of the map's pixels strictly above level k (k = 0…65535), float64."""
    levels = map_levels(prob_map)
    counts = np.bincount(levels.ravel(), minlength=LEVELS).astype(np.float64)
    return 1.0 - np.cumsum(counts) / float(levels.size)


def level_threshold(level: int) -> float:
    """The threshold that selects exactly the levels above `level` (half-way to the next one)."""
    return min(1.0, (int(level) + 0.5) / (LEVELS - 1))


def _first_level_at_most(curves: np.ndarray, rate: float) -> np.ndarray:
    """Per row of non-increasing curves: the first level where the curve is ≤ rate (the last is 0)."""
    return np.argmax(curves <= rate, axis=-1)


def pixel_threshold(survivals: Any, rate: float = DEFAULT_PIXEL_RATE, *, seed: int = DEFAULT_SEED,
                    resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE) -> ThresholdEstimate:
    """Threshold on pixel probabilities from the references' `pixel_survival` curves (n × 65536)."""
    rate = _check_rate(rate, "pixel")
    _check_bootstrap(resamples, confidence)
    S = np.asarray(survivals, dtype=np.float64)
    if S.ndim != 2 or S.shape[1] != LEVELS or S.shape[0] == 0:
        raise CalibrationInputError(f"expected one survival curve of {LEVELS} levels per reference, got {S.shape}.")
    n = S.shape[0]
    mean = S.mean(axis=0)
    level = int(_first_level_at_most(mean, rate))
    # A weighted mean of the curves lies between their minimum and maximum, so every resample's
    # level lies in [first level where the minimum is ≤ rate, first where the maximum is]: only
    # those columns take part in the matrix products.
    lo_col = int(_first_level_at_most(S.min(axis=0), rate))
    hi_col = int(_first_level_at_most(S.max(axis=0), rate))
    window = np.ascontiguousarray(S[:, lo_col:hi_col + 1])
    rng = np.random.default_rng(int(seed))
    picks = rng.integers(0, n, size=(int(resamples), n))
    boot_levels = np.empty(int(resamples), dtype=np.int64)
    for start in range(0, int(resamples), _BOOTSTRAP_BLOCK):
        block = picks[start:start + _BOOTSTRAP_BLOCK]
        weights = np.stack([np.bincount(row, minlength=n) for row in block]).astype(np.float64) / n
        curves = weights @ window
        boot_levels[start:start + len(block)] = lo_col + _first_level_at_most(curves, rate)
    low_level, high_level = _interval(boot_levels.astype(np.float64), confidence)
    return ThresholdEstimate(rate, level_threshold(level), level_threshold(math.floor(low_level)),
                             level_threshold(math.ceil(high_level)), float(mean[level]), True)


def pixel_rate_at(survivals: Any, threshold: float) -> float:
    """The per-image-averaged share of pixels strictly above `threshold` (for checking on other images)."""
    S = np.asarray(survivals, dtype=np.float64)
    level = int(math.floor(float(threshold) * (LEVELS - 1) + 1e-9))
    level = min(max(level, 0), LEVELS - 1)
    # p > t for 16-bit levels means level / 65535 > t, i.e. level > floor(t × 65535) (t between levels).
    return float(S[:, level].mean()) if S.ndim == 2 else float(S[level])


def pixel_quantiles(survivals: Any, shares: tuple[float, ...] = (0.5, 0.9, 0.99, 0.999)) -> dict[str, float]:
    """Where the references' pixel distribution (each image weighing the same) reaches each share."""
    mean = np.asarray(survivals, dtype=np.float64).mean(axis=0)
    return {f"{share:g}": float(int(_first_level_at_most(mean, 1.0 - share)) / (LEVELS - 1)) for share in shares}


def score_summary(scores: Any) -> dict[str, float]:
    s = np.asarray(scores, dtype=np.float64)
    return {"min": float(s.min()), "median": float(np.median(s)), "max": float(s.max()), "mean": float(s.mean())}


def few_references_warning(n: int, image: ThresholdEstimate | None = None) -> str | None:
    """The warning a calibration on `n` references carries, or None."""
    parts = []
    if n < MIN_REFERENCES:
        parts.append(f"only {n} reference{'s' if n != 1 else ''} (at least {MIN_REFERENCES} recommended): "
                     "the thresholds and their intervals are rough")
    if image is not None and not image.attainable:
        parts.append(f"{n} reference{'s' if n != 1 else ''} cannot promise an image false-alarm rate of {format_percent(100 * image.rate)}"
                     f"; the highest reference score is used, which promises only "
                     f"{format_percent(100.0 / (n + 1))} (1 in {n + 1})")
    return "; ".join(parts) + "." if parts else None


__all__ = [
    "DEFAULT_CONFIDENCE", "DEFAULT_IMAGE_RATE", "DEFAULT_PIXEL_RATE", "DEFAULT_RESAMPLES", "DEFAULT_SEED", "LEVELS",
    "MIN_REFERENCES", "CalibrationInputError", "Standing", "ThresholdEstimate", "few_references_warning",
    "format_percent", "image_threshold", "level_threshold", "map_levels", "pixel_quantiles", "pixel_rate_at",
    "pixel_survival", "pixel_threshold", "score_summary", "standing",
]
