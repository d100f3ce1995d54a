"""training.metrics: known answers, a brute-force reference, and torchmetrics conformance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from declip_desktop.training import metrics as M
from declip_desktop.training.metrics import MetricInputError, image_metrics, summarize

# ----------------------------------------------------------------------------- known answers


def square_mask(size=100, lo=30, hi=70):
    gt = np.zeros((size, size), bool)
    gt[lo:hi, lo:hi] = True
    return gt


def test_perfect_prediction_of_a_square():
    gt = square_mask()
    r = image_metrics(gt.astype(np.float32), gt)
    assert (r["iou"], r["f1_best"], r["f1_fixed"], r["ap"]) == (100.0, 1.0, 1.0, 1.0)
    assert r["undefined"] == []
    # eroded 40x40 square -> 26x26 scored manipulated; outside the 50x50 dilation -> real
    assert r["manipulated_px"] == 1600
    assert r["scored_px"] == 26 * 26 + (100 * 100 - 50 * 50)
    assert r["resized"] is False


def test_errors_inside_the_border_band_do_not_count_for_f1():
    gt = square_mask()
    pred = np.zeros(gt.shape, np.float32)
    pred[27:73, 27:73] = 0.9  # 3 px too wide on every side: within the 5-px dilation band
    r = image_metrics(pred, gt)
    assert r["f1_fixed"] == 1.0 and r["f1_best"] == 1.0
    assert r["iou"] == pytest.approx(100.0 * 1600 / 46**2, rel=1e-6)


def test_half_wrong_prediction_known_values():
    gt = square_mask()
    pred = np.zeros(gt.shape, np.float32)
    pred[30:70, 30:50] = 0.8  # left half of the square only
    r = image_metrics(pred, gt)
    assert r["iou"] == pytest.approx(50.0, rel=1e-6)
    # scored manipulated = rows/cols 37..62; predicted among them: cols 37..49 -> 13 of 26 columns
    tp, fn = 26 * 13, 26 * 13
    assert r["f1_fixed"] == pytest.approx(2 * tp / (2 * tp + fn), rel=1e-6)
    assert r["f1_best"] == r["f1_fixed"]


def test_all_real_ground_truth_with_empty_prediction():
    gt = np.zeros((40, 40), bool)
    r = image_metrics(np.zeros((40, 40), np.float32), gt)
    # the authors' conventions: epsilon IoU = 100, 1e-32/1e-32 F1 = 1, NaN best F1, AP 0
    assert r["iou"] == 100.0
    assert r["f1_fixed"] == 1.0
    assert math.isnan(r["f1_best"])
    assert r["ap"] == 0.0
    assert sorted(r["undefined"]) == ["ap", "f1_best", "f1_fixed", "iou"]


def test_all_real_ground_truth_with_false_alarm():
    gt = np.zeros((40, 40), bool)
    pred = np.zeros((40, 40), np.float32)
    pred[:10, :10] = 0.9
    r = image_metrics(pred, gt)
    assert 0 < r["iou"] < 1e-6 and r["f1_fixed"] < 1e-30  # epsilon / 100 px, not exactly 0
    assert r["f1_best"] < 1e-30
    assert sorted(r["undefined"]) == ["ap"]  # a false alarm is a real, measurable failure


def test_all_fake_ground_truth():
    gt = np.ones((40, 40), bool)
    pred = np.full((40, 40), 0.3, np.float32)
    pred[:, :20] = 0.7
    r = image_metrics(pred, gt)
    assert r["iou"] == pytest.approx(50.0, rel=1e-6)
    assert r["f1_fixed"] == pytest.approx(2 / 3, rel=1e-6)  # the image border does not erode
    assert r["f1_best"] == pytest.approx(2 / 3, rel=1e-6)
    assert r["ap"] == 1.0
    assert r["scored_px"] == 1600
    # a constant map: the authors' curve is empty -> NaN best F1 even though fixed F1 is 1
    r = image_metrics(np.full((40, 40), 0.8, np.float32), gt)
    assert r["f1_fixed"] == 1.0 and math.isnan(r["f1_best"]) and r["undefined"] == ["f1_best"]


def test_map_of_another_size_is_resized_to_the_mask():
    gt = np.zeros((64, 64), bool)
    gt[:, :32] = True
    small = np.zeros((32, 32), np.float32)
    small[:, :16] = 1.0
    r = image_metrics(small, gt)
    assert r["resized"] is True and (r["height"], r["width"]) == (64, 64)
    assert (r["iou"], r["f1_fixed"], r["ap"]) == (100.0, 1.0, 1.0)
    # downsampling (antialiased bilinear) scores the same as resizing first by hand
    big = np.random.default_rng(0).random((200, 160)).astype(np.float32)
    t = torch.nn.functional.interpolate(
        torch.from_numpy(big)[None, None], size=(64, 64), mode="bilinear", align_corners=False, antialias=True
    )[0, 0].numpy()
    a, b = image_metrics(big, gt), image_metrics(t, gt)
    for k in M.METRIC_NAMES:
        assert a[k] == b[k]


def test_bad_inputs_are_refused_with_the_reason():
    gt = square_mask(20, 5, 10)
    with pytest.raises(MetricInputError, match="outside"):
        image_metrics(np.full((20, 20), 3.0, np.float32), gt)
    bad = np.zeros((20, 20), np.float32)
    bad[0, 0] = np.nan
    with pytest.raises(MetricInputError, match="NaN"):
        image_metrics(bad, gt)
    with pytest.raises(MetricInputError, match="2-D"):
        image_metrics(np.zeros((2, 20, 20), np.float32), gt)


def test_summarize_excludes_undefined_and_keeps_the_authors_mean():
    gt = square_mask()
    rows = [
        image_metrics(gt.astype(np.float32), gt),
        image_metrics(np.zeros((40, 40), np.float32), np.zeros((40, 40), bool)),
        {"name": "x", "error": "mask missing"},
    ]
    s = summarize(rows)
    assert s["n"] == 2
    assert s["iou"] == 100.0 and s["ap"] == 1.0 and s["f1_best"] == 1.0
    assert s["undefined"] == {"iou": 1, "f1_best": 1, "f1_fixed": 1, "ap": 1}
    assert s["authors_mean"]["ap"] == 0.5 and s["authors_mean"]["iou"] == 100.0
    assert math.isnan(s["authors_mean"]["f1_best"])
    assert summarize([])["iou"] is None


# ----------------------------------------------------------------------------- brute force


def brute_force(pred: np.ndarray, gt: np.ndarray) -> dict:
    """Textbook definitions, pixel by pixel, in float64 (independent of the module)."""
    h, w = gt.shape
    manip, real = np.zeros_like(gt), np.zeros_like(gt)
    for y in range(h):
        for x in range(w):
            e = gt[max(0, y - 7) : y + 8, max(0, x - 7) : x + 8]
            d = gt[max(0, y - 5) : y + 6, max(0, x - 5) : x + 6]
            manip[y, x] = e.all()
            real[y, x] = not d.any()
    p = pred > 0.5
    union = (p | gt).sum()
    iou = 100.0 * (p & gt).sum() / union if union else None
    s, lab = pred[manip | real], manip[manip | real]

    def f1(flag):
        tp, fp, fn = (flag & lab).sum(), (flag & ~lab).sum(), (~flag & lab).sum()
        return 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else None

    fixed = f1(s > 0.5)
    levels = sorted(set(s.tolist()))[:-1]
    best = max([f1(s > v) for v in levels], default=None)
    return {"iou": iou, "f1_fixed": fixed, "f1_best": None if best is None else max(best, fixed or 0.0)}


def random_case(rng, h, w):
    gt = np.zeros((h, w), bool)
    for _ in range(rng.integers(1, 3)):
        y, x = rng.integers(0, h), rng.integers(0, w)
        gt[y : y + rng.integers(3, h), x : x + rng.integers(3, w)] = True
    pred = rng.random((h, w)).astype(np.float32)
    if rng.random() < 0.5:
        pred = (np.round(pred * 5) / 5).astype(np.float32)  # ties
    pred = np.clip(pred * 0.6 + 0.4 * gt, 0, 1).astype(np.float32)
    return pred, gt


def test_agrees_with_brute_force_reference():
    rng = np.random.default_rng(1)
    for _ in range(12):
        pred, gt = random_case(rng, int(rng.integers(18, 34)), int(rng.integers(18, 34)))
        r, ref = image_metrics(pred, gt), brute_force(pred, gt)
        for k in ("iou", "f1_fixed", "f1_best"):
            if ref[k] is None:
                assert k in r["undefined"]
            else:
                assert r[k] == pytest.approx(ref[k], rel=1e-6, abs=1e-12), k


# ----------------------------------------------------------------------------- conformance


def test_ap_equals_torchmetrics_and_sklearn():
    import torchmetrics
    from sklearn import metrics as sk
    rng = np.random.default_rng(2)
    ap_metric = torchmetrics.AveragePrecision(task="binary")
    for i in range(15):
        pred, gt = random_case(rng, 24, 31)
        if i == 0:
            pred[0, 0] = 1.0  # exact 1.0 values stay probabilities
        ref = ap_metric(torch.from_numpy(pred).flatten(), torch.from_numpy(gt).flatten().int()).item()
        ours = image_metrics(pred, gt)["ap"]
        assert ours == ref  # bit for bit
        assert ours == pytest.approx(sk.average_precision_score(gt.ravel(), pred.ravel()), rel=1e-5)
    # no positive pixel: torchmetrics answers 0 (with a warning); we answer 0 and flag it
    with pytest.warns(UserWarning):
        ref = ap_metric(torch.rand(50), torch.zeros(50, dtype=torch.int)).item()
    assert ref == 0.0 and M.average_precision(np.random.rand(50), np.zeros(50, bool)) == (0.0, False)


def test_fixed_f1_equals_torchmetrics_confusion_matrix():
    import torchmetrics
    rng = np.random.default_rng(3)
    for _ in range(8):
        pred, gt = random_case(rng, 30, 26)
        manip, real = M.scored_sets(gt)
        keep = torch.from_numpy((manip | real).ravel())
        cm = torchmetrics.ConfusionMatrix(task="binary")(
            torch.from_numpy(pred).flatten()[keep], torch.from_numpy(gt).flatten().int()[keep]
        )
        tn, fp, fn, tp = (int(v) for v in cm.flatten())
        eps = np.float32(1e-32)
        expect = (np.float32(2 * tp) + eps) / max(np.float32(2 * tp + fn + fp), eps)
        assert image_metrics(pred, gt)["f1_fixed"] == float(expect)
