"""Probability maps on disk: float32 in [0, 1] as `.npy` or 16-bit PNG (value × 65535)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
from isal import isal_zlib

from declip_desktop.common.outputs import Protected, atomic_output


#: Rows converted per step: float64 temporaries stay a few MB even for a 200-megapixel map.
_ROWS_PER_STEP_PIXELS = 1 << 20


def to_uint16(prob_map: np.ndarray) -> np.ndarray:
    """value × 65535, rounded, in float64 (bit-exact for every float32 input), block by block."""
    src = np.asarray(prob_map)
    out = np.empty(src.shape, np.uint16)
    if src.ndim < 2 or src.size == 0:
        out[...] = (np.clip(src.astype(np.float64), 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
        return out
    step = max(1, _ROWS_PER_STEP_PIXELS // max(1, int(np.prod(src.shape[1:]))))
    for y in range(0, src.shape[0], step):
        block = np.clip(src[y:y + step].astype(np.float64), 0.0, 1.0)
        out[y:y + step] = (block * 65535.0 + 0.5).astype(np.uint16)
    return out


def from_uint16(levels: np.ndarray) -> np.ndarray:
    return (levels.astype(np.float32) / np.float32(65535.0)).astype(np.float32)


#: Deflate effort of stored maps (ISA-L's levels 0-3; 1 measured best, benchmarks/map_encoding.py).
PNG_DEFLATE_LEVEL = 1
#: IDAT chunk size: any size is valid PNG; bounded so a huge map never needs a chunk over 2 GB.
_IDAT_BYTES = 1 << 24


def encode_png16(prob_map: np.ndarray) -> bytes:
    """A 16-bit grayscale PNG of value × 65535 (`to_uint16`): lossless, read by any PNG reader.

    Written here rather than by OpenCV, which spent ~0.5 s CPU on a 12 MP map: every row uses
    PNG's Sub filter (a map resized from the network's is smooth along a row, so differences of
    neighbours are small) and deflate is ISA-L's (`isal`, a dependency already), block by block
    of rows, so no full-size intermediate is held. On a 12 MP map about a quarter of the CPU
    time and half the file size (docs/PERFORMANCE.md, benchmarks/map_encoding.py)."""
    src = np.asarray(prob_map)
    if src.ndim != 2 or src.size == 0:
        raise ValueError(f"a probability map to encode as a 16-bit PNG must be a non-empty 2-D array, "
                         f"got shape {src.shape}")
    height, width = src.shape
    deflate = isal_zlib.compressobj(PNG_DEFLATE_LEVEL)
    step = max(1, _ROWS_PER_STEP_PIXELS // width)
    parts = []
    for y in range(0, height, step):
        be = to_uint16(src[y:y + step]).astype(">u2").view(np.uint8)  # big-endian bytes, 2 per pixel
        rows = np.empty((be.shape[0], 2 * width + 1), np.uint8)
        rows[:, 0] = 1  # filter type Sub: each byte minus the byte one pixel (2 bytes) to the left, mod 256
        rows[:, 1:3] = be[:, :2]
        np.subtract(be[:, 2:], be[:, :-2], out=rows[:, 3:])
        parts.append(deflate.compress(rows))
    parts.append(deflate.flush())
    stream = b"".join(parts)
    out = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0))]
    out += [_chunk(b"IDAT", stream[i:i + _IDAT_BYTES]) for i in range(0, len(stream), _IDAT_BYTES)]
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


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


def save_map(path: str | Path, prob_map: np.ndarray, *, force: bool = False,
             protect: Protected | Iterable[str | Path] = ()) -> Path:
    """Write `.npy` (exact float32) or `.png` (16-bit) depending on the suffix.

    Through `common.outputs.atomic_output`: never over an existing file unless `force`, never
    over a protected file (the input images), into a case or through a symbolic link."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".png"):
        raise ValueError(f"{path}: probability maps are saved as .npy or .png")
    prob_map = np.asarray(prob_map)
    with atomic_output(path, force=force, protect=protect, needed=prob_map.size * (4 if suffix == ".npy" else 2),
                       what="map") as tmp:
        with open(tmp, "wb") as fh:
            if suffix == ".npy":
                # Header, then the bytes through Python's file object: np.save's tofile() reports a
                # full disk as a bare "N requested and M written", without ENOSPC.
                arr = np.ascontiguousarray(prob_map, dtype=np.float32)
                np.lib.format.write_array_header_1_0(fh, np.lib.format.header_data_from_array_1_0(arr))
                fh.write(memoryview(arr).cast("B"))
            else:
                fh.write(encode_png16(prob_map))
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
