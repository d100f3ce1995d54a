"""Native-resolution tiled analysis (engine.tiling, common.tiling_plan) on a tiny DeCLIP network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from declip_desktop.common.errors import AnalysisStopped
from declip_desktop.common.tiling_plan import (TilingError, TilingOptions, axis_starts, count_passes, parse_scales,
                                               plan_tiles, ramp_weights)
from declip_desktop.modelstore.checkpoint_import import import_checkpoint
from declip_desktop.modelstore.loading import load_localizer
from declip_desktop.modelstore.store import ModelStore
from declip_desktop.engine.tiling import tiled_map
from tests.factories import make_tiny_vit_checkpoint


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([200 * xx, 180 * yy, 120 + 60 * np.sin(12 * xx)], axis=2)
    img[h // 3: h // 2, w // 4: w // 2] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    src = make_tiny_vit_checkpoint(root / "src" / "ViT_layer1_conv-4_ldm.pth", layer="layer1", decoder="conv-4", seed=5)
    store = ModelStore(root / "models", bundled=None)
    return store.get(import_checkpoint(src, name="tiny", store=store).name)


@pytest.fixture(scope="module")
def loc(tiny_model):
    return load_localizer(tiny_model, device="cpu", batch_size=1, threads=1, tiling=TilingOptions())


# --------------------------------------------------------------------------- the plan (no torch)


def test_tiles_cover_every_axis_and_end_at_the_edge():
    for length in (224, 225, 300, 391, 448, 4000):
        starts = axis_starts(length, 224, 56)
        assert starts[0] == 0 and starts[-1] == max(0, length - 224)
        assert all(b - a <= 224 - 56 for a, b in zip(starts, starts[1:]))  # never a gap, never less overlap
    assert axis_starts(100, 224, 56) == (0,)


def test_pass_counts_for_a_12_megapixel_photo():
    # 4000 = 0 + 168·k … → 24 columns, 3000 → 18 rows: 432 tiles; a 0.5 scale adds 12 × 9.
    assert count_passes(3000, 4000, 224) == 18 * 24
    assert count_passes(3000, 4000, 224, TilingOptions(scales=(1, 0.5))) == 18 * 24 + 9 * 12
    assert count_passes(224, 224, 224) == 1
    # A small image: the coarser scale would only repeat the same single tile, so it is not run.
    assert plan_tiles(200, 150, 224, TilingOptions(scales=(1, 0.5))).passes == 1
    # Up to 1.25 tiles a side is one tile (the paper's 256×256 images: the squash itself); beyond, tiled.
    assert count_passes(256, 256, 224) == count_passes(280, 280, 224) == 1
    assert count_passes(281, 256, 224) == 2 and count_passes(640, 600, 512) == 1
    plan = plan_tiles(256, 300, 224)
    assert (plan.scales[0].height, plan.scales[0].width) == (224, 300)


def test_ramps_are_positive_and_sum_to_one_across_an_overlap():
    w = ramp_weights(64, 16, True, True)
    assert w.min() > 0 and w[16:48].tolist() == [1.0] * 32
    np.testing.assert_allclose(w[:16] + w[-16:], 1.0, atol=1e-12)  # rise of one tile + fall of the previous
    assert ramp_weights(64, 16, False, False).tolist() == [1.0] * 64


@pytest.mark.parametrize("bad", [dict(overlap=0.7), dict(overlap=float("nan")), dict(scales=(0.5,)),
                                 dict(scales=(1, 1)), dict(scales=(1, 2)), dict(scales=(1, .5, .25, .1)),
                                 dict(tile=8), dict(tile=100.5)])
def test_bad_options_are_refused_with_a_reason(bad):
    with pytest.raises(TilingError):
        TilingOptions(**bad)


def test_scales_parse_from_the_command_line():
    assert parse_scales("1,0.5") == (1.0, 0.5) and parse_scales("0.5,1") == (1.0, 0.5)
    with pytest.raises(TilingError, match="commas"):
        parse_scales("1;x")


# --------------------------------------------------------------------------- the engine


def test_one_tile_image_gives_exactly_the_squash_map_and_score(loc):
    img = _photo(224, 224, seed=1)
    pred = loc.predict([img])[0]
    assert pred.ok and pred.tiled is not None and pred.tiled.passes == 1
    np.testing.assert_array_equal(pred.tiled.prob_map, pred.prob_map)
    assert pred.tiled.score == pred.score
    assert pred.tiled.parameters["mode"] == "tiled" and pred.tiled.parameters["tile"] == 224


def test_the_papers_256_setting_gives_exactly_the_squash_map(loc):
    pred = loc.predict([_photo(256, 256, seed=4)])[0]
    assert pred.tiled.passes == 1
    np.testing.assert_array_equal(pred.tiled.prob_map, pred.prob_map)
    assert pred.tiled.score == pred.score


def test_tiled_map_has_the_image_size_and_no_seams(loc):
    img = _photo(300, 391, seed=2)
    pred = loc.predict([img])[0]
    tiled = pred.tiled
    assert tiled.prob_map.shape == (300, 391) and tiled.prob_map.dtype == np.float32
    assert 0.0 <= tiled.prob_map.min() and tiled.prob_map.max() <= 1.0
    assert tiled.passes == 2 * 2 == count_passes(300, 391, 224)
    # No seam: the largest jump between neighbouring pixels at the tile borders is no larger
    # than the largest jump inside the tiles.
    d = np.abs(np.diff(tiled.prob_map.astype(np.float64), axis=1))
    border = d[:, 160:240].max()
    inside = d[:, :150].max()
    assert border <= 1.5 * inside + 1e-6


def test_blend_of_a_constant_network_is_that_constant():
    """Whatever the tiles, a network answering 0.3 everywhere must give 0.3 everywhere."""
    def forward(batch):
        return torch.full((batch.shape[0], 256, 256), 0.3), [0] * batch.shape[0], 0.0

    img = Image.fromarray(_photo(517, 300, seed=3))
    out = tiled_map(img, forward, input_size=224, mean=(0, 0, 0), std=(1, 1, 1),
                    options=TilingOptions(scales=(1, 0.5)), batch_size=3)
    np.testing.assert_allclose(out.prob_map, 0.3, atol=1e-6)
    assert out.passes == count_passes(517, 300, 224, TilingOptions(scales=(1, 0.5)))


def test_a_tile_is_placed_where_it_belongs():
    """A network that reports each tile's mean brightness: a bright square must come out where it is."""
    def forward(batch):
        means = batch.mean(dim=(1, 2, 3))
        return (means[:, None, None].expand(-1, 128, 128).clamp(0, 1).clone(), [0] * batch.shape[0], 0.0)

    rgb = np.zeros((448, 672, 3), np.uint8)
    rgb[224:448, 448:672] = 255  # the bottom-right tile exactly
    out = tiled_map(Image.fromarray(rgb), forward, input_size=224, mean=(0, 0, 0), std=(1, 1, 1),
                    options=TilingOptions(overlap=0.0), batch_size=4)
    assert out.passes == 6
    assert out.prob_map[300, 500] == pytest.approx(1.0) and out.prob_map[100, 100] == pytest.approx(0.0)


