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


class AnalysisStopped(Exception):
    """A long analysis (a tiled map: many forward passes per image) stopped between two batches
    because the user asked; nothing of the image in progress was stored."""


__all__ = ["AnalysisStopped", "DeviceUnavailable", "OutOfDeviceMemory"]
