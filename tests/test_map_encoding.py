"""The 16-bit PNG of a stored map (common.probmaps.encode_png16, written without OpenCV):
lossless for every level, read by OpenCV and Pillow alike, any shape, several IDAT chunks."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from declip_desktop.common import probmaps
from declip_desktop.common.probmaps import decode_png16, encode_png16, to_uint16


def _both_readers(png: bytes) -> tuple[np.ndarray, np.ndarray]:
    ocv = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    pil = Image.open(io.BytesIO(png))
    pil.load()
    return ocv, np.asarray(pil).astype(np.uint16)


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (7, 1), (3, 5), (97, 131), (2, 70_000)])
def test_every_level_reads_back_exactly(shape):
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    m = rng.random(shape, np.float32)
    m.flat[0], m.flat[-1] = 0.0, 1.0
    png = encode_png16(m)
    ocv, pil = _both_readers(png)
    assert ocv.dtype == np.uint16 and np.array_equal(ocv, to_uint16(m)) and np.array_equal(pil, to_uint16(m))
    assert np.array_equal(decode_png16(png), probmaps.from_uint16(to_uint16(m)))


def test_all_65536_levels_and_out_of_range_values_are_kept(monkeypatch):
    monkeypatch.setattr(probmaps, "_ROWS_PER_STEP_PIXELS", 1000)  # many row blocks through one stream
    levels = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    m = probmaps.from_uint16(levels)
    m[0, :3] = (-0.5, 1.5, 1.0)  # clipped, as before
    ocv, pil = _both_readers(encode_png16(m))
    expected = levels.copy()
    expected[0, :3] = (0, 65535, 65535)
    assert np.array_equal(ocv, expected) and np.array_equal(pil, expected)


def test_a_large_stream_is_split_into_several_idat_chunks(monkeypatch):
    monkeypatch.setattr(probmaps, "_IDAT_BYTES", 1000)
    m = np.random.default_rng(1).random((300, 200), np.float32)
    png = encode_png16(m)
    assert png.count(b"IDAT") > 5
    ocv, pil = _both_readers(png)
    assert np.array_equal(ocv, to_uint16(m)) and np.array_equal(pil, to_uint16(m))


def test_a_smooth_map_is_smaller_than_opencvs(monkeypatch):
    small = np.random.default_rng(2).random((32, 32), np.float32)
    m = cv2.resize(small, (640, 480), interpolation=cv2.INTER_LINEAR)  # like a map resized to a photo
    ok, theirs = cv2.imencode(".png", to_uint16(m))
    assert ok and len(encode_png16(m)) < 0.8 * theirs.size


@pytest.mark.parametrize("bad", [np.zeros((0, 4), np.float32), np.zeros((4, 4, 3), np.float32), np.zeros(5)])
def test_not_a_map_is_refused_with_its_shape(bad):
    with pytest.raises(ValueError, match="non-empty 2-D array, got shape"):
        encode_png16(bad)
