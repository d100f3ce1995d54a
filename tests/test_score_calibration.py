"""Calibrated image score and native-resolution inference (issue 22 items 1-2)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from declip_desktop.engine import preprocess, starter
from declip_desktop.common.model_card import ModelCard
from declip_desktop.engine.score_calibration import calibrate, calibrated_score


def test_calibrated_score_is_the_share_of_authentic_scores_below():
    ref = sorted(np.random.default_rng(0).uniform(0.2, 0.8, 101))
    # 0.9 ≈ 10 % of the reference score higher: the raw score at the 90th percentile maps to 0.9.
    assert calibrate(float(np.quantile(ref, 0.9)), ref) == pytest.approx(0.9, abs=0.01)
    assert calibrate(0.0, ref) == 0.0 and calibrate(1.0, ref) == 1.0
    values = [calibrate(r, ref) for r in np.linspace(0, 1, 50)]
    assert values == sorted(values)  # monotone: the ranking (hence AUC) is the raw score's


def test_ties_and_a_card_without_or_with_a_broken_calibration():
    assert calibrate(0.5, [0.5, 0.5, 0.5, 0.9]) == pytest.approx(1 / 3)  # mean rank of the tie
    assert calibrated_score(0.7, {"name": "x"}) == 0.7
    # A hand-edited card with junk in it keeps the raw score rather than inventing a meaning.
    assert calibrated_score(0.7, {"score_calibration": {"authentic_scores": ["a", "b"]}}) == 0.7
    assert calibrated_score(0.7, {"score_calibration": "nonsense"}) == 0.7
    card = ModelCard(name="m", extra={"score_calibration": {"authentic_scores": [0.1, 0.3, 0.5]}})
    assert calibrated_score(0.3, card) == pytest.approx(0.5)


def test_native_size_keeps_aspect_and_never_enlarges():
    assert preprocess.native_size(640, 480, 1280) == (640, 480)
    assert preprocess.native_size(4000, 3000, 1280) == (1280, 960)
    assert preprocess.native_size(300, 5000, 1280) == (77, 1280)


def test_native_size_stretches_a_side_too_thin_for_the_network():
    m = preprocess.MIN_NATIVE_SIDE
    assert preprocess.native_size(1, 1, 1280) == (m, m)
    assert preprocess.native_size(1, 3000, 1280) == (m, 1280)
    assert preprocess.native_size(3000, 10, 1280) == (1280, m)
    assert preprocess.native_size(m, m, 1280) == (m, m)


def test_localizer_runs_a_max_side_card_at_native_size_with_mixed_sizes_in_a_batch():
    from declip_desktop.engine.localizer import Localizer

    torch.manual_seed(0)
    net = starter.build_starter({"widths": [4, 4, 4, 4, 4]})
    card = ModelCard(name="native", kind="starter", backbone="starter-fcn", mean=[0.5] * 3, std=[0.25] * 3,
                     input_size=512, extra={"max_side": 256})
    seen = []
    real_forward = net.forward

    def spy(x):
        seen.append(tuple(x.shape[-2:]))
        return real_forward(x)

    net.forward = spy
    loc = Localizer(net, card=card, device="cpu", batch_size=4)
    rng = np.random.default_rng(1)
    small, tall = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8), rng.integers(0, 256, (600, 300, 3), dtype=np.uint8)
    images = [small, tall, small]
    preds = loc.predict(images)
    assert [p.error for p in preds] == [None] * 3
    assert [p.prob_map.shape for p in preds] == [(120, 200), (600, 300), (120, 200)]
    # The two 120×200 images ran together at their own size; the 600×300 one shrunk to 256 long side.
    assert sorted(seen) == [(120, 200), (256, 128)]
    assert loc.parameters["max_side"] == 256
    assert preds[0].score == pytest.approx(preds[2].score)

    # With a calibration the score is the share of the reference below the raw score.
    raw = preds[0].score
    calibrated = dataclasses.replace(card, extra={"max_side": 256,
                                                  "score_calibration": {"authentic_scores": [raw - 0.01, raw + 0.01]}})
    loc2 = Localizer(starter.build_starter({"widths": [4, 4, 4, 4, 4]}), card=calibrated, device="cpu")
    loc2.net.load_state_dict(net.state_dict())
    assert loc2.predict_one(images[0]).score == pytest.approx(0.5, abs=1e-6)


def test_report_method_text_shows_the_demo_models_false_alarm_rate():
    """The label the card states (with its false-alarm rate) is what the report prints beside "demo"."""
    from declip_desktop.reports.model import ModelInfo
    from declip_desktop.reports.texts import method_html

    label = "demo model — not for casework · false alarms: 18 % of unedited test photos have > 1 % of their area flagged"
    html = method_html([ModelInfo(name="starter", sha256="a" * 64, demo=True, label=label)], 0.5)
    assert "false alarms: 18 %" in html and "not for casework" in html
    plain = method_html([ModelInfo(name="starter", sha256="a" * 64, demo=True)], 0.5)
    assert "not for casework" in plain  # a result without a label still says demo


def test_localizer_scores_with_the_cards_top_fraction_and_refuses_a_damaged_one():
    """The card's `score_top_fraction` (chosen with its calibration) is the share of the map the score
    averages; a hand-edited value is an error, never a silent default that would mis-read the calibration."""
    from declip_desktop.common.model_card import ModelError
    from declip_desktop.engine.localizer import Localizer

    torch.manual_seed(0)
    net = starter.build_starter({"widths": [4, 4, 4, 4, 4]})
    image = np.random.default_rng(2).integers(0, 256, (160, 160, 3), dtype=np.uint8)

    def localizer(extra):
        card = ModelCard(name="share", kind="starter", backbone="starter-fcn", mean=[0.5] * 3, std=[0.25] * 3,
                         input_size=160, extra=extra)
        return Localizer(net, card=card, device="cpu")

    default, wide = localizer({}), localizer({"score_top_fraction": 0.5})
    pred_default, pred_wide = default.predict_one(image), wide.predict_one(image)
    np.testing.assert_array_equal(pred_default.prob_map, pred_wide.prob_map)  # the map does not change
    # Half the map averages lower than its top 1 %; each equals image_score over the same map.
    assert pred_wide.score < pred_default.score
    small = torch.sigmoid(net(starter.normalize(torch.from_numpy(image).unsqueeze(0), [0.5] * 3, [0.25] * 3)))[0, 0]
    assert pred_wide.score == pytest.approx(preprocess.image_score(small, 0.5), abs=1e-6)
    assert pred_default.score == pytest.approx(preprocess.image_score(small), abs=1e-6)
    assert wide.parameters["score_top_fraction"] == 0.5 and "score_top_fraction" not in default.parameters
    for junk in (0, -0.1, 1.5, "0.1", True, float("nan")):
        with pytest.raises(ModelError, match="score_top_fraction"):
            localizer({"score_top_fraction": junk})


def test_score_meaning_states_calibration_and_refuses_junk_references():
    from declip_desktop.common.score_meaning import authentic_scores, score_meaning

    calibrated = {"score_top_fraction": 0.003, "score_calibration": {"authentic_scores": [0.1, 0.2, 0.4]}}
    text = score_meaning(calibrated)
    assert text.startswith("calibrated on 3 unedited validation images") and "top 0.3 %" in text
    assert score_meaning({}).startswith("uncalibrated: the mean of the top 1 %")
    assert score_meaning({"score_top_fraction": "lots"}).startswith("unknown: the model card's score_top_fraction")
    # References that are not finite numbers in [0, 1] are no calibration (the raw score stays).
    for junk in ([0.1, float("nan")], [0.1, 1.5], [0.2, True], "0.1 0.2", [0.3], [0.1, None]):
        assert authentic_scores({"score_calibration": {"authentic_scores": junk}}) is None, junk
        assert calibrated_score(0.42, {"score_calibration": {"authentic_scores": junk}}) == 0.42


def test_details_page_and_report_say_what_the_score_means():
    from types import SimpleNamespace

    from declip_desktop.gui.inspector_parts import details_html
    from declip_desktop.reports.model import ModelInfo
    from declip_desktop.reports.texts import method_html

    card = {"name": "starter", "score_calibration": {"authentic_scores": [0.1, 0.2, 0.4, 0.8]}}
    ev = SimpleNamespace(original_name="p.png", original_path="/p.png", size=1, format="PNG", width=8, height=8,
                         sha256="a" * 64, md5="b" * 32, imported_at="t", imported_by="alice", metadata={})

    def analysis(parameters):
        return SimpleNamespace(model_name="starter", model_sha256="c" * 64, device="cpu", seconds=0.1, finished="t",
                               software_version="0.1.0", parameters=parameters, ok=True, score=0.93, error=None)

    page = details_html(ev, analysis({"model_card": card}))
    assert "Score means" in page and "calibrated on 4 unedited validation images" in page
    assert "Score means" not in details_html(ev, analysis({}))  # an old result states no meaning it lacks
    html = method_html([ModelInfo(name="starter", sha256="c" * 64, score_meaning="calibrated <on> 4")], 0.5)
    assert "Image score: calibrated &lt;on&gt; 4" in html
