"""Localizer and preprocessing on tiny random-weight DeCLIP models (tests/factories.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from declip_desktop.common.images import ImageError
from declip_desktop.engine import preprocess
from declip_desktop.engine.localizer import OutOfDeviceMemory, Prediction
from declip_desktop.modelstore.checkpoint_import import import_checkpoint
from declip_desktop.modelstore.loading import load_localizer
from declip_desktop.modelstore.store import ModelStore
from tests.factories import make_tiny_vit_checkpoint

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth shading plus an edge and texture: gives the tiny model something to react to."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([200 * xx, 180 * yy, 120 + 60 * np.sin(12 * xx)], axis=2)
    img[h // 3 : h // 2, w // 4 : w // 2] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    src = make_tiny_vit_checkpoint(root / "src" / "ViT_layer1_conv-4_ldm.pth", layer="layer1", decoder="conv-4", seed=3)
    store = ModelStore(root / "models", bundled=None)
    card = import_checkpoint(src, name="tiny", store=store)
    return store.get(card.name)


@pytest.fixture(scope="module")
def loc(tiny_model):
    return load_localizer(tiny_model, device="cpu", batch_size=4, threads=1)


# --------------------------------------------------------------------------- preprocessing


def test_preprocessing_matches_independent_reference():
    img = Image.fromarray(_photo(173, 311))
    ours = preprocess.to_input_tensor(img).numpy()
    # Reference from DESIGN.md, written separately: PIL bilinear 224×224, [0, 1], CLIP mean/std.
    ref = np.asarray(img.resize((224, 224), Image.BILINEAR), dtype=np.float32) / np.float32(255.0)
    ref = ((ref - np.float32(MEAN)) / np.float32(STD)).transpose(2, 0, 1)
    assert ours.shape == (3, 224, 224) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    # … and bit-for-bit what the authors' torchvision pipeline gives.
    from torchvision import transforms

    authors = transforms.Compose(
        [transforms.Resize((224, 224)), transforms.ToTensor(), transforms.Normalize(mean=MEAN, std=STD)]
    )(img)
    assert torch.equal(authors, torch.from_numpy(ours))


def test_map_resizing_matches_torchvision_bilinear_both_ways():
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    prob = torch.rand(256, 256, generator=torch.Generator().manual_seed(1))
    for h, w in ((480, 640), (100, 70)):  # up and down
        ours = preprocess.resize_map(prob, h, w)
        ref = TF.resize(prob[None], [h, w], interpolation=InterpolationMode.BILINEAR)[0].numpy()
        assert ours.shape == (h, w) and ours.dtype == np.float32
        np.testing.assert_allclose(ours, np.clip(ref, 0, 1), atol=1e-6)


def test_image_score_is_top_percent_mean():
    flat = torch.full((256, 256), 0.1)
    assert preprocess.image_score(flat) == pytest.approx(0.1, abs=1e-6)
    hot = flat.clone()
    hot[:26, :26] = 0.9  # 676 px > 1% of the map: the top 1% is all inside the hot patch
    assert preprocess.image_score(hot) == pytest.approx(0.9, abs=1e-6)
    speck = flat.clone()
    speck[0, 0] = 1.0  # one pixel barely moves it
    assert preprocess.image_score(speck) < 0.12


# --------------------------------------------------------------------------- Localizer


def test_prediction_shape_range_and_metadata(loc, tiny_model):
    arr = _photo(301, 457)
    pred = loc.predict_one(arr)
    assert isinstance(pred, Prediction) and pred.error is None
    assert pred.prob_map.shape == (301, 457) and pred.prob_map.dtype == np.float32
    assert 0.0 <= pred.prob_map.min() and pred.prob_map.max() <= 1.0
    assert 0.0 <= pred.score <= 1.0
    assert (pred.width, pred.height) == (457, 301)
    assert pred.model_sha256 == tiny_model.card.sha256 and len(pred.model_sha256) == 64
    assert pred.model_name == "tiny" and pred.device == "cpu" and pred.seconds > 0
    assert not pred.demo and loc.is_demo is False
    snap = loc.card_snapshot
    assert (snap["name"], snap["sha256"], snap["demo"]) == ("tiny", tiny_model.card.sha256, False)


def test_output_is_sigmoid_of_network_resized(loc):
    arr = _photo(224, 224, seed=5)
    x = preprocess.to_input_tensor(Image.fromarray(arr))[None]
    with torch.inference_mode():
        ref = torch.sigmoid(loc.net(x))[0, 0].numpy()
    pred = loc.predict_one(arr)
    assert pred.prob_map.shape == (224, 224)
    # 256 → 224 downscale: compare at the native resolution through the same resize rule.
    np.testing.assert_allclose(pred.prob_map, preprocess.resize_map(torch.from_numpy(ref), 224, 224), atol=1e-6)


def test_deterministic_and_batch_equals_single(loc):
    images = [_photo(200 + 10 * i, 260, seed=i) for i in range(5)]
    batch = loc.predict(images)
    again = loc.predict(images)
    for a, b in zip(batch, again):
        assert np.array_equal(a.prob_map, b.prob_map)
    for img, b in zip(images, batch):
        single = loc.predict_one(img)
        np.testing.assert_allclose(single.prob_map, b.prob_map, atol=1e-5)
        assert single.score == pytest.approx(b.score, abs=1e-5)


def test_exif_rotated_input_gives_rotated_map(loc, tmp_path):
    arr = _photo(120, 200, seed=7)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    tagged = tmp_path / "tagged.png"
    Image.fromarray(arr).save(tagged, exif=exif.tobytes())
    upright = np.ascontiguousarray(np.rot90(arr, k=-1))  # what a viewer shows
    got = loc.predict_one(tagged)
    want = loc.predict_one(upright)
    assert got.prob_map.shape == (200, 120)
    np.testing.assert_allclose(got.prob_map, want.prob_map, atol=1e-5)


def test_cmyk_16bit_palette_and_alpha_inputs(loc, tmp_path):
    arr = _photo(90, 130, seed=2)
    rgb = Image.fromarray(arr)
    paths = []
    cmyk = tmp_path / "cmyk.jpg"
    rgb.convert("CMYK").save(cmyk)
    paths.append(cmyk)
    grey16 = tmp_path / "grey16.png"
    Image.fromarray((arr[:, :, 0].astype(np.uint16) * 257)).save(grey16)
    paths.append(grey16)
    pal = tmp_path / "palette.gif"
    rgb.convert("P", palette=Image.ADAPTIVE).save(pal)
    paths.append(pal)
    rgba = tmp_path / "alpha.png"
    rgb.convert("RGBA").save(rgba)
    paths.append(rgba)
    preds = loc.predict(paths)
    for path, pred in zip(paths, preds):
        assert pred.error is None, (path, pred.error)
        assert pred.prob_map.shape == (90, 130)
        assert pred.source == str(path)


def test_bad_image_gets_its_own_error_and_others_continue(loc, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(_photo(64, 80)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    buf = io.BytesIO()
    Image.fromarray(_photo(64, 80)).save(buf, format="PNG")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    preds = loc.predict([good, bad, tmp_path / "missing.png", truncated, good])
    assert [p.error is None for p in preds] == [True, False, False, False, True]
    assert all(p.prob_map is None and p.score is None for p in preds[1:4])
    assert "not found" in preds[2].error
    np.testing.assert_array_equal(preds[0].prob_map, preds[4].prob_map)
    with pytest.raises(ImageError):
        loc.predict_one(bad)


def test_out_of_device_memory_is_reported(loc, monkeypatch):
    def boom(batch):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loc, "_forward", boom)
    with pytest.raises(OutOfDeviceMemory, match="cpu"):
        loc.predict([_photo(50, 50)])


def test_fast_mode_agrees_with_exact(tiny_model, loc):
    from declip_desktop.common.paths import declip_home
    from declip_desktop.engine import accelerate, int8

    told: list[str] = []
    fast = load_localizer(tiny_model, device="cpu", fast=True, batch_size=4, threads=1, on_status=told.append)
    if not int8.available():  # this PyTorch has no int8 kernels: fast mode says so and runs exact
        assert fast.parameters["fast"] is False and "not available" in told[0]
        return
    assert fast.fast and fast.parameters["fast"] is True
    assert fast.parameters["fast_recipe"] == accelerate.FAST_RECIPE  # results record the recipe
    assert told == []  # no calibration: nothing slow to announce, even at a model's first start
    images = [_photo(150, 190, seed=s) for s in range(3)]
    exact_maps = [p.prob_map for p in loc.predict(images)]
    fast_preds = fast.predict(images)
    deltas = np.concatenate([np.abs(f.prob_map - e).ravel() for f, e in zip(fast_preds, exact_maps)])
    spread = float(np.std(np.concatenate([m.ravel() for m in exact_maps])))
    assert spread > 1e-3  # the maps are not flat, so the comparison means something
    assert deltas.mean() <= 0.005 and deltas.max() <= 0.05
    # The int8 path really is in use, and nothing was written to prepare it.
    assert any(isinstance(m, (int8.Int8Linear, int8.Int8Conv2d)) for m in fast.net.modules())
    assert not (declip_home() / "cache" / "fast-calibration").exists()
    # An image's fast-mode map does not depend on its batch-mates (per-image / per-token scales).
    alone = fast.predict([images[1]])[0]
    np.testing.assert_array_equal(alone.prob_map, fast_preds[1].prob_map)


def test_card_preprocessing_and_demo_label(tiny_model, tmp_path, monkeypatch):
    import dataclasses
    import shutil

    from declip_desktop.modelstore.store import InstalledModel

    card = dataclasses.replace(tiny_model.card, name="tinydemo", demo=True, label="demo model — not for casework",
                               mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    weights = tmp_path / "tinydemo.safetensors"
    shutil.copyfile(tiny_model.weights_path, weights)
    demo = InstalledModel(card, weights, tmp_path / "tinydemo.json")
    seen = []
    real = preprocess.to_input_tensor

    def spy(image, size, mean, std):
        seen.append((size, tuple(mean), tuple(std)))
        return real(image, size, mean, std)

    monkeypatch.setattr(preprocess, "to_input_tensor", spy)
    dl = load_localizer(demo, device="cpu", batch_size=2)
    assert dl.is_demo and dl.label == "demo model — not for casework"
    pred = dl.predict_one(_photo(40, 60))
    assert pred.demo and pred.label == "demo model — not for casework"
    assert seen == [(224, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))]


def test_an_image_at_the_native_map_size_is_analysed(loc):
    """256×256 (Dolos) skips the resize; the map must still come out (it used to fail in place)."""
    img = np.random.default_rng(3).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    pred = loc.predict([img, img[:100, :90]])
    assert [p.error for p in pred] == [None, None]
    assert pred[0].prob_map.shape == (256, 256) and 0.0 <= pred[0].prob_map.min() <= pred[0].prob_map.max() <= 1.0
