"""Reading PyTorch files safely: the authors' pickles and OpenAI's CLIP weights.

Pickles are only ever read with `torch.load(..., weights_only=True)`, so a file that tries to
run code is refused before anything runs. TorchScript (which is code) is loaded only for
OpenAI's two published CLIP files, recognised by their SHA-256. Every refusal is a
`ModelError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import gc
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch

from declip_desktop.common.hashing import sha256_file
from declip_desktop.common.model_card import ModelError
from declip_desktop.common.progress import StepProgress
from declip_desktop.engine import networks as nets

#: OpenAI's published CLIP archives (SHA-256 = second-to-last segment of the download URL).
OPENAI_CLIP_SHA256 = {
    "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836": "ViT-L/14",
    "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762": "RN50",
}
OPENAI_FILE_NAMES = {"ViT-L/14": "ViT-L-14.pt", "RN50": "RN50.pt"}

MAX_LISTED = 8  # keys named per category in an error message

#: Import progress: `progress(0, 0, stage)`, one short human-readable stage at a time.
Progress = StepProgress | None

# ---------------------------------------------------------------------- reading files


def read_torch_file(path: Path, what: str = "checkpoint"):
    """`torch.load` with weights_only=True (memory-mapped when the format allows)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{what} {path} does not exist")
    if path.stat().st_size == 0:
        raise ModelError(f"{path} is empty: not a PyTorch {what}")
    is_zip = zipfile.is_zipfile(path)
    if is_zip:
        check_zip_members(path, what)
    try:
        # mmap works only for the zip format (torch ≥ 1.6); older pickles are read plainly.
        return torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except Exception as exc:  # noqa: BLE001 - torch raises many types; each is turned into one clear error
        raise _explain_load_error(path, exc, what) from None


