"""`declip eval`: maps folders, Dolos and plain layouts, mask polarity, per-image errors."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from declip_desktop.cli import main
from declip_desktop.common.probmaps import save_map
from declip_desktop.training.datasets import DatasetError, find_samples, load_mask, load_soft_mask
from declip_desktop.training.evaluation import evaluate_model


def blob(h=48, w=40, y=10, x=8, size=20) -> np.ndarray:
    gt = np.zeros((h, w), bool)
    gt[y : y + size, x : x + size] = True
    return gt


def save_mask(path: Path, gt: np.ndarray, polarity="white") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    level = gt if polarity == "white" else ~gt
    Image.fromarray(np.where(level, 255, 0).astype(np.uint8), "L").save(path)
    return path


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def read_csv(path: Path) -> dict[str, dict]:
    with path.open(newline="") as fh:
        return {r["name"]: r for r in csv.DictReader(fh)}


def test_maps_folder_npy_and_png_with_known_values(tmp_path, capsys):
    maps, masks = tmp_path / "maps", tmp_path / "masks"
    maps.mkdir()
    gt_a, gt_b = blob(), blob(y=20, x=5)
    save_mask(masks / "a.png", gt_a)
    save_mask(masks / "b.png", gt_b)
    save_map(maps / "a.npy", gt_a.astype(np.float32))  # perfect
    half = np.zeros(gt_b.shape, np.float32)
    half[20:40, 5:15] = 0.9  # left half of b
    save_map(maps / "b.png", half)  # 16-bit PNG
    out_csv = tmp_path / "r.csv"
    code, out, err = run_cli(capsys, "eval", "--maps", str(maps), "--masks", str(masks), "--csv", str(out_csv), "--json")
    assert code == 0, err
    s = json.loads(out)
    assert s["n"] == 2 and s["errors"] == 0
    assert {"n", "iou", "f1_best", "f1_fixed", "ap", "undefined"} <= set(s)
    assert s["iou"] == pytest.approx((100 + 50) / 2, rel=1e-6)
    rows = read_csv(out_csv)
    assert float(rows["a"]["iou"]) == 100.0 and float(rows["a"]["ap"]) == 1.0
    assert float(rows["b"]["iou"]) == pytest.approx(50.0, rel=1e-6)


def test_eight_bit_png_map_of_another_size_is_resized(tmp_path, capsys):
    maps, masks = tmp_path / "maps", tmp_path / "masks"
    maps.mkdir()
    gt = np.zeros((64, 64), bool)
    gt[:, :32] = True
    save_mask(masks / "x.png", gt)
    Image.fromarray(np.where(np.arange(32)[None, :] < 16, 255, 0).repeat(32, 0).astype(np.uint8), "L").save(maps / "x.png")
    code, out, _ = run_cli(capsys, "eval", "--maps", str(maps), "--masks", str(masks), "--csv", str(tmp_path / "r.csv"), "--json")
    assert code == 0
    row = read_csv(tmp_path / "r.csv")["x"]
    assert row["resized"] == "True" and float(row["iou"]) == 100.0
    summary = json.loads(out)  # the printed summary says the same as the CSV
    assert summary["n"] == 1 and summary["iou"] == pytest.approx(100.0)


def test_missing_and_unreadable_masks_are_per_image_errors(tmp_path, capsys):
    maps, masks = tmp_path / "maps", tmp_path / "masks"
    maps.mkdir()
    gt = blob()
    save_mask(masks / "good.png", gt)
    masks.joinpath("broken.png").write_bytes(b"not a png at all")
    for name in ("good", "broken", "orphan"):
        save_map(maps / f"{name}.npy", gt.astype(np.float32))
    code, out, err = run_cli(capsys, "eval", "--maps", str(maps), "--masks", str(masks), "--csv", str(tmp_path / "r.csv"), "--json")
    assert code == 1
    assert "orphan: no ground-truth mask" in err and "broken" in err and "cannot read the mask" in err
    s = json.loads(out)
    assert s["n"] == 1 and s["errors"] == 2 and s["iou"] == 100.0
    rows = read_csv(tmp_path / "r.csv")
    assert rows["orphan"]["error"] and rows["orphan"]["iou"] == ""


def test_polarity_option_inverts_masks(tmp_path, capsys):
    maps, masks = tmp_path / "maps", tmp_path / "masks"
    maps.mkdir()
    gt = blob()
    save_mask(masks / "a.png", gt, polarity="black")
    save_map(maps / "a.npy", gt.astype(np.float32))
    code, out, _ = run_cli(capsys, "eval", "--maps", str(maps), "--masks", str(masks), "--mask-polarity", "black",
                           "--csv", str(tmp_path / "r.csv"), "--json")
    assert code == 0 and json.loads(out)["iou"] == 100.0
    code, out, _ = run_cli(capsys, "eval", "--maps", str(maps), "--masks", str(masks), "--csv", str(tmp_path / "r.csv"),
                           "--force", "--json")  # the second run replaces the first run's CSV
    assert json.loads(out)["iou"] < 1e-3  # read as white-is-manipulated it is the complement


def test_usage_errors_exit_2(tmp_path, capsys):
    code, _, err = run_cli(capsys, "eval", "--maps", str(tmp_path))
    assert code == 2 and "--masks" in err
    code, _, err = run_cli(capsys, "eval", "--maps", str(tmp_path / "nope"), "--masks", str(tmp_path))
    assert code == 2 and "not found" in err
    code, _, err = run_cli(capsys, "eval")
    assert code == 2


def test_mask_reading_thresholds_like_the_authors(tmp_path):
    levels = np.array([[0, 127, 128, 255]], np.uint8)
    Image.fromarray(levels, "L").save(tmp_path / "m.png")
    assert load_mask(tmp_path / "m.png", "white").tolist() == [[False, False, True, True]]
    assert load_mask(tmp_path / "m.png", "black").tolist() == [[True, True, False, False]]
    soft = load_soft_mask(tmp_path / "m.png", "black", 4)
    assert soft.dtype == np.float32 and soft[0, 0] == 1.0 and soft[0, 3] == 0.0


# ----------------------------------------------------------------------------- layouts + model


@dataclass
class FakePrediction:
    prob_map: np.ndarray | None
    error: str | None = None


class PerfectLocalizer:
    """Stands in for engine.localizer.Localizer: returns the true mask as the map."""

    batch_size = 2

    def __init__(self, truth: dict[str, np.ndarray]):
        self.truth = truth
        self.seen: list[str] = []

    def predict_iter(self, images):
        for p in images:
            self.seen.append(Path(p).stem)
            yield FakePrediction(self.truth[Path(p).stem].astype(np.float32))


def make_image(path: Path, shape) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (*shape, 3), dtype=np.uint8)).save(path)


def test_dolos_layout_black_masks(tmp_path):
    root = tmp_path / "dolos"
    truth = {}
    for gen in ("ldm", "lama"):
        for split in ("train", "test"):
            for i in range(3):
                gt = blob(y=5 + i)
                make_image(root / "fake" / gen / "images" / split / f"{i:03d}.png", gt.shape)
                save_mask(root / "fake" / gen / "masks" / split / f"{i:03d}.png", gt, polarity="black")
                truth[f"{i:03d}"] = gt
    with pytest.raises(DatasetError, match="generator"):
        find_samples(root)
    s = find_samples(root, generator="ldm")
    assert s.layout == "dolos" and s.polarity == "black" and s.description == "Dolos ldm/test" and len(s.samples) == 3
    loc = PerfectLocalizer(truth)
    res = evaluate_model(loc, s)
    assert res.summary["n"] == 3 and res.summary["iou"] == 100.0 and res.summary["f1_best"] == 1.0
    # the generator folder itself works too, and an explicit polarity overrides the default
    s2 = find_samples(root / "fake" / "lama", split="train", polarity="white")
    assert s2.polarity == "white" and evaluate_model(loc, s2).summary["iou"] < 1e-3


def test_plain_layout_missing_mask_is_not_run(tmp_path):
    root = tmp_path / "plain"
    truth = {}
    for i in range(3):
        gt = blob(x=4 + i)
        make_image(root / "images" / f"im{i}.jpg", gt.shape)
        truth[f"im{i}"] = gt
        if i != 1:
            save_mask(root / "masks" / f"im{i}_mask.png", gt)
    s = find_samples(root)
    assert s.layout == "plain" and s.polarity == "white"
    make_image(root / "images" / "im0_7.jpg", (48, 40))  # AutoSplice naming: variant 7 of im0
    truth["im0_7"] = truth["im0"]
    s = find_samples(root)
    assert [x.mask.name if x.mask else None for x in s.samples] == ["im0_mask.png", "im0_mask.png", None, "im2_mask.png"]
    loc = PerfectLocalizer(truth)
    res = evaluate_model(loc, s)
    assert [r["name"] for r in res.rows] == ["im0", "im0_7", "im1", "im2"]
    assert res.errors[0]["name"] == "im1" and "no ground-truth mask" in res.errors[0]["error"]
    assert "im1" not in loc.seen and res.summary["n"] == 3


def test_eval_model_on_dolos_layout_matches_scoring_its_saved_maps(tmp_path, capsys):
    from tests.factories import install_tiny_model

    install_tiny_model("tiny-eval", layer="layer1", decoder="conv-4")
    root = tmp_path / "dolos"
    for i in range(3):
        gt = blob(h=60, w=50, y=4 + 3 * i)
        make_image(root / "fake" / "ldm" / "images" / "test" / f"{i}.png", gt.shape)
        save_mask(root / "fake" / "ldm" / "masks" / "test" / f"{i}.png", gt, polarity="black")
    code, out, err = run_cli(capsys, "eval", "--model", "tiny-eval", "--data", str(root), "--device", "cpu",
                             "--csv", str(tmp_path / "m.csv"), "--save-maps", str(tmp_path / "maps"), "--json")
    assert code == 0, err
    s = json.loads(out)
    assert s["n"] == 3 and s["model"] == "tiny-eval" and len(s["model_sha256"]) == 64 and s["set"] == "Dolos ldm/test"
    # the same maps scored from disk (16-bit PNG) give the same IoU up to PNG quantization
    code, out2, _ = run_cli(capsys, "eval", "--maps", str(tmp_path / "maps"), "--masks",
                            str(root / "fake" / "ldm" / "masks" / "test"), "--mask-polarity", "black",
                            "--csv", str(tmp_path / "p.csv"), "--json")
    assert code == 0
    by_model, by_maps = read_csv(tmp_path / "m.csv"), read_csv(tmp_path / "p.csv")
    assert set(by_model) == set(by_maps) and len(by_model) == 3
    for name, row in by_model.items():
        assert float(row["iou"]) == pytest.approx(float(by_maps[name]["iou"]), abs=1.0)
    s2 = json.loads(out2)
    assert s2["n"] == 3 and s2["iou"] == pytest.approx(s["iou"], abs=1.0)
    # an unknown model is a fatal usage error
    code, _, err = run_cli(capsys, "eval", "--model", "nope", "--data", str(root), "--csv", str(tmp_path / "x.csv"))
    assert code == 2 and "nope" in err
