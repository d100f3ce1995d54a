"""Every image size gives a finite map of that size in [0, 1] (issue 14, item 1).

The sizes are the ones where shortcuts break: the map's own size (256×256, every Dolos
image: no resize is needed, and the map is an inference-mode tensor), the network's input
size, 1 px, one-pixel-wide strips of extreme aspect ratio, odd sizes, and a batch whose
images all differ. Run with a DeCLIP-shaped tiny network (real 16×16 patch grid, real
256×256 output) and with the bundled starter, exact and fast, batch 1 and 4, and through
`declip analyze`.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from declip_desktop.cli import main
from declip_desktop.common.probmaps import load_map
from declip_desktop.modelstore.checkpoint_import import import_checkpoint
from declip_desktop.modelstore.loading import load_localizer
from declip_desktop.modelstore.store import ModelStore
from tests.factories import make_tiny_vit_checkpoint

# (height, width)
SIZES = [(1, 1), (16, 16), (224, 224), (256, 256), (512, 512), (257, 255), (1, 3000), (3000, 1)]


def _image(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny_declip(tmp_path_factory):
    root = tmp_path_factory.mktemp("sizes")
    src = make_tiny_vit_checkpoint(root / "ViT_layer1_conv-4_ldm.pth", layer="layer1", decoder="conv-4", seed=11)
    store = ModelStore(root / "models", bundled=None)
    return store.get(import_checkpoint(src, name="tiny-sizes", store=store).name)


@pytest.fixture(scope="module")
def starter():
    return ModelStore(bundled=...).get("starter")


def _check(preds, sizes):
    assert len(preds) == len(sizes)
    for pred, (h, w) in zip(preds, sizes):
        assert pred.error is None, (h, w, pred.error)
        m = pred.prob_map
        assert m.shape == (h, w) and m.dtype == np.float32, (h, w, m.shape)
        assert np.isfinite(m).all() and m.min() >= 0.0 and m.max() <= 1.0, (h, w)
        assert 0.0 <= pred.score <= 1.0 and (pred.height, pred.width) == (h, w)


# The starter has no ViT for fast mode to quantize: on the CPU its fast mode is its exact
# path (checked below), so running it twice would test nothing new and cost 40 s.
# The starter runs at 512 px with 4-flip averaging (about 25 s per combination on 2 cores): slow, still run in CI.
_SLOW = pytest.mark.slow
COMBOS = [("tiny_declip", False, 1), ("tiny_declip", False, 4), ("tiny_declip", True, 1), ("tiny_declip", True, 4),
          pytest.param("starter", False, 1, marks=_SLOW), pytest.param("starter", False, 4, marks=_SLOW)]
_IDS = ["tiny_declip-exact-b1", "tiny_declip-exact-b4", "tiny_declip-fast-b1", "tiny_declip-fast-b4",
        "starter-exact-b1", "starter-exact-b4"]


def test_starter_fast_mode_on_the_cpu_is_its_exact_path(starter):
    assert load_localizer(starter, device="cpu", fast=True, threads=1).fast_cpu is False


@pytest.mark.parametrize("which, fast, batch", COMBOS, ids=_IDS)
def test_every_size_single_and_mixed_batches(request, which, fast, batch):
    model = request.getfixturevalue(which)
    loc = load_localizer(model, device="cpu", fast=fast, batch_size=batch, threads=1)
    images = [_image(h, w, i) for i, (h, w) in enumerate(SIZES)]
    # One call: with batch 4 the batches mix sizes (1×1 beside 256×256 beside 1×3000 …).
    preds = loc.predict(images)
    _check(preds, SIZES)
    # Exact mode: an image's result does not depend on what it was batched with. Fast mode's
    # int8 MLP layers quantize over the whole batch (benchmarks/int8_batch_independence.py), so
    # there the batch may move a map within fast mode's own tolerance against exact mode.
    alone = loc.predict([images[3]])[0]
    delta = np.abs(alone.prob_map - preds[3].prob_map)
    if fast and loc.fast_cpu:
        assert delta.mean() <= 0.005 and delta.max() <= 0.05
    else:
        assert delta.max() <= 1e-5


def test_native_size_map_is_the_network_map_and_a_private_copy(tiny_declip):
    """At 256×256 the map is the network's own probabilities, unresized, and writable."""
    import torch

    from declip_desktop.engine import preprocess

    loc = load_localizer(tiny_declip, device="cpu", batch_size=2, threads=1)
    arr = _image(256, 256, 5)
    pred = loc.predict_one(arr)
    x = preprocess.to_input_tensor(Image.fromarray(arr))[None]
    with torch.inference_mode():
        ref = torch.sigmoid(loc.net(x))[0, 0].numpy()
    np.testing.assert_allclose(pred.prob_map, ref, atol=1e-6)
    pred.prob_map[0, 0] = 0.5  # a caller may edit its map (the old code returned a view of the batch)
    assert pred.prob_map.flags.writeable


def test_resize_map_accepts_inference_tensors_of_every_shape():
    import torch

    from declip_desktop.engine import preprocess

    with torch.inference_mode():
        prob = torch.rand(256, 256) * 1.2 - 0.1  # a hair outside [0, 1] must be clipped, not mutated
    before = prob.clone()
    for h, w in SIZES:
        out = preprocess.resize_map(prob, h, w)
        assert out.shape == (h, w) and out.min() >= 0.0 and out.max() <= 1.0
    assert torch.equal(prob, before)  # never changed in place
    with pytest.raises(ValueError, match="0×5"):
        preprocess.resize_map(prob, 0, 5)


def test_declip_analyze_every_size(tmp_path, capsys, tiny_declip):
    folder = tmp_path / "in"
    folder.mkdir()
    paths = []
    for i, (h, w) in enumerate(SIZES):
        p = folder / f"img_{h}x{w}.png"
        Image.fromarray(_image(h, w, i)).save(p)
        paths.append(p)
    maps = tmp_path / "maps"
    code = main(["analyze", str(folder), "--model", str(tiny_declip.weights_path), "--maps-dir", str(maps),
                 "--batch-size", "4", "--threads", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = [json.loads(line, parse_constant=_no_constants) for line in out.splitlines() if line.strip()]
    by_path = {line["path"]: line for line in lines}
    for p, (h, w) in zip(paths, SIZES):
        rec = by_path[str(p)]
        assert "error" not in rec, rec
        m = load_map(rec["map"])
        assert m.shape == (h, w) and np.isfinite(m).all() and 0.0 <= m.min() and m.max() <= 1.0


def _no_constants(name):
    raise ValueError(f"non-standard JSON constant {name}")
