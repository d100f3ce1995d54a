"""The generalization-oriented starter data: exact masks, authentic images, disjoint splits, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from skimage import data as skimage_data

from declip_desktop.training import synth_families, synth_general
from declip_desktop.training.synth import Photo, SynthError, region_changed

NAMES = ("astronaut", "coffee", "chelsea", "rocket", "camera")


def _photo(name: str) -> np.ndarray:
    img = getattr(skimage_data, name)()
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


@pytest.fixture(scope="module")
def photos():
    return [Photo(f"{n}.png", _photo(n)) for n in NAMES]


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos_general")
    for n in NAMES:
        Image.fromarray(_photo(n)).save(d / f"{n}.png")
    return d


@pytest.mark.parametrize("family", synth_families.FAMILIES)
@pytest.mark.parametrize("split", ["train", "test"])
def test_each_family_changes_only_where_it_says(photos, family, split):
    src = photos[0].pixels[:320, :400].copy()
    rng = np.random.default_rng([7, synth_families.FAMILIES.index(family)])
    edited, mask, params = synth_families.render(family, src, rng, split, photos[1].pixels)
    assert edited.shape == src.shape and mask.shape == src.shape[:2] and mask.dtype == bool
    assert 0 < mask.mean() < 0.5, params
    assert region_changed(src, edited, mask), params
    # Pixels that changed by more than a rounding step lie in or right beside the mask (feathered edges);
    # far from it the image is bit-identical to the source.
    import cv2

    near = cv2.dilate(mask.astype(np.uint8), np.ones((31, 31), np.uint8)).astype(bool)
    assert np.array_equal(edited[~near], src[~near]), params


def test_test_parameters_differ_from_training_parameters():
    for family in synth_families.FAMILIES:
        assert synth_families.PARAMS[family]["test"] != synth_families.PARAMS[family]["train"], family


def test_authentic_images_have_empty_masks_and_go_through_the_same_stages(photos):
    kinds = set()
    for i in range(12):
        rng = synth_general.image_rng(3, "train", i)
        s = synth_general.make_sample(photos[i % 5], photos, rng, "train", synth_general.AUTHENTIC)
        assert not s["mask"].any() and s["record"]["authentic"] and s["record"]["coverage"] == 0
        assert min(s["image"].shape[:2]) >= 256  # never below the training crop
        kinds.update(s["record"]["camera"])
        kinds.add("post_" + s["record"]["post"]["kind"])
    assert {"sensor_noise", "post_jpeg"} <= kinds, kinds


def test_post_processing_resizes_the_mask_with_the_image():
    img = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    mask = np.zeros((300, 400), bool)
    mask[100:200, 100:300] = True
    rng = np.random.default_rng(1)
    out, m, rec, data = synth_general.post_process(img, mask, rng, "test", "chain")
    assert out.shape[:2] == m.shape and out.shape[0] < 300 and data is not None and 70 <= rec["quality"] <= 80
    assert abs(m.mean() - mask.mean()) < 0.02
    assert np.array_equal(np.asarray(Image.open(__import__("io").BytesIO(data)).convert("RGB")), out)


def test_dataset_is_photo_disjoint_balanced_and_deterministic(photo_dir, tmp_path):
    counts = {"train": 4, "valid": 3, "test": 10}
    tests = ["chelsea.png", "coffee.png"]
    a = synth_general.generate(photo_dir, tmp_path / "a", counts, tests, seed=2, n_valid_photos=1)
    synth_general.generate(photo_dir, tmp_path / "b", counts, tests, seed=2, n_valid_photos=1)
    files = lambda root: {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    assert files(tmp_path / "a") == files(tmp_path / "b")
    roles = a["photos"]
    assert roles["coffee.png"] == roles["chelsea.png"] == "test" and list(roles.values()).count("valid") == 1
    records = [json.loads(line) for line in (tmp_path / "a" / "manifest.jsonl").read_text().splitlines()]
    for r in records:
        assert roles[r["source"]] == r["split"]  # every image comes from a photo of its own split
        mask = np.asarray(Image.open(tmp_path / "a" / r["mask"])) > 127
        assert mask.shape == (r["height"], r["width"])
        assert mask.any() != r["authentic"]
        if r["params"].get("donor"):
            assert roles[r["params"]["donor"]] == r["split"]  # donors too
    test = [r for r in records if r["split"] == "test"]
    # Balanced: 7 families then 3 authentic images (a family that cannot change the region falls back, rarely).
    planned = list(synth_families.FAMILIES) + ["authentic"] * 3
    assert sum(r["type"] == p for r, p in zip(test, planned)) >= 9, [r["type"] for r in test]
    assert [r["authentic"] for r in test] == [p == "authentic" for p in planned]
    with pytest.raises(SynthError, match="not empty"):
        synth_general.generate(photo_dir, tmp_path / "a", counts, ["chelsea.png"])
    with pytest.raises(SynthError, match="not found"):
        synth_general.generate(photo_dir, tmp_path / "c", counts, ["nope.png"])
