"""Reading a `.safetensors` header and writing small text files atomically — no torch.

Split from `modelstore.weights_file` (which writes tensors and so imports torch) so that the
model store (`modelstore.store`: listing, verifying, the default model), the GUI and
`declip models verify` can check weights files without importing torch. The format
(https://huggingface.co/docs/safetensors): 8-byte little-endian header length, a JSON header
(name → dtype, shape, byte offsets; plus `__metadata__`), then the raw tensor bytes.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from declip_desktop.common.outputs import disk_full_as_error, fsync_dir


class WeightsFileError(ValueError):
    """A `.safetensors` file that cannot be read (truncated, not safetensors, a lying header)."""


def write_text_atomic(path: str | Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with disk_full_as_error(path.parent, len(text.encode("utf-8"))), open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_dir(path.parent)


#: safetensors dtype → bytes per element (the format's full list).
DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8, "C64": 8}
_MAX_HEADER = 100_000_000


@dataclass(frozen=True)
class TensorInfo:
    dtype: str  # safetensors name: "F32", "I64", …
    shape: tuple[int, ...]
    begin: int  # byte offsets into the data area
    end: int


def read_index(path: str | Path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Every tensor's dtype, shape and byte range, plus the metadata, from the header alone.

    Every way the header can lie is a `WeightsFileError` naming the file and the problem, never
    a TypeError, KeyError or RecursionError: not a JSON object, an entry without a dtype, shape
    or offsets, negative or non-integer sizes, offsets past the end of the file or overlapping,
    a byte range that does not match shape × dtype, invalid UTF-8, duplicate names, nesting.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise WeightsFileError(f"{path} is too short to be a safetensors file ({size} bytes)")
            (length,) = struct.unpack("<Q", raw)
            if length < 2 or length > min(size - 8, _MAX_HEADER):
                raise WeightsFileError(
                    f"{path} is not a safetensors file: its header length {length} does not fit a {size}-byte file")
            blob = fh.read(length)
    except OSError as exc:
        raise WeightsFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WeightsFileError(f"{path}: its header is not valid UTF-8 (byte {exc.start})") from None

    def no_duplicates(pairs):
        seen = {}
        for key, value in pairs:
            if key in seen:
                raise WeightsFileError(f"{path}: its header names {key!r} twice")
            seen[key] = value
        return seen

    try:
        header = json.loads(text, object_pairs_hook=no_duplicates)
    except RecursionError:
        raise WeightsFileError(f"{path}: its header is nested too deeply to be a safetensors header") from None
    except ValueError as exc:
        if isinstance(exc, WeightsFileError):
            raise
        raise WeightsFileError(f"{path}: its header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise WeightsFileError(f"{path}: its header is a JSON {type(header).__name__}, not an object of tensors")
    metadata = header.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise WeightsFileError(f"{path}: its __metadata__ must map names to text")
    data_size = size - 8 - length
    index: dict[str, TensorInfo] = {}
    for name, info in header.items():
        index[name] = _tensor_info(path, name, info, data_size)
    spans = sorted((t.begin, t.end, n) for n, t in index.items() if t.end > t.begin)
    for (_, end_a, a), (begin_b, _, b) in zip(spans, spans[1:]):
        if begin_b < end_a:
            raise WeightsFileError(f"{path}: tensors {a} and {b} claim overlapping bytes")
    return index, metadata


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _tensor_info(path: Path, name: str, info, data_size: int) -> TensorInfo:
    where = f"{path}: tensor {name!r}"
    if not isinstance(info, dict):
        raise WeightsFileError(f"{where} is described by a {type(info).__name__}, not an object")
    for key in ("dtype", "shape", "data_offsets"):
        if key not in info:
            raise WeightsFileError(f"{where} has no {key!r}")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
        raise WeightsFileError(f"{where} has an unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise WeightsFileError(f"{where} has an invalid shape {shape!r} (a list of sizes ≥ 0 is needed)")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]):
        raise WeightsFileError(f"{where} has invalid data_offsets {offsets!r}")
    begin, end = offsets
    if end > data_size:
        raise WeightsFileError(
            f"{where} ends at byte {end} of the data, but the file holds only {data_size} data bytes "
            "(truncated or forged)")
    numel = 1
    for d in shape:
        numel *= d
    if end - begin != numel * DTYPE_SIZES[dtype]:
        raise WeightsFileError(
            f"{where}: shape {shape} of {dtype} needs {numel * DTYPE_SIZES[dtype]} bytes, its offsets span {end - begin}")
    return TensorInfo(dtype, tuple(shape), begin, end)


def read_header(path: str | Path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """Tensor shapes and metadata of a `.safetensors` file, reading only its (validated) header."""
    index, metadata = read_index(path)
    return {name: t.shape for name, t in index.items()}, metadata