def test_stop_between_tile_batches_and_progress_per_tile(tiny_model):
    seen = []
    loc = load_localizer(tiny_model, device="cpu", batch_size=2, threads=1, tiling=TilingOptions())
    loc.on_tile = lambda done, total: seen.append((done, total))
    loc.should_stop = lambda: len(seen) >= 2
    with pytest.raises(AnalysisStopped, match="after 4 of 9 tiles"):
        loc.predict([_photo(400, 500)])
    assert seen == [(2, 9), (4, 9)]


def test_non_finite_tiles_fail_the_image_not_the_run():
    def forward(batch):
        return torch.zeros((batch.shape[0], 256, 256)), [1] * batch.shape[0], 0.0

    from declip_desktop.engine.tiling import NonFiniteTiles

    with pytest.raises(NonFiniteTiles):
        tiled_map(Image.fromarray(_photo(224, 300)), forward, input_size=224, mean=(0, 0, 0), std=(1, 1, 1))


def test_seconds_per_pass_is_measured(loc):
    assert 0.0 < loc.seconds_per_pass() < 60.0


def test_reproduce_reruns_a_tiled_result_with_its_recorded_tiling():
    from declip_desktop.training.reproduce import _tiling_of

    assert _tiling_of({"mode": "squash", "fast": False}) is None and _tiling_of({}) is None
    opts = _tiling_of({"mode": "tiled", "tile": 224, "overlap": 0.5, "scales": [1.0, 0.5]})
    assert opts == TilingOptions(tile=224, overlap=0.5, scales=(1.0, 0.5))
