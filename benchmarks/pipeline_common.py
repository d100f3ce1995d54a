"""Shared by benchmarks/pipeline.py and benchmarks/first_result.py: synthetic 12 MP photos,
the seeded full-size ViT-L/14 model, phase timers, and the machine line."""

from __future__ import annotations

import atexit
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

PHOTO_SIZE = (4000, 3000)  # 12 MP, landscape


def scratch_dir(prefix: str) -> Path:
    """A new folder in the temporary directory, removed when the benchmark exits, also after an
    exception, Ctrl+C or SIGTERM (turned into an ordinary exit). The photos and installed models
    are gigabytes. A folder given with --workdir is the caller's and is kept."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    atexit.register(shutil.rmtree, path, onerror=lambda _f, p, exc: print(f"could not remove {p}: {exc[1]}"))
    return path


def make_photos(folder: Path, count: int, size: tuple[int, int] = PHOTO_SIZE, seed: int = 23) -> list[Path]:
    """Photo-like JPEGs (smooth shading, edges, texture and sensor noise; quality 90, ~3 MB),
    each different, so the decoder and the map encoder see realistic work."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    small = (w // 8, h // 8)
    out = []
    for i in range(count):
        path = folder / f"photo{i:03d}.jpg"
        if not path.exists():
            rng = np.random.default_rng(seed + i)
            yy, xx = np.mgrid[0:small[1], 0:small[0]].astype(np.float32)
            base = np.stack([128 + 90 * np.sin(xx / (40 + 7 * c) + yy / (55 + 5 * c) + rng.uniform(0, 6))
                             for c in range(3)], -1)
            for _ in range(12):  # objects with hard edges
                x0, y0 = rng.integers(0, small[0] - 40), rng.integers(0, small[1] - 40)
                base[y0:y0 + rng.integers(20, 150), x0:x0 + rng.integers(20, 150)] = rng.uniform(0, 255, 3)
            img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).resize(size, Image.BICUBIC)
            arr = np.asarray(img, dtype=np.int16) + rng.normal(0, 6, (h, w, 3)).astype(np.int16)
            Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=90)
        out.append(path)
    return out


def seeded_vit_model(home: Path, seed: int = 20251201):
    """Full-size ViT-L/14 layer20 conv-20 with seeded random weights, installed under `home`
    (built once; the weights' values do not change the timing)."""
    import torch

    from declip_desktop.modelstore.store import ModelStore

    models = home / "models"
    if (models / "bench-vit.json").is_file():
        return ModelStore(models, bundled=None).get("bench-vit")
    from benchmarks.engine import install
    from declip_desktop.engine.networks import NetSpec, build_network

    torch.manual_seed(seed)
    return install(build_network(NetSpec("ViT-L/14", "layer20", "conv-20")), home)


class Phases:
    """Wall seconds per named phase, summed over calls (thread-safe enough: += on floats under
    the GIL), plus call counts."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] += seconds
        self.calls[name] += 1

    def wrap(self, owner, attr: str, name: str):
        """Time every call of `owner.attr` (a module function or an instance/class attribute);
        returns a function that puts the original back."""
        inner = getattr(owner, attr)
        had_own = attr in vars(owner)

        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - t)

        setattr(owner, attr, timed)

        def restore() -> None:
            if had_own:
                setattr(owner, attr, inner)
            else:
                delattr(owner, attr)

        return restore


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, torch {torch.__version__}, "
            f"1-min load average {load:.1f}")
