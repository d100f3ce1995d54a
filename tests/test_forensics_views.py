"""Classical views on images the tests make: each must light up where the edit is, and not elsewhere."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from declip_desktop.forensics.views import VIEWS, compute_view
from tests.forensics_files import decode, jpeg_bytes, scene, texture

H, W = 384, 512
REGION = (slice(128, 256), slice(192, 320))


@pytest.fixture(scope="module")
def splice():
    """Background saved at quality 60, a never-compressed region pasted in, all saved at 90."""
    background = decode(jpeg_bytes(texture(H, W, 1), 60))
    composite = background.copy()
    composite[REGION] = texture(128, 128, 2)
    data = jpeg_bytes(composite, 90)
    inside = np.zeros((H, W), bool)
    inside[136:248, 200:312] = True  # a margin inside the pasted square: blocks on its edge are mixed
    outside = np.ones((H, W), bool)
    outside[112:272, 176:336] = False
    return decode(data), list(Image.open(io.BytesIO(data)).quantization[0]), inside, outside


def test_ela_brightens_the_region_with_another_compression_history(splice):
    rgb, _, inside, outside = splice
    ela = compute_view("ela", rgb, quality=75)
    assert ela.data.shape == (H, W) and ela.data.dtype == np.float32
    assert 0.0 <= ela.data.min() and ela.data.max() <= 1.0
    assert ela.data[inside].mean() > 2.0 * ela.data[outside].mean()
    assert ela.parameters == {"quality": 75}


def test_jpeg_ghost_shows_the_background_at_its_first_quality(splice):
    rgb, _, inside, outside = splice
    ghost = compute_view("jpeg_ghost", rgb, last_quality=90)
    qs = ghost.extras["qualities"]
    level = lambda q: qs.index(q) / (len(qs) - 1)  # noqa: E731
    # The background's ghost sits at its first save (60); the pasted region has none below 83.
    assert abs(np.median(ghost.data[outside]) - level(60)) < 1e-6
    assert np.median(ghost.data[inside]) == pytest.approx(level(80))
    # At the chosen quality 60 the background is dark (a ghost), the region is not.
    at60 = compute_view("jpeg_ghost", rgb, quality=60).data
    assert at60[outside].mean() < 0.75 * at60[inside].mean()


def test_double_compression_map_flags_the_singly_compressed_region(splice):
    rgb, table, inside, outside = splice
    dq = compute_view("double_jpeg", rgb, luma_table=table)
    assert dq.extras["informative"] >= 1
    assert dq.data[inside].mean() > 0.6 and dq.data[outside].mean() < 0.3
    none = compute_view("double_jpeg", rgb)  # no table: says so, flags nothing
    assert not none.data.any() and "not a JPEG" in none.extras["note"]


def test_grid_offset_reveals_a_crop_after_compression():
    rgb = decode(jpeg_bytes(texture(256, 320, 5), 50))[3:, 5:]  # crop 5 px left, 3 px top
    view = compute_view("jpeg_grid", np.ascontiguousarray(rgb))
    assert view.extras["grid_offset"] == [3, 5][::-1] or view.extras["grid_offset"] == [(8 - 5) % 8, (8 - 3) % 8]
    assert view.extras["cropped_after_compression"] is True
    aligned = compute_view("jpeg_grid", decode(jpeg_bytes(texture(256, 320, 5), 50)))
    assert aligned.extras["grid_offset"] == [0, 0] and not aligned.extras["cropped_after_compression"]


def test_noise_level_finds_a_noisier_patch():
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(texture(256, 256, 3), (0, 0), 3).astype(np.float32) + rng.normal(0, 2, (256, 256, 3))
    img[64:192, 64:192] += rng.normal(0, 8, (128, 128, 3))  # a patch with another camera's grain
    view = compute_view("noise_level", np.clip(img, 0, 255).astype(np.uint8))
    assert view.data[80:176, 80:176].mean() > 0.8 and view.data[:48, :48].mean() < 0.6
    residual = compute_view("noise_residual", np.clip(img, 0, 255).astype(np.uint8))
    assert residual.data[80:176, 80:176].mean() > 1.5 * residual.data[:48, :48].mean()


def _cloned(angle: float = 15.0, scale: float = 1.1):
    img = scene(600, 800, 3)
    patch = img[100:260, 100:260].copy()
    m = cv2.getRotationMatrix2D((80, 80), angle, scale)
    m[:, 2] += [500 - 80, 380 - 80]
    warped = cv2.warpAffine(patch, m, (800, 600))
    mask = cv2.warpAffine(np.ones((160, 160), np.uint8), m, (800, 600))
    out = img.copy()
    out[mask > 0] = warped[mask > 0]
    return img, out


def _inside(points, x0, y0, x1, y1):
    pts = np.asarray(points)
    return np.mean((pts[:, 0] >= x0) & (pts[:, 0] < x1) & (pts[:, 1] >= y0) & (pts[:, 1] < y1))


def test_copy_move_rotated_and_scaled_is_found_and_linked_to_its_source():
    clean, forged = _cloned()
    view = compute_view("copy_move", forged)
    clusters = view.extras["clusters"]
    assert len(clusters) == 1
    c = clusters[0]
    assert c["inliers"] >= 12
    ends = [c["points_a"], c["points_b"]]
    source = max(ends, key=lambda p: _inside(p, 100, 100, 260, 260))
    target = ends[1] if source is ends[0] else ends[0]
    assert _inside(source, 100, 100, 260, 260) > 0.9
    assert _inside(target, 400, 290, 600, 470) > 0.9
    # The transform is a 15° rotation and a 1.1× scale (or its inverse, A and B being symmetric).
    rot, sc = abs(c["rotation_deg"]), c["scale"]
    assert rot == pytest.approx(15, abs=1.0)
    assert sc == pytest.approx(1.1, abs=0.03) or sc == pytest.approx(1 / 1.1, abs=0.03)
    assert view.kind == "rgb" and view.data.shape == forged.shape
    assert compute_view("copy_move", clean).extras["clusters"] == []


def test_gradient_and_registry_contract():
    rgb = texture(64, 80, 9)
    for name, spec in VIEWS.items():
        view = compute_view(name, rgb)
        assert view.explanation and "Limits" in view.explanation, name
        if spec.kind == "map":
            assert view.data.shape == (64, 80) and view.data.dtype == np.float32
            assert np.isfinite(view.data).all() and view.data.min() >= 0 and view.data.max() <= 1
        else:
            assert view.data.shape == (64, 80, 3) and view.data.dtype == np.uint8
    flat = compute_view("luminance_gradient", np.full((32, 32, 3), 100, np.uint8)).data
    assert (flat[..., 2] == 0).all() and np.all(np.abs(flat[..., :2].astype(int) - 127) <= 1)


def test_bad_requests_are_refused_clearly():
    with pytest.raises(ValueError, match="unknown view 'nope'"):
        compute_view("nope", texture(16, 16, 0))
    with pytest.raises(ValueError, match="H×W×3 uint8"):
        compute_view("ela", np.zeros((16, 16), np.uint8))
    with pytest.raises(ValueError, match="1…100"):
        compute_view("ela", texture(16, 16, 0), quality=0)
    tiny = compute_view("jpeg_grid", texture(8, 8, 0))
    assert not tiny.data.any()


def test_block_dct_matches_opencv():
    from declip_desktop.forensics.dct_maps import block_dct

    y = (np.random.default_rng(0).random((24, 32)) * 255).astype(np.uint8)
    ref = cv2.dct(y[8:16, 16:24].astype(np.float32) - 128.0).ravel()
    assert np.allclose(block_dct(y)[1, 2], ref, atol=1e-3)
    assert np.allclose(block_dct(y, coefficients=[1, 8])[1, 2], ref[[1, 8]], atol=1e-3)
    shifted = block_dct(y, offset=(3, 5))
    assert shifted.shape == (2, 3, 64)
    assert np.allclose(shifted[0, 0], cv2.dct(y[5:13, 3:11].astype(np.float32) - 128.0).ravel(), atol=1e-3)


@pytest.mark.parametrize("angle, scale, quality", [(90, 0.8, None), (45, 0.8, None), (15, 1.1, 75)])
def test_copy_move_survives_other_rotations_scales_and_recompression(angle, scale, quality):
    _, forged = _cloned(angle, scale)
    if quality:
        forged = decode(jpeg_bytes(forged, quality))
    (c,) = compute_view("copy_move", forged).extras["clusters"]
    rot = abs(c["rotation_deg"]) % 360
    assert min(abs(rot - angle), abs(rot - (360 - angle) % 360)) < 1.5
    assert c["scale"] == pytest.approx(scale, abs=0.03) or c["scale"] == pytest.approx(1 / scale, abs=0.03)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_ops_match_pillow(orientation):
    from PIL import ImageOps

    from declip_desktop.forensics.orientation import to_display, to_file

    arr = (np.random.default_rng(orientation).random((5, 7, 3)) * 255).astype(np.uint8)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "PNG", exif=exif.tobytes())
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue()))).convert("RGB"))
    assert np.array_equal(to_display(arr, orientation), upright)
    assert np.array_equal(to_file(upright, orientation), arr)


def test_grid_views_run_on_the_stored_pixels_of_a_rotated_jpeg(tmp_path):
    """A 180°-tagged JPEG whose size is no multiple of 8: upright, its grid looks shifted; the view
    must not claim a crop that never happened."""
    from declip_desktop.cases import Case
    from declip_desktop.examination import cached_view, import_and_examine

    img = Image.fromarray(texture(253, 317, 4))
    exif = img.getexif()
    exif[0x0112] = 3
    src = tmp_path / "turned.jpg"
    img.save(src, "JPEG", quality=50, exif=exif.tobytes())
    naive = compute_view("jpeg_grid", np.asarray(Image.open(src).rotate(180)))  # what upright pixels suggest
    assert naive.extras["cropped_after_compression"]
    with Case.create(tmp_path / "case", number="1", title="t", analyst="A") as case:
        report, _ = import_and_examine(case, [src])
        view = cached_view(case, report.imported[0].id, "jpeg_grid")
        assert view.extras["grid_offset"] == [0, 0] and not view.extras["cropped_after_compression"]
        assert view.data.shape == (253, 317)
        ela = cached_view(case, report.imported[0].id, "ela")
        assert ela.data.shape == (253, 317)
