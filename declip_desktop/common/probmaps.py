"""Probability maps on disk: float32 in [0, 1] as `.npy` or 16-bit PNG (value × 65535)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def to_uint16(prob_map: np.ndarray) -> np.ndarray:
    return (np.clip(np.asarray(prob_map, dtype=np.float64), 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)


def from_uint16(levels: np.ndarray) -> np.ndarray:
    return (levels.astype(np.float32) / np.float32(65535.0)).astype(np.float32)


def encode_png16(prob_map: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", to_uint16(prob_map))
    if not ok:
        raise ValueError("could not encode the probability map as a 16-bit PNG")
    return buf.tobytes()


def decode_png16(data: bytes) -> np.ndarray:
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ValueError("not a PNG probability map")
    return read_levels(arr)


def read_levels(arr: np.ndarray) -> np.ndarray:
    """Map an 8- or 16-bit grayscale array to float32 [0, 1]."""
    if arr.ndim == 3:
        arr = arr[:, :, 0]
    if arr.dtype == np.uint16:
        return from_uint16(arr)
    if arr.dtype == np.uint8:
        return (arr.astype(np.float32) / np.float32(255.0)).astype(np.float32)
    raise ValueError(f"unsupported map dtype {arr.dtype}")


def save_map(path: str | Path, prob_map: np.ndarray) -> Path:
    """Write `.npy` (exact float32) or `.png` (16-bit) depending on the suffix."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        np.save(path, np.asarray(prob_map, dtype=np.float32))
    elif path.suffix.lower() == ".png":
        path.write_bytes(encode_png16(prob_map))
    else:
        raise ValueError(f"{path}: probability maps are saved as .npy or .png")
    return path


def load_map(path: str | Path) -> np.ndarray:
    """Read a `.npy` float map or an 8/16-bit PNG map as float32 [0, 1]."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        arr = np.load(path, allow_pickle=False)
        if arr.ndim != 2:
            raise ValueError(f"{path}: expected a 2-D map, got shape {arr.shape}")
        return arr.astype(np.float32)
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ValueError(f"{path}: not a readable PNG map")
    return read_levels(arr)
