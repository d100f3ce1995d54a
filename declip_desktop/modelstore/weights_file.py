"""Writing and inspecting `.safetensors` files without holding a second copy of the weights.

The writer streams tensor by tensor to a temporary file beside the target, fsyncs it
and renames it into place, so a crash never leaves a half-written model under the
final name, and importing a 1.9 GB checkpoint never needs the weights twice in memory.
The format (https://huggingface.co/docs/safetensors): 8-byte little-endian header
length, a JSON header (name → dtype, shape, byte offsets; plus `__metadata__`), then
the raw little-endian tensor bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path

from declip_desktop.common.outputs import disk_full_as_error, fsync_dir

_DTYPES = {
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "float64": "F64",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
}


def write_safetensors(path: str | Path, tensors: Mapping, metadata: Mapping[str, str] | None = None) -> str:
    """Write `tensors` (name → CPU torch tensor) atomically; return the file's SHA-256."""
    import torch

    path = Path(path)
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    order = sorted(tensors)  # deterministic files: same weights, same bytes, same hash
    for name in order:
        t = tensors[name]
        dtype = _DTYPES.get(str(t.dtype).removeprefix("torch."))
        if dtype is None:
            raise ValueError(f"cannot store tensor {name} of type {t.dtype}")
        size = t.numel() * t.element_size()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # the format pads the header to 8 bytes

    digest = hashlib.sha256()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with disk_full_as_error(path.parent, 8 + len(blob) + offset), open(tmp, "wb") as fh:
            for chunk in (struct.pack("<Q", len(blob)), blob):
                fh.write(chunk)
                digest.update(chunk)
            for name in order:
                t = tensors[name].detach().to("cpu").contiguous()
                if t.dtype == torch.bfloat16:  # numpy has no bfloat16: write its raw 16-bit pattern
                    t = t.view(torch.int16)
                data = memoryview(t.numpy()).cast("B") if t.numel() else b""
                fh.write(data)
                digest.update(data)
                del t, data
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_dir(path.parent)
    return digest.hexdigest()
