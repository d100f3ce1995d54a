"""common.calibration on synthetic scores and maps: the calibrated thresholds keep the requested
false-alarm rate on HELD-OUT authentic images, their intervals hold it in most seeded trials, the
bootstrap is reproducible, and few references are said to be few."""

from __future__ import annotations

import numpy as np
import pytest

from declip_desktop.common import calibration as cal

TRIALS = 50


def _maps(rng, count, size=(24, 32)):
    """Authentic maps whose distribution varies from image to image (as photos do)."""
    out = []
    for _ in range(count):
        a, b = rng.uniform(1.0, 3.0), rng.uniform(10.0, 30.0)
        out.append(rng.beta(a, b, size=size))
    return out


def _held_out_pixel_rate(levels, threshold):
    return float(np.mean([np.mean(lv > np.floor(threshold * 65535)) for lv in levels]))


def test_image_threshold_keeps_the_rate_on_held_out_references():
    covered, rates = 0, []
    for trial in range(TRIALS):
        rng = np.random.default_rng(1000 + trial)
        refs, held = rng.beta(2, 8, size=40), rng.beta(2, 8, size=20_000)
        est = cal.image_threshold(refs, 0.05, seed=trial, resamples=400)
        assert est.attainable and est.low <= est.threshold <= est.high
        rates.append(np.mean(held > est.threshold))
        covered += np.mean(held > est.high) <= 0.05 <= np.mean(held > est.low)
    assert covered >= 0.8 * TRIALS  # the interval holds the true 95th percentile in most trials
    # conformal: 2 in 41 = 4.9 % expected (the rate's standard error over 50 trials is ~0.5 %)
    assert 0.03 <= np.mean(rates) <= 0.065


def test_pixel_threshold_keeps_the_rate_on_held_out_references():
    covered, rates = 0, []
    for trial in range(TRIALS):
        rng = np.random.default_rng(2000 + trial)
        survivals = np.stack([cal.pixel_survival(m) for m in _maps(rng, 20)])
        held = [cal.map_levels(m) for m in _maps(rng, 100)]
        est = cal.pixel_threshold(survivals, 0.01, seed=trial, resamples=200)
        assert est.low <= est.threshold <= est.high
        rates.append(_held_out_pixel_rate(held, est.threshold))
        covered += _held_out_pixel_rate(held, est.high) <= 0.01 <= _held_out_pixel_rate(held, est.low)
    assert covered >= 0.7 * TRIALS
    assert abs(np.mean(rates) - 0.01) < 0.003


def test_pixel_threshold_is_exact_on_the_references_and_between_levels():
    prob = np.zeros((10, 100), np.float32)
    prob[0, :5] = 0.9  # 0.5 % of the pixels
    prob[1, :5] = 0.6  # another 0.5 %
    S = cal.pixel_survival(prob)[None, :]
    est = cal.pixel_threshold(S, 0.006, resamples=100)
    assert 0.6 < est.threshold < 0.9 and est.reference_rate == pytest.approx(0.005)
    assert np.mean(prob > est.threshold) == pytest.approx(0.005)
    # a float map that rounds to the level itself is never selected by "p > threshold"
    level = int(round(0.7 * 65535))
    assert not np.float32(level / 65535.0) > cal.level_threshold(level)
    assert cal.pixel_rate_at(S, est.threshold) == pytest.approx(0.005)


def test_each_reference_weighs_the_same_whatever_its_size():
    big = np.zeros((1000, 1000), np.float32)  # a clean 1-megapixel reference …
    small = np.zeros((10, 10), np.float32)
    small[0, :] = 0.8  # … and a small one with 10 % bright pixels
    S = np.stack([cal.pixel_survival(big), cal.pixel_survival(small)])
    assert cal.pixel_threshold(S, 0.04, resamples=100).threshold >= 0.8  # 5 % averaged, not 0.001 % pooled
    assert cal.pixel_threshold(S, 0.06, resamples=100).threshold < 0.8


def test_the_bootstrap_is_reproducible_from_its_seed():
    rng = np.random.default_rng(5)
    scores = rng.uniform(size=30)
    S = np.stack([cal.pixel_survival(m) for m in _maps(rng, 12)])
    a = cal.image_threshold(scores, 0.1, seed=3, resamples=200)
    assert a == cal.image_threshold(scores, 0.1, seed=3, resamples=200)
    assert a != cal.image_threshold(scores, 0.1, seed=4, resamples=200)
    assert cal.pixel_threshold(S, 0.02, seed=3, resamples=200) == cal.pixel_threshold(S, 0.02, seed=3, resamples=200)


def test_too_few_references_are_said_to_be_few():
    scores = [0.1, 0.2, 0.3, 0.15, 0.25]
    est = cal.image_threshold(scores, 0.05, resamples=100)
    assert not est.attainable and est.threshold == 0.3  # the largest: 5 scores promise 1 in 6 at best
    warning = cal.few_references_warning(5, est)
    assert "only 5 references (at least 10 recommended)" in warning and "16.7 %" in warning
    assert cal.few_references_warning(40, cal.image_threshold(np.linspace(0, 1, 40), 0.05, resamples=100)) is None
    assert cal.image_threshold([0.4], 0.5, resamples=100).threshold == 0.4  # one reference: still an answer


def test_standing_reads_as_a_share_of_the_references():
    refs = [0.1 * i for i in range(14)]  # 0 … 1.3
    st = cal.standing(0.91, refs)
    assert (st.below, st.n) == (10, 14)
    assert st.text() == "score 0.91 — above 71.4 % of this case's authentic references (10 of 14, n = 14)"
    assert cal.standing(0.0, refs).below == 0  # equal is not above
    assert cal.standing(5.0, refs).percent == 100.0


@pytest.mark.parametrize("bad, match", [(0.0, "outside"), (1.0, "outside"), (5, "not 5"), (float("nan"), "outside"),
                                        ("x", "not a number")])
def test_bad_rates_are_refused_with_what_to_give(bad, match):
    with pytest.raises(cal.CalibrationInputError, match=match):
        cal.image_threshold([0.1, 0.2], bad)


def test_bad_inputs_are_refused():
    with pytest.raises(cal.CalibrationInputError, match="no reference scores"):
        cal.image_threshold([], 0.05)
    with pytest.raises(cal.CalibrationInputError, match="NaN"):
        cal.image_threshold([0.1, float("nan")], 0.05)
    with pytest.raises(cal.CalibrationInputError, match="NaN"):
        cal.pixel_survival(np.array([[0.1, np.inf]]))
    with pytest.raises(cal.CalibrationInputError, match="at least 100"):
        cal.image_threshold([0.1, 0.2], 0.05, resamples=10)
    with pytest.raises(cal.CalibrationInputError, match="one survival curve"):
        cal.pixel_threshold(np.zeros((2, 10)), 0.01)
