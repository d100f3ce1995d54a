"""Which CPU back end runs a model: PyTorch (always there) or OpenVINO (the `fast` extra).

    auto      OpenVINO when it is installed (exact: the backbone in fp32, the decoder by Winograd
              convolutions in PyTorch; fast: bf16 where the CPU has AMX, else "int8dec" where it
              has VNNI: the decoder in int8, `backends.hybrid`; on AVX2 alone fast mode runs
              exact mode, which nothing measured there beat within the limits), PyTorch otherwise
    torch     PyTorch only (exact: fp32; fast: the int8 recipe `accelerate.FAST_RECIPE`)
    openvino  OpenVINO, or a clear error when it cannot run what was asked

The `DECLIP_CPU_BACKEND` environment variable sets the default for `Localizer(backend=None)`;
`DECLIP_OPENVINO_FAST` ("auto", "bf16" or "int8dec") overrides which OpenVINO fast recipe runs, for
a CPU where the other one measures faster (`benchmarks/engine.py --fast-candidates` times both).
"""

from __future__ import annotations

import os

BACKENDS = ("auto", "torch", "openvino")
ENV = "DECLIP_CPU_BACKEND"
FAST_ENV = "DECLIP_OPENVINO_FAST"
FAST_CHOICES = ("auto", "bf16", "int8dec")


#: What the user is told when fast mode runs exact mode because nothing is faster on this CPU.
NOTHING_FASTER = ("On this CPU (AVX2, without VNNI or AMX) no fast recipe measured faster than exact mode, "
                  "so fast mode runs exact mode (same results).")


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
    forced = _forced_fast_recipe()
    if forced == "bf16" and not openvino_cpu.has_bf16():
        raise BackendUnavailable(f"${FAST_ENV}=bf16, but this CPU has no bf16 instructions (AMX or AVX512-BF16); "
                                 f"unset {FAST_ENV} or set it to int8dec")
    from declip_desktop.engine import int8

    if forced == "int8dec" and not int8.available():
        raise BackendUnavailable(f"${FAST_ENV}=int8dec, but this PyTorch has no int8 kernels for this CPU; "
                                 f"unset {FAST_ENV} or set it to bf16")
    if forced:
        return forced, None
    bf16 = openvino_cpu.has_bf16()
    if bf16 and openvino_cpu.has_amx():  # AMX: bf16 measured 3.27× the authors' code (docs/PERFORMANCE.md)
        return "bf16", None
    # Without AMX, bf16 dot products run at about fp32's rate or slower (Zen 4: 1.10× exact; an
    # Intel Xeon with AVX512-BF16 only: 3.3× slower than int8dec), and with VNNI the int8 decoder
    # measured faster than direct fp32 convolutions (the Xeon: 1.55× against exact's 1.28×, before
    # exact mode's Winograd decoder). On AVX2 alone no int8 product beat fp32 (the AMD EPYC:
    # int8dec 1.25× the authors' code, exact mode with its Winograd decoder 1.47×), so fast mode
    # runs exact mode there (docs/PERFORMANCE.md).
    if int8.available() and openvino_cpu.has_vnni():
        return "int8dec", None
    if int8.available() and not bf16:
        return "f32", NOTHING_FASTER
    if bf16:
        return "bf16", None
    message = ("This CPU has no bf16 instructions (AMX or AVX512-BF16) and this PyTorch no int8 kernels, "
               "which OpenVINO's fast modes need")
    if choice == "openvino":
        raise BackendUnavailable(message + "; run exact mode, or fast mode with the torch back end.")
    return None, message + "; fast mode is running PyTorch's recipe instead."


def _forced_fast_recipe() -> str | None:
    """The fast recipe $DECLIP_OPENVINO_FAST asks for, or None for the automatic choice."""
    value = (os.environ.get(FAST_ENV) or "auto").strip().lower()
    if value not in FAST_CHOICES:
        raise BackendUnavailable(f"unknown fast recipe {value!r} (from ${FAST_ENV}); use one of {', '.join(FAST_CHOICES)}")
    return None if value == "auto" else value
