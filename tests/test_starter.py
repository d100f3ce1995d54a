"""The bundled starter model: architecture, model store, `analyze` without --model, IoU floor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from declip_desktop.common.paths import BUNDLED_MODELS_DIR
from declip_desktop.engine import starter
from declip_desktop.training import synth

REPO = Path(__file__).resolve().parents[1]
CARD_PATH = BUNDLED_MODELS_DIR / "starter.json"
WEIGHTS_PATH = BUNDLED_MODELS_DIR / "starter.safetensors"
#: Floors the bundled model must keep on the fixed sets below (CI-sized regression guards, not the
#: card's measurement: some of these scikit-image photos are training photos). Measured 2026-12-02 on
#: the shipped phase-6 weights (1 view, native size): old generator's set 47.04 (per image 63.1 51.1
#: 95.5 13.4 1.9 2.2 95.7 53.4; calling every pixel manipulated scores 18.9); new families 13.9 (38.2
#: 0 0 0 0 44.9 14.2 in the families' order: copy-move, retouch, smoothing and local adjust are
#: missed on these four images); the 6 authentic images have 2.06 0.52 0.01 0.19 0.0 0.15 % flagged (mean 0.49 %).
#: Phase 5 gave 38.96 / 19.75 / 43.1 % on the same sets. The floors leave a margin for CPU/BLAS
#: differences; the ceiling is far below phase 5's 43 %, so a return of the false alarms fails.
IOU_FLOOR = 42.0  # old generator's set (8 types)
GENERAL_IOU_FLOOR = 11.0  # one image per family of the new generator, test parameters
#: The mean flagged area (percent) of the 6 fixed authentic images may not grow beyond this.
AUTHENTIC_MEAN_FLAGGED_CEILING = 3.0


@pytest.fixture(scope="module")
def card():
    return json.loads(CARD_PATH.read_text(encoding="utf-8"))


def test_network_shapes_and_fixed_highpass():
    torch.manual_seed(0)
    net = starter.build_starter({"mean": [0.5] * 3, "std": [0.25] * 3}).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 100, 130))  # sides need not be multiples of 16
    assert out.shape == (2, 1, 50, 65)
    # The high-pass bank is a constant of the architecture, not a learned or stored weight.
    assert not any(k.startswith("highpass") for k in net.state_dict())
    flat = torch.zeros(1, 3, 32, 32)  # a flat grey image: no residual, nothing stands out
    assert torch.allclose(net.highpass(flat), torch.zeros(1, 15, 32, 32), atol=1e-5)
    ramp = torch.zeros(1, 3, 32, 32)
    ramp[..., 8:24, 8:24] = torch.randn(1, 3, 16, 16)  # a noisy patch stands out in the energy maps
    energy = net.highpass(ramp)[0, 9:]
    assert energy[:, 12:20, 12:20].mean() > energy[:, :4, :4].mean() + 0.5
    with pytest.raises(ValueError, match="positive"):
        starter.build_starter({"mean": [0.5] * 3, "std": [0, 1, 1]})


def test_flip_averaging_makes_the_map_independent_of_the_image_orientation():
    torch.manual_seed(0)
    net = starter.build_starter({"test_time_flips": 4}).eval()
    single = starter.build_starter({"test_time_flips": 1}).eval()
    single.load_state_dict(net.state_dict())
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        averaged = net(x)
        # A mirrored or upside-down photo gives the mirrored map, which one view alone does not.
        assert torch.allclose(net(x.flip(-1)).flip(-1), averaged, atol=1e-5)
        assert torch.allclose(net(x.flip(-2)).flip(-2), averaged, atol=1e-5)
        assert not torch.allclose(single(x.flip(-1)).flip(-1), single(x), atol=1e-3)
        expected = sum(single(x.flip(d)).flip(d) if d else single(x) for d in ((), (-1,), (-2,), (-2, -1))) / 4
        assert torch.allclose(averaged, expected, atol=1e-5)
    net.train()  # training always runs one view (random flips are the augmentation)
    with torch.no_grad():
        assert torch.allclose(net(x), single.train()(x), atol=1e-5)
    with pytest.raises(ValueError, match="test_time_flips"):
        starter.build_starter({"test_time_flips": 3})


def test_bundled_card_is_a_labelled_demo_within_budget(card):
    assert card["kind"] == "starter" and card["backbone"] == "starter-fcn"
    assert card["demo"] is True and card["label"].startswith("demo model — not for casework")
    assert "false alarms" in card["label"]  # shown beside every demo result (CLI, GUI, report)
    assert WEIGHTS_PATH.stat().st_size <= 25 * 1024 * 1024
    from declip_desktop.training.synth_families import FAMILIES

    # Issue 22's figures on the generalization test split are in the card (and its label above).
    gen = card["metrics"]["test"]
    assert set(gen["per_family"]) == set(FAMILIES) and gen["n_authentic"] > 0
    assert f"{gen['authentic_over_1pct_share']:.0f} %" in card["label"]
    # The image score means something stated: calibrated on authentic validation images, with the share
    # of the map chosen there; the test figures were measured with that same share.
    assert card["score_top_fraction"] == gen["score_top_fraction"]
    assert len(card["score_calibration"]["authentic_scores"]) == card["metrics"]["valid"]["n_authentic"] >= 30
    assert card["metrics"]["earlier_model_on_same_test"]["n_edited"] == gen["n_edited"]
    assert card["metrics"]["training_photos"] and all(
        p.get("licence") for p in card["metrics"]["training_photos"].values()
    )


def test_model_store_sees_bundled_starter_and_loads_it(card):
    from declip_desktop.modelstore.loading import load_network
    from declip_desktop.modelstore.store import ModelStore

    store = ModelStore()  # DECLIP_HOME is an empty per-test folder (conftest)
    installed = store.default()
    assert installed.card.kind == "starter" and installed.card.demo
    net = load_network(installed, device="cpu")
    # The app runs the model as its card's test figures were measured (flip averaging included).
    assert net.test_time_flips == card.get("test_time_flips", 1)
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 1, 32, 32)


@pytest.fixture(scope="module")
def fixed_set(tmp_path_factory):
    """One image per manipulation type from scikit-image photos, fixed seed (never changes)."""
    from skimage import data as skimage_data
    photos = [synth.Photo(n, getattr(skimage_data, n)()) for n in ("astronaut", "coffee", "chelsea", "rocket")]
    samples = []
    for i, kind in enumerate(synth.MANIPULATIONS):
        rng = np.random.default_rng([2026, i])
        samples.append(synth.synthesize(photos[i % len(photos)], rng, kind, photos, size=384))
    return samples


def _native_prob(net, card, image, out_hw):
    """The probability map as the Localizer makes it for this card: native size up to `max_side`, or
    the `input_size` square."""
    from PIL import Image as PILImage

    from declip_desktop.engine.preprocess import native_size
    from declip_desktop.training.starter_eval import predict

    h, w = image.shape[:2]
    size = native_size(w, h, card["max_side"]) if card.get("max_side") else (card["input_size"],) * 2
    small = image if size == (w, h) else np.asarray(PILImage.fromarray(image).resize(size, PILImage.BILINEAR))
    return predict(net, small, out_hw, card["mean"], card["std"])[0]


def test_iou_on_fixed_synthetic_set_stays_above_floor(card, fixed_set):
    from declip_desktop.training.metrics import image_metrics

    torch.set_num_threads(2)
    net = starter.load_starter(WEIGHTS_PATH, card)
    ious = [image_metrics(_native_prob(net, card, s.image, s.mask.shape), s.mask)["iou"] for s in fixed_set]
    assert float(np.mean(ious)) >= IOU_FLOOR, [round(v, 1) for v in ious]
    # And it must beat the trivial answer "everything is manipulated" on the same images.
    all_manipulated = float(np.mean([s.mask.mean() * 100 for s in fixed_set]))
    assert float(np.mean(ious)) > all_manipulated + 2.0


@pytest.fixture(scope="module")
def general_set():
    """One image per family (test parameters, JPEG/resize post-processing included) and 6 authentic
    images, from scikit-image photos with a fixed seed (never changes)."""
    from skimage import data as skimage_data

    from declip_desktop.training import synth_general
    from declip_desktop.training.synth import Photo
    from declip_desktop.training.synth_families import FAMILIES

    photos = [Photo(n, getattr(skimage_data, n)()) for n in ("astronaut", "coffee", "chelsea", "rocket")]
    kinds = list(FAMILIES) + [synth_general.AUTHENTIC] * 6
    out = []
    for i, kind in enumerate(kinds):
        rng = np.random.default_rng([2027, i])
        post = synth_general.POST_KINDS[i % len(synth_general.POST_KINDS)]
        out.append(synth_general.make_sample(photos[i % len(photos)], photos, rng, "test", kind, post))
    return out


def test_new_families_iou_and_authentic_false_alarms_stay_within_floors(card, general_set):
    torch.set_num_threads(2)
    net = starter.load_starter(WEIGHTS_PATH, card)
    ious, areas = [], []
    for s in general_set:
        prob = _native_prob(net, card, s["image"], s["mask"].shape)
        if s["record"]["authentic"]:
            areas.append(float((prob > 0.5).mean()))
        else:
            p, g = prob > 0.5, s["mask"]
            ious.append(float((p & g).sum()) / max(1.0, float((p | g).sum())) * 100)
    assert float(np.mean(ious)) >= GENERAL_IOU_FLOOR, [round(v, 1) for v in ious]
    assert float(np.mean(areas)) * 100 <= AUTHENTIC_MEAN_FLAGGED_CEILING, [round(a * 100, 2) for a in areas]


def test_analyze_without_model_uses_starter_and_says_demo(tmp_path, fixed_set):
    image = tmp_path / "edited.png"
    Image.fromarray(fixed_set[0].image).save(image)
    env = {**os.environ, "DECLIP_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "2"}
    # No --model and an empty DECLIP_HOME: the bundled starter is the only model there is.
    proc = subprocess.run([sys.executable, "-m", "declip_desktop", "analyze", str(image)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1
    out = lines[0]
    assert out["model"] == "starter" and out["demo"] is True
    assert out["label"].startswith("demo model — not for casework") and "false alarms" in out["label"]
    assert out["model_sha256"] == json.loads(CARD_PATH.read_text(encoding="utf-8"))["sha256"]
    assert 0.0 <= out["score"] <= 1.0 and not out.get("error")
