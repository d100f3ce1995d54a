"""On-disk cache of frozen-backbone features for decoder training.

DeCLIP trains only the decoder; the CLIP backbone is frozen and in eval mode, so its
output for a given input picture never changes. Computing it once and reading it back
makes every later epoch cost only the decoder.

A cached entry is valid only for exactly the same input, so its key covers everything
the features depend on: the image file's SHA-256, a hash of the backbone's weights, the
backbone/layer, the preprocessing version, the augmentation and variant (augmented
pictures are cached only as a fixed set of seeded variants, see `training.augment`), and
the storage dtype. Entries are `.npy` files written atomically; a file that is
truncated or has the wrong shape is treated as missing and recomputed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

#: Bump when the image → tensor preprocessing changes: old entries then stop matching.
PREPROCESS_VERSION = "pil-bilinear-224-clipnorm-v1"


def backbone_fingerprint(module: torch.nn.Module) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of a module's state dict."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        if t.dtype == torch.bfloat16:
            t = t.view(torch.int16)
        if t.numel():
            digest.update(memoryview(t.numpy()).cast("B"))
    return digest.hexdigest()


class FeatureCache:
    """Features of one backbone configuration, one file per (image, augmentation variant)."""

    def __init__(self, root: str | Path, backbone_id: str, shape: tuple[int, ...], dtype: str = "float32"):
        if dtype not in ("float32", "float16"):
            raise ValueError(f"cache dtype must be float32 or float16, got {dtype!r}")
        self.backbone_id = backbone_id
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.dir = Path(root) / hashlib.sha256(f"{backbone_id}|{PREPROCESS_VERSION}|{dtype}".encode()).hexdigest()[:24]
        self.dir.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0
        self.writes = 0

    def key(self, image_sha256: str, aug_key: str) -> str:
        return hashlib.sha256(f"{image_sha256}|{aug_key}".encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npy"

    def load(self, key: str) -> torch.Tensor | None:
        path = self._path(key)
        try:
            arr = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, ValueError):  # truncated or damaged: recompute it
            path.unlink(missing_ok=True)
            self.misses += 1
            return None
        if arr.shape != self.shape or arr.dtype != self.dtype:
            path.unlink(missing_ok=True)
            self.misses += 1
            return None
        self.hits += 1
        return torch.from_numpy(arr).float()

    def store(self, key: str, features: torch.Tensor) -> None:
        arr = features.detach().to("cpu").numpy().astype(self.dtype, copy=False)
        if arr.shape != self.shape:
            raise ValueError(f"features of shape {arr.shape}, expected {self.shape}")
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)
        os.replace(tmp, path)
        self.writes += 1

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.dir.rglob("*.npy"))
