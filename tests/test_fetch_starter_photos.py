"""scripts/fetch_starter_photos.py: reading the photo out of a jigzo puzzle file (no network, no apt)."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fetch_starter_photos.py"


@pytest.fixture(scope="module")
def fetcher():
    spec = importlib.util.spec_from_file_location("fetch_starter_photos", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, quality=95) if fmt == "JPEG" else image.save(buf, fmt)
    return buf.getvalue()


def _puzzle(photo: Image.Image, texture_side: int = 128) -> bytes:
    """A .pzl laid out like jigzo's: header, JPEG thumbnail, PNG piece masks, JPEG texture last."""
    texture = Image.new("RGB", (texture_side, texture_side), (0, 0, 0))
    texture.paste(photo, (0, 0))
    header = (f"PzlF\n0.1\ntest-2x2\nhttp://example.invalid/\ntest.map\n12\n#texture map data\n"
              f"crop000 0 0 10 10 5 5 0 0 0 0\nimage 0 0 {photo.width} {photo.height} 1 1    \ntest-t.jpg\n100\n")
    return (header.encode("latin-1") + _encoded(photo.resize((16, 12)), "JPEG")
            + _encoded(Image.new("RGBA", (32, 32)), "PNG") + b"test.jpg\n1\n" + _encoded(texture, "JPEG"))


def test_puzzle_photo_is_the_top_left_of_the_last_jpeg(fetcher):
    rng = np.random.default_rng(0)
    photo = Image.fromarray(np.kron(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8), np.ones((10, 10, 1), np.uint8)))
    out = fetcher._puzzle_photo(_puzzle(photo), "test-2x2")
    assert out.size == photo.size == (80, 60)
    # JPEG round trip (chroma subsampling of random colour blocks costs ~7 levels): the photo,
    # not the black texture around it (~120 levels away).
    assert np.abs(np.asarray(out, float) - np.asarray(photo, float)).mean() < 15


def test_puzzle_without_a_photo_is_a_clear_error(fetcher):
    with pytest.raises(SystemExit, match="not the expected puzzle format"):
        fetcher._puzzle_photo(b"PzlF\n0.1\nno image line\n", "broken")
    claims_more = _puzzle(Image.new("RGB", (100, 60), (90, 120, 30))).replace(b"image 0 0 100 60", b"image 0 0 300 60")
    with pytest.raises(SystemExit, match="smaller than the photo"):
        fetcher._puzzle_photo(claims_more, "x")