def check_zip_members(path: Path, what: str = "checkpoint") -> None:
    """Refuse a zip-format torch file whose members are compressed or fail their CRC.

    PyTorch writes every member stored (uncompressed), and `torch.load(mmap=True)` maps the
    member's bytes as they lie in the file: a deflated member becomes "tensors" made of
    compressed bytes (values up to 1e38), a corrupted one tensors of corrupted bytes. Both
    would install and produce garbage, so they are refused here, before anything is read.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            packed = [i.filename for i in infos if i.compress_type != zipfile.ZIP_STORED]
            if packed:
                raise ModelError(
                    f"{path} was refused: {len(packed)} of its zip members are compressed ({list_names(packed)}); "
                    f"PyTorch stores a {what}'s tensors uncompressed, so this file was repacked or forged and would "
                    "load as garbage. Nothing was installed. Use the original file")
            bad = zf.testzip()  # reads every member and checks its CRC-32
    except zipfile.BadZipFile as exc:
        raise ModelError(f"{path} is a damaged zip archive ({exc}); nothing was installed. Download it again") from None
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None
    if bad is not None:
        raise ModelError(
            f"{path} was refused: its zip member {bad} fails its CRC-32 check (the bytes were changed or damaged "
            "after the file was written). Nothing was installed. Download the file again")


#: Tensor types a float network can hold (BatchNorm's step counter is the one integer tensor).
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def check_values(tensors: Mapping[str, torch.Tensor], where: Callable[[str], str], source: Path) -> None:
    """Refuse weights of a type a float network cannot use, or holding NaN/Inf, naming them."""
    wrong_type, non_finite = [], []
    for key, tensor in tensors.items():
        if key.endswith(".num_batches_tracked"):
            if tensor.dtype not in _INT_DTYPES:
                wrong_type.append(f"{where(key)} is {str(tensor.dtype).removeprefix('torch.')}, expected an integer")
            continue
        if tensor.dtype not in _FLOAT_DTYPES:
            wrong_type.append(f"{where(key)} is {str(tensor.dtype).removeprefix('torch.')}, expected floating point")
            continue
        bad = int((~torch.isfinite(tensor)).sum()) if tensor.numel() else 0
        if bad:
            non_finite.append(f"{where(key)} ({bad} of {tensor.numel()})")
    if wrong_type:
        raise ModelError(f"{source} was refused: weights of a type a DeCLIP network cannot use: {list_names(wrong_type)}. "
                         "Nothing was installed")
    if non_finite:
        raise ModelError(f"{source} was refused: weights holding NaN or infinite values: {list_names(non_finite)}. "
                         "The file is damaged; nothing was installed")


def _explain_load_error(path: Path, exc: Exception, what: str) -> ModelError:
    text = str(exc)
    glob = re.search(r"GLOBAL ([\w.]+)", text)
    if glob:
        return ModelError(
            f"{path} was refused: loading it would import and call `{glob.group(1)}`, i.e. run code, "
            f"which a weights file never needs. Nothing from it was executed. Get the {what} from a trusted source"
        )
    if "central directory" in text or "failed reading zip archive" in text or isinstance(exc, EOFError):
        return ModelError(f"{path} is truncated or corrupted (incomplete download?): {text.splitlines()[0] if text else type(exc).__name__}. Download it again")
    if "Unsupported operand" in text or "invalid load key" in text or "Weights only load failed" in text:
        return ModelError(f"{path} is not a PyTorch {what} (unreadable as weights; nothing from it was executed)")
    return ModelError(f"{path} cannot be read as a PyTorch {what}: {type(exc).__name__}: {text.splitlines()[0] if text else ''}")


def is_torchscript_archive(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("constants.pkl") or "/code/" in n for n in names)


def tensor_dict(obj, path: Path, what: str) -> dict[str, torch.Tensor]:
    if not isinstance(obj, Mapping):
        raise ModelError(f"{path} is not a {what}: it holds a {type(obj).__name__}, not a dictionary of tensors")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ModelError(f"{path}: entries that are not tensors: {list_names(bad)}")
    return dict(obj)


def list_names(keys: Iterable, limit: int = MAX_LISTED) -> str:
    keys = [str(k) for k in keys]
    shown = ", ".join(keys[:limit])
    return shown + (f" … and {len(keys) - limit} more" if len(keys) > limit else "")


# ---------------------------------------------------------------------- OpenAI CLIP weights


def read_clip_weights(path: Path, progress: Progress = None) -> tuple[str, dict[str, torch.Tensor], str]:
    """(role "ViT-L/14"|"RN50", `visual.*` state dict, SHA-256) of an OpenAI CLIP weights file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"CLIP weights file {path} does not exist")
    say(progress, f"hashing {path.name}")
    sha = sha256_file(path)
    if is_torchscript_archive(path):
        if sha not in OPENAI_CLIP_SHA256:
            raise ModelError(
                f"{path} is a TorchScript archive (which can run code) but its SHA-256 {sha} is not one of OpenAI's "
                f"published CLIP files ({', '.join(OPENAI_FILE_NAMES.values())}); refusing to load it. "
                "Use the original OpenAI file, or a plain state dict saved with torch.save(model.state_dict())"
            )
        say(progress, f"reading {path.name} (OpenAI TorchScript archive)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "TorchScript is deprecated": OpenAI's format
            module = torch.jit.load(str(path), map_location="cpu")
        state = {k: v for k, v in module.state_dict().items() if k.startswith("visual.")}
        del module
        gc.collect()
    else:
        obj = read_torch_file(path, what="CLIP weights file")
        if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
            obj = obj["state_dict"]
        state = tensor_dict(obj, path, "CLIP state dict")
        state = {k: v for k, v in state.items() if k.startswith("visual.")}
    if "visual.proj" in state or any(k.startswith("visual.transformer.") for k in state):
        role = nets.VIT
    elif any(k.startswith("visual.layer1.") for k in state):
        role = nets.RN50
    else:
        raise ModelError(f"{path} holds no CLIP image encoder (no visual.transformer.* or visual.layer1.* weights)")
    return role, state, sha


def say(progress: Progress, message: str) -> None:
    """Report an import stage (no count: `total` 0, see `common.progress.StepProgress`)."""
    if progress is not None:
        progress(0, 0, message)
