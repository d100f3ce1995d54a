"""The starter trainer's command line: a few steps on tiny synthetic sets, then packaging."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from declip_desktop.cli import main as cli_main
from declip_desktop.engine import starter
from declip_desktop.training import starter_training, synth
from declip_desktop.training.starter_package import TOP_FRACTIONS


def trainer_main(argv):
    """The trainer's command line is `declip train-starter` (cli/train_starter.py)."""
    return cli_main(["train-starter", *argv])


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory):
    """Two synthetic sets (different seeds) from four scikit-image photos, one of them test-only."""
    from skimage import data as skimage_data
    root = tmp_path_factory.mktemp("starter_training")
    photos = root / "photos"
    photos.mkdir()
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        Image.fromarray(getattr(skimage_data, name)()).save(photos / f"{name}.png")
    sets = []
    for seed in (0, 1):
        out = root / f"synth_{seed}"
        synth.generate_dataset(photos, out, n=20, seed=seed, size=256, test_photos=["chelsea.png"])
        sets.append(out)
    return root, sets


def test_train_with_extra_set_then_package_writes_a_loadable_demo_model(tiny_sets, capsys):
    root, (main_set, extra_set) = tiny_sets
    run = root / "run"
    args = ["train", "--data", str(main_set), "--extra-data", str(extra_set), "--run", str(run),
            "--steps", "2", "--batch", "2", "--crop", "64", "--input-size", "128", "--val-every", "1",
            "--val-limit", "2", "--widths", "4", "4", "4", "4", "4", "--threads", "1"]
    assert trainer_main(args) == 0
    out = capsys.readouterr().out
    n_train = sum(json.loads(line)["split"] == "train"
                  for s in (main_set, extra_set) for line in (s / "manifest.jsonl").read_text().splitlines())
    assert f"{n_train} training images from 2 set(s)" in out
    config = json.loads((run / "train_config.json").read_text())
    assert config["extra_data"] == [str(extra_set)] and config["steps_done"] == 2
    assert (run / "best.safetensors").is_file()

    models = root / "models"
    assert trainer_main(["package", "--data", str(main_set), "--run", str(run), "--models", str(models),
                         "--photos", str(root / "photos"), "--input-size", "128", "--no-calibrate",
                         "--test-time-flips", "2"]) == 0
    card = json.loads((models / "starter.json").read_text(encoding="utf-8"))
    assert card["test_time_flips"] == 2 and starter.build_starter(card).test_time_flips == 2
    assert card["demo"] is True and card["label"] == starter.DEMO_LABEL
    assert card["metrics"]["training"]["extra_data"] == [str(extra_set)]
    assert card["metrics"]["test_photos"] == ["chelsea.png"]
    # The card's figures are what the packaged weights score on the held-out split, not any number in range.
    net = starter.load_starter(models / "starter.safetensors", card)
    test_items = starter_training.load_split(main_set, "test", 128)
    assert card["metrics"]["test_iou"] == pytest.approx(
        starter_training.evaluate(net, test_items, card["mean"], card["std"], full=True)["iou"], abs=1e-6)
    net.test_time_flips = 1
    assert card["metrics"]["test_iou_single_view"] == pytest.approx(
        starter_training.evaluate(net, test_items, card["mean"], card["std"])["iou"], abs=1e-6)


def test_package_refuses_when_an_extra_set_trained_on_a_test_photo(tiny_sets, tmp_path, capsys):
    """A test figure must come from photos no training set used: package says which photo leaked."""
    root, (main_set, _) = tiny_sets
    leaky = tmp_path / "leaky"
    synth.generate_dataset(root / "photos", leaky, n=8, seed=5, size=256, test_photos=["coffee.png"])
    run = tmp_path / "run"
    run.mkdir()
    (run / "train_config.json").write_text(json.dumps({"extra_data": [str(leaky)], "widths": [4] * 5}))
    assert trainer_main(["package", "--data", str(main_set), "--run", str(run), "--models", str(tmp_path / "m")]) == 2
    assert "chelsea.png" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()  # nothing written


def test_train_refuses_a_folder_without_a_data_set(tmp_path, capsys):
    assert trainer_main(["train", "--data", str(tmp_path), "--run", str(tmp_path / "run"), "--steps", "1"]) == 2
    assert "Run `declip synth` first" in capsys.readouterr().err
    assert trainer_main(["train", "--data", str(tmp_path), "--run", str(tmp_path / "run"), "--steps", "1",
                         "--max-side", "512"]) == 2
    assert "declip train-starter data" in capsys.readouterr().err


