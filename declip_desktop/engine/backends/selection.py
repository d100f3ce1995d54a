"""Which CPU back end runs a model: PyTorch (always there) or OpenVINO (the `fast` extra).

    auto      OpenVINO when it is installed (exact: fp32; fast: bf16 where the CPU has bf16
              instructions, else "int8dec": the ViT in fp32, the decoder in int8,
              `backends.hybrid`), PyTorch otherwise
    torch     PyTorch only (exact: fp32; fast: the int8 recipe `accelerate.FAST_RECIPE`)
    openvino  OpenVINO, or a clear error when it cannot run what was asked

The `DECLIP_CPU_BACKEND` environment variable sets the default for `Localizer(backend=None)`.
"""

from __future__ import annotations

import os

BACKENDS = ("auto", "torch", "openvino")
ENV = "DECLIP_CPU_BACKEND"


class BackendUnavailable(ValueError):
    """The back end that was asked for cannot run here; the message says why and what to do."""


def resolve(requested: str | None) -> str:
    """`requested` (or $DECLIP_CPU_BACKEND, or "auto"), checked against BACKENDS."""
    value = (requested or os.environ.get(ENV) or "auto").strip().lower()
    if value not in BACKENDS:
        source = "" if requested else f" (from ${ENV})"
        raise BackendUnavailable(f"unknown CPU back end {value!r}{source}; use one of {', '.join(BACKENDS)}")
    return value


def openvino_precision(requested: str | None, fast: bool) -> tuple[str | None, str | None]:
    """(the OpenVINO recipe to run, "f32" | "bf16" | "int8dec", or None for PyTorch; a message for the
    user or None). Raises BackendUnavailable when "openvino" was asked for and cannot serve."""
    from declip_desktop.engine.backends import openvino_cpu

    choice = resolve(requested)
    if choice == "torch":
        return None, None
    if openvino_cpu.version() is None:
        if choice == "openvino":
            raise BackendUnavailable(f"the OpenVINO back end is not installed: {openvino_cpu.INSTALL_HINT}")
        if fast:
            return None, ("Fast mode is running PyTorch's int8 recipe, which is about as fast as exact mode; "
                          f"for the faster bf16 fast mode install OpenVINO: {openvino_cpu.INSTALL_HINT}.")
        return None, None
    if not fast:
        return "f32", None
    if openvino_cpu.has_bf16():
        return "bf16", None
    from declip_desktop.engine import int8

    if int8.available():  # AVX2-only CPUs: measured faster than PyTorch's int8 recipe (docs/PERFORMANCE.md)
        return "int8dec", None
    message = ("This CPU has no bf16 instructions (AMX or AVX512-BF16) and this PyTorch no int8 kernels, "
               "which OpenVINO's fast modes need")
    if choice == "openvino":
        raise BackendUnavailable(message + "; run exact mode, or fast mode with the torch back end.")
    return None, message + "; fast mode is running PyTorch's recipe instead."
