"""Which torch device a Localizer runs on, and what counts as running out of its memory.

torch is imported inside the functions: importing this module (with the Localizer) stays torch-free.
"""

from __future__ import annotations

from declip_desktop.common.errors import DeviceUnavailable

DEVICES = ("auto", "cpu", "cuda", "mps")


def pick_device(requested: str = "auto") -> str:
    """Resolve `auto|cpu|cuda|mps` to a device this machine has (DeviceUnavailable otherwise)."""
    import torch

    requested = (requested or "auto").lower()
    if requested.startswith("cuda:"):
        base = "cuda"
    else:
        base = requested
    if base not in DEVICES:
        raise DeviceUnavailable(f"unknown device {requested!r}; use one of {', '.join(DEVICES)}")
    mps_ok = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if base == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if mps_ok else "cpu"
    if base == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable("device 'cuda' was requested but no CUDA GPU is available; use --device cpu")
    if base == "mps" and not mps_ok:
        raise DeviceUnavailable("device 'mps' was requested but Apple MPS is not available; use --device cpu")
    return requested


def is_oom(exc: BaseException) -> bool:
    import torch

    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", ())
    if oom_type and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


__all__ = ["DEVICES", "is_oom", "pick_device"]