def test_native_mode_trains_packages_calibrates_and_compares(tiny_sets, tmp_path, capsys):
    """`data` → `train --max-side` → `package --max-side --compare`: the card carries the score
    calibration, the validation-fitted offset, every issue-22 figure and the earlier model's."""
    from declip_desktop.training import synth_general
    from declip_desktop.engine.score_calibration import calibrated_score

    root, _ = tiny_sets
    data = tmp_path / "general"
    assert trainer_main(["data", "--photos", str(root / "photos"), "--out", str(data), "--train", "3", "--valid", "10",
                         "--test", "10", "--test-photos", "chelsea.png", "--valid-photos", "1"]) == 0
    run = tmp_path / "run"
    assert trainer_main(["train", "--data", str(data), "--run", str(run), "--steps", "2", "--batch", "2", "--crop", "64",
                         "--val-every", "1", "--val-limit", "10", "--widths", "4", "4", "4", "4", "4",
                         "--max-side", "320"]) == 0
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert {"valid_selection", "valid_auc", "valid_authentic_over_1pct", "valid_offset"} <= set(log[-1])
    earlier = tmp_path / "earlier"
    assert trainer_main(["package", "--data", str(main_set_of(tiny_sets)), "--run", str(run), "--models", str(earlier),
                         "--photos", str(root / "photos"), "--input-size", "128", "--no-calibrate"]) == 0
    models = tmp_path / "models"
    assert trainer_main(["package", "--data", str(data), "--run", str(run), "--models", str(models), "--photos",
                         str(root / "photos"), "--max-side", "320", "--compare", str(earlier / "starter.json")]) == 0
    card = json.loads((models / "starter.json").read_text(encoding="utf-8"))
    m = card["metrics"]
    assert card["max_side"] == 320 and card["demo"] is True and starter.DEMO_LABEL in card["label"]
    assert "false alarms" in card["label"]  # every result shows the false-alarm rate beside "demo"
    assert m["test"]["n_authentic"] == 3 and m["test"]["n_edited"] == 7
    assert set(m["targets_met"]) and m["earlier_model_on_same_test"]["n_edited"] == 7
    assert m["test_photos"] == ["chelsea.png"] and len(m["valid_photos"]) == 1
    ref = card["score_calibration"]["authentic_scores"]
    assert len(ref) == m["valid"]["n_authentic"] and ref == sorted(ref)
    assert calibrated_score(max(ref) + 1e-3, card) == 1.0
    assert abs(m["bias_calibration_on_valid"]["offset"]) <= 3.0
    # The packaged weights reproduce the card's test figures (the offset is folded into the bias).
    from declip_desktop.training.starter_eval import evaluate_native, load_native

    net = starter.load_starter(models / "starter.safetensors", card)
    fraction = card["score_top_fraction"]
    res = evaluate_native(net, load_native(data, "test", 320), card["mean"], card["std"], top_fraction=fraction)
    assert res["iou"] == pytest.approx(m["test"]["iou"], abs=1e-6)
    assert res["authentic_over_1pct_share"] == m["test"]["authentic_over_1pct_share"]
    assert res["auc"] == m["test"]["auc"] and m["test"]["score_top_fraction"] == fraction
    # The share was chosen on validation (best AUC there) and the calibration was fitted with that same
    # share: the packaged weights give exactly the card's reference scores on the authentic valid images.
    per_share = m["bias_calibration_on_valid"]["valid_auc_per_score_top_fraction"]
    assert set(per_share) == {str(f) for f in TOP_FRACTIONS} and per_share[str(fraction)] == max(per_share.values())
    valid = evaluate_native(net, load_native(data, "valid", 320), card["mean"], card["std"], top_fraction=fraction)
    assert valid["authentic_scores"] == pytest.approx(ref, abs=2e-5)
    assert synth_general.AUTHENTIC == "authentic"


def main_set_of(tiny_sets):
    return tiny_sets[1][0]


