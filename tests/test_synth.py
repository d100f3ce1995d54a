"""Synthetic manipulations: exact masks, determinism, split hygiene, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from skimage import data as skimage_data

from declip_desktop.training import synth


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        Image.fromarray(getattr(skimage_data, name)()).save(d / f"{name}.png")
    return d


@pytest.fixture(scope="module")
def photos(photo_dir):
    return synth.load_photos(photo_dir)


@pytest.mark.parametrize("manipulation", synth.MANIPULATIONS)
def test_each_manipulation_changes_only_inside_its_mask(photos, manipulation):
    for index in range(2):
        rng = np.random.default_rng([11, index])
        sample = synth.synthesize(photos[index], rng, manipulation, photos, size=256)
        mask, img, src = sample.mask, sample.image, sample.source_crop
        assert img.shape == src.shape and mask.shape == img.shape[:2] and mask.dtype == bool
        assert synth.MIN_COVERAGE <= mask.mean() <= synth.MAX_COVERAGE
        # Outside: bit-identical to the source crop. Inside: the region as a whole changed.
        assert np.array_equal(img[~mask], src[~mask])
        assert not np.array_equal(img[mask], src[mask])
        assert synth.region_changed(src, img, mask)
        assert sample.record["type"] == manipulation  # no fallback needed on these photos/seeds


@pytest.mark.parametrize("shape", synth.MASK_SHAPES)
def test_mask_shapes_cover_one_to_forty_percent(shape):
    rng = np.random.default_rng(5)
    for _ in range(10):
        mask, info = synth.make_mask(300, 400, rng, shape)
        assert info["shape"] == shape
        assert synth.MIN_COVERAGE <= mask.mean() <= synth.MAX_COVERAGE


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_dataset_is_deterministic_and_splits_by_photo(photo_dir, tmp_path):
    kwargs = dict(n=20, seed=3, jpeg_prob=0.3, size=256, valid_fraction=0.1, test_fraction=0.2)
    a = synth.generate_dataset(photo_dir, tmp_path / "a", **kwargs)
    synth.generate_dataset(photo_dir, tmp_path / "b", **kwargs)
    files_a, files_b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert files_a == files_b  # same seed, same bytes (images, masks, manifest)
    c = synth.generate_dataset(photo_dir, tmp_path / "c", **{**kwargs, "seed": 4})
    assert _files(tmp_path / "c") != files_a
    del c

    records = synth.read_manifest(tmp_path / "a")
    assert len(records) == 20 and a["counts"] == {"train": 14, "valid": 2, "test": 4}
    # Every manipulation type appears; each record says what was done and to which photo.
    assert {r["type"] for r in records if r["split"] == "train"} == set(synth.MANIPULATIONS)
    for r in records:
        assert {"source", "type", "params", "coverage", "jpeg_quality", "mask_shape"} <= set(r)
        mask = np.asarray(Image.open(tmp_path / "a" / r["mask"])) > 127
        assert mask.mean() == pytest.approx(r["coverage"], abs=1e-4)
        assert (tmp_path / "a" / r["image"]).suffix == (".jpg" if r["jpeg_quality"] else ".png")
    assert any(r["jpeg_quality"] for r in records) and not all(r["jpeg_quality"] for r in records)
    # The test split is made only from photos never used in train/valid (also as donors).
    test_sources = {r["source"] for r in records if r["split"] == "test"}
    trainval = {r["source"] for r in records if r["split"] != "test"}
    trainval |= {r["params"].get("donor") for r in records if r["split"] != "test"} - {None}
    assert test_sources and not (test_sources & trainval)


def test_png_files_match_a_regenerated_sample(photo_dir, photos, tmp_path):
    synth.generate_dataset(photo_dir, tmp_path / "d", n=8, seed=9, size=256, valid_fraction=0, test_fraction=0)
    by_name = {p.name: p for p in photos}
    for r in synth.read_manifest(tmp_path / "d")[:3]:
        # Re-run the same per-image generator: the written PNG is exactly that sample.
        rng = synth.image_rng(9, "train", r["index"])
        train_photos, _ = synth.split_photos(photos, 9, 0.25)
        photo = train_photos[int(rng.integers(len(train_photos)))]
        assert photo.name == r["source"] and photo.name in by_name
        sample = synth.synthesize(photo, rng, synth.MANIPULATIONS[r["index"] % 8], train_photos, size=256)
        on_disk = np.asarray(Image.open(tmp_path / "d" / r["image"]).convert("RGB"))
        assert np.array_equal(on_disk, sample.image)
        assert np.array_equal(on_disk[~sample.mask], sample.source_crop[~sample.mask])


def test_cli_synth_writes_layout_and_reports_bad_input(photo_dir, tmp_path, capsys):
    from declip_desktop.cli import main

    out = tmp_path / "set"
    assert main(["synth", "--photos", str(photo_dir), "--out", str(out), "--n", "10", "--seed", "1",
                 "--size", "256", "--jpeg-prob", "0.5", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert sum(summary["counts"].values()) == 10
    for split in synth.SPLITS:
        images = sorted((out / split / "images").iterdir())
        masks = sorted((out / split / "masks").iterdir())
        assert len(images) == len(masks) == summary["counts"][split]
    # Not-empty output folder, missing photo folder, bad probability: clear errors, exit 2.
    assert main(["synth", "--photos", str(photo_dir), "--out", str(out), "--n", "2"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["synth", "--photos", str(tmp_path / "nope"), "--out", str(tmp_path / "o2"), "--n", "2"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["synth", "--photos", str(photo_dir), "--out", str(tmp_path / "o3"), "--n", "2", "--jpeg-prob", "2"]) == 2
    assert "--jpeg-prob" in capsys.readouterr().err
