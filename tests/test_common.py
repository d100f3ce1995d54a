"""The common layer: image decoding rules, map files and regions that every layer relies on."""

import io

import numpy as np
import pytest
from PIL import Image

from declip_desktop.common import images, probmaps, regions


def _png_bytes(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif.tobytes())
    arr = images.load_rgb(path)
    assert arr.shape == (40, 20, 3)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK", "I;16"])
def test_every_mode_becomes_8bit_rgb(tmp_path, mode):
    if mode == "I;16":
        img = Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16))
        fmt, ext = "PNG", "png"
    else:
        img = Image.new("RGB", (8, 8), (200, 100, 50)).convert(mode)
        fmt, ext = ("TIFF", "tif") if mode == "CMYK" else ("PNG", "png")
    path = tmp_path / f"img.{ext}"
    img.save(path, fmt)
    arr = images.load_rgb(path)
    assert arr.dtype == np.uint8 and arr.shape == (8, 8, 3)
    if mode == "I;16":
        assert arr.min() == 255  # full-scale 16-bit white stays white


def test_transparent_pixels_are_composited_on_white():
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    arr = images.load_rgb(img)
    assert (arr == 255).all()


def test_truncated_image_is_refused(tmp_path):
    data = _png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(images.ImageError, match="truncated|corrupt"):
        images.load_rgb(path)


def test_empty_non_image_and_missing_files_are_refused_with_reasons(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    broken = tmp_path / "link.jpg"
    broken.symlink_to(tmp_path / "nowhere.jpg")
    with pytest.raises(images.ImageError, match="empty"):
        images.probe_image(empty)
    with pytest.raises(images.ImageError, match="not an image"):
        images.probe_image(text)
    with pytest.raises(images.ImageError, match="broken symbolic link"):
        images.probe_image(broken)


def test_pixel_limit_guards_against_decompression_bombs(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (300, 300)).save(path)
    with pytest.raises(images.ImageError, match="decompression bomb"):
        images.load_rgb(path, max_pixels=50_000)


def test_png16_map_round_trip_is_within_one_level(tmp_path):
    prob = np.random.default_rng(1).random((33, 47)).astype(np.float32)
    probmaps.save_map(tmp_path / "m.png", prob)
    back = probmaps.load_map(tmp_path / "m.png")
    assert back.shape == prob.shape and back.dtype == np.float32
    assert np.abs(back - prob).max() <= 0.5 / 65535 + 1e-7


def test_regions_report_area_bbox_and_scores():
    prob = np.zeros((100, 200), np.float32)
    prob[10:30, 20:60] = 0.9  # 800 px
    prob[50:55, 100:105] = 0.6  # 25 px
    prob[52, 102] = 0.8
    found = regions.find_regions(prob, 0.5)
    assert [r.area_px for r in found] == [800, 25]
    big, small = found
    assert big.bbox == (20, 10, 40, 20)
    assert big.area_pct == pytest.approx(4.0)
    assert small.max_score == pytest.approx(0.8)
    assert small.mean_score == pytest.approx((24 * 0.6 + 0.8) / 25)
    assert regions.find_regions(prob, 0.95) == []
