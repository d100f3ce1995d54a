"""Errors that cross layers, recognised by type (never by class name).

The engine raises them (it owns the devices); `analysis` and the GUI catch them without
importing the engine, which would import torch.
"""

from __future__ import annotations


class OutOfDeviceMemory(RuntimeError):
    """The GPU/MPS device ran out of memory; retry with `device="cpu"` or a smaller batch."""

    def __init__(self, device: str, detail: str):
        super().__init__(
            f"the {device} device ran out of memory ({detail}). Retry on the CPU (device 'cpu') or with a smaller batch"
        )
        self.device = device


class DeviceUnavailable(ValueError):
    """The requested device does not exist on this machine."""


__all__ = ["DeviceUnavailable", "OutOfDeviceMemory"]
