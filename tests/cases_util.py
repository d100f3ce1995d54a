"""Helpers for the tests of the cases layer and the analysis runner (tests/test_cases_*.py)."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from declip_desktop.common.errors import OutOfDeviceMemory


def noise_image(path: Path, size=(48, 40), seed=0, fmt=None, **save) -> Path:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, fmt, **save)
    return path


def jpeg_bytes(seed=0, size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def png_bomb_header(path: Path, width=100_000, height=100_000) -> Path:
    """A tiny PNG whose header claims 10 gigapixels (a decompression bomb's calling card)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                     + chunk(b"IEND", b""))
    return path


def corrupt_png(path: Path, seed=0) -> Path:
    """A PNG with flipped bytes in its compressed pixel data (chunk CRC no longer matches)."""
    noise_image(path, (64, 64), seed=seed)
    data = bytearray(path.read_bytes())
    idat = data.index(b"IDAT")
    for i in range(idat + 20, idat + 60):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


class Pred(SimpleNamespace):
    pass


class FakeLocalizer:
    """Stands in for engine.localizer.Localizer: the map is the image's mean-normalised red channel."""

    def __init__(self, name="fake-model", sha="f" * 64, batch_size=2, fail_names=(), oom_after=None, delay=0.0):
        self.card = SimpleNamespace(name=name, sha256=sha, kind="declip", demo=False, label="")
        self.model_sha256 = sha
        self.batch_size = batch_size
        self.device = "cpu"
        self.fast = False
        self.fail_names = set(fail_names)
        self.oom_after = oom_after
        self.calls = 0
        self.seen: list[str] = []
        self.delay = delay  # seconds per image, to look like a model at work

    @property
    def model_name(self):
        return self.card.name

    @property
    def card_snapshot(self):
        return {"name": self.card.name, "sha256": self.model_sha256, "kind": "declip", "backbone": "fake",
                "layer": None, "decoder": "red-channel", "training_set": None, "demo": False, "label": "",
                "software_version": "test"}

    def predict(self, images):
        self.calls += 1
        if self.oom_after is not None and self.calls > self.oom_after:
            raise OutOfDeviceMemory(self.device, "CUDA out of memory (fake)")
        out = []
        for p in images:
            time.sleep(self.delay)
            self.seen.append(str(p))
            arr = np.asarray(Image.open(p).convert("RGB"), dtype=np.float32)[:, :, 0] / 255.0
            err = "decoder exploded" if Path(p).name in self.fail_names else None
            out.append(Pred(source=p, prob_map=None if err else arr, score=float(arr.mean()),
                            model_name=self.card.name, model_sha256=self.model_sha256, seconds=0.01,
                            device="cpu", error=err, width=arr.shape[1], height=arr.shape[0]))
        return out
