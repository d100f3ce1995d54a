"""The starter trainer's command line: a few steps on tiny synthetic sets, then packaging."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from declip_desktop.engine import starter
from declip_desktop.training import starter_training, synth
from declip_desktop.training.starter_training import main as trainer_main


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


def test_package_refuses_when_an_extra_set_trained_on_a_test_photo(tiny_sets, tmp_path):
    """A test figure must come from photos no training set used: package says which photo leaked."""
    root, (main_set, _) = tiny_sets
    leaky = tmp_path / "leaky"
    synth.generate_dataset(root / "photos", leaky, n=8, seed=5, size=256, test_photos=["coffee.png"])
    run = tmp_path / "run"
    run.mkdir()
    (run / "train_config.json").write_text(json.dumps({"extra_data": [str(leaky)], "widths": [4] * 5}))
    with pytest.raises(SystemExit, match="chelsea.png"):
        trainer_main(["package", "--data", str(main_set), "--run", str(run), "--models", str(tmp_path / "m")])
    assert not (tmp_path / "m").exists()  # nothing written


def test_train_refuses_a_folder_without_a_data_set(tmp_path):
    with pytest.raises(SystemExit, match="Run `declip synth` first"):
        trainer_main(["train", "--data", str(tmp_path), "--run", str(tmp_path / "run"), "--steps", "1"])