class _ScriptedNet(torch.nn.Module):
    """Returns prepared logit maps in call order (the packaging's fit reads one map per item)."""

    def __init__(self, maps):
        super().__init__()
        self.head = torch.nn.Conv2d(1, 1, 1)
        self.maps = list(maps)

    def forward(self, x):
        return self.maps.pop(0).clone()[None, None]


def test_score_share_is_chosen_on_validation_auc():
    """Edited maps hold one tiny, very confident spot; authentic maps a broad, moderately high patch.
    The top 0.1 % separates them perfectly; the top 10 % ranks them the wrong way round. The fit must
    pick the share by AUC (not keep the 1 % default) and fit the calibration with it."""
    from declip_desktop.training.starter_eval import NativeItem
    from declip_desktop.training.starter_package import fit_offset

    side = 100  # 10,000 logits: top 0.1 % = 10 of them, top 10 % = 1000
    maps, items = [], []
    for i in range(12):
        authentic = i % 2 == 0
        logits = torch.full((side, side), -6.0)
        if authentic:
            logits[:20, :60] = 1.0 + 0.01 * i  # 12 % of the map at sigmoid ≈ 0.73
        else:
            logits[50:52, 50:55] = 6.0 + 0.01 * i  # 10 pixels, 0.1 %
        maps.append(logits)
        mask = np.zeros((side, side), bool)
        if not authentic:
            mask[50:52, 50:55] = True
        items.append(NativeItem(np.zeros((side, side, 3), np.uint8), mask, mask.astype(np.uint8) * 255,
                                {"authentic": authentic, "type": "authentic" if authentic else "splice"}))
    record, valid = fit_offset(_ScriptedNet(maps), items, [0.5] * 3, [0.25] * 3, budget=1.0)
    per_share = record["valid_auc_per_score_top_fraction"]
    assert per_share["0.001"] == 1.0 and per_share["0.1"] < 0.5
    assert record["score_top_fraction"] == 0.001 == valid["score_top_fraction"] and valid["auc"] == 1.0
    assert min(valid["edited_scores"]) > max(valid["authentic_scores"])


def _shift_items_and_maps(shift: float):
    """Six validation images (3 edited, 3 authentic) and their logit maps, all shifted by `shift`.
    Edited: a 10×10 spot at 1.3 where the mask is. Authentic: a 2 % patch at −0.6, flagged only
    once the offset passes +0.6. Background −4."""
    from declip_desktop.training.starter_eval import NativeItem

    side, maps, items = 50, [], []
    for i in range(6):
        authentic = i % 2 == 0
        logits = torch.full((side, side), -4.0)
        mask = np.zeros((side, side), bool)
        if authentic:
            logits[:5, :10] = -0.6
        else:
            logits[20:30, 20:30] = 1.3
            mask[20:30, 20:30] = True
        maps.append(logits + shift)
        items.append(NativeItem(np.zeros((side, side, 3), np.uint8), mask, mask.astype(np.uint8) * 255,
                                {"authentic": authentic, "type": "authentic" if authentic else "splice"}))
    return maps, items


def test_trainer_selects_weights_on_figures_after_the_bias_fit():
    """Packaging fits an output offset, so a network whose raw bias flags every authentic image is as
    good as one that does not: the trainer's selection must judge both the same (the raw figures would
    put the shifted one far behind), and must leave the weights' bias untouched."""
    from declip_desktop.training.starter_eval import evaluate_native
    from declip_desktop.training.starter_package import selection_figures

    figures = {}
    for shift in (0.0, 1.6):
        maps, items = _shift_items_and_maps(shift)
        net = _ScriptedNet(maps)
        bias = net.head.bias.detach().clone()
        fit, valid = selection_figures(net, items, [0.5] * 3, [0.25] * 3)
        assert torch.equal(net.head.bias, bias)
        assert valid["authentic_over_1pct_share"] == 0.0 and valid["iou"] == pytest.approx(100.0)
        figures[shift] = (fit["offset"], valid["selection"])
    assert figures[0.0][1] == figures[1.6][1] == pytest.approx(100.0)
    assert figures[1.6][0] == pytest.approx(figures[0.0][0] - 1.5)  # the fit absorbed the shift
    maps, items = _shift_items_and_maps(1.6)
    raw = evaluate_native(_ScriptedNet(maps), items, [0.5] * 3, [0.25] * 3)
    assert raw["authentic_over_1pct_share"] == 100.0 and raw["selection"] < figures[1.6][1] - 30
