"""The backbone in OpenVINO fp32, the decoder in PyTorch: exact mode (the decoder's convolutions
by Winograd's algorithm in fp32, `engine.winograd`) and, on CPUs with VNNI but without AMX, fast
mode ("int8dec": the decoder in int8 with each image's own activation range).

Exact mode's split: OpenVINO runs the ViT's fp32 graph faster than PyTorch, but neither it nor
oneDNN has a fast algorithm for 5×5 convolutions on AVX2; the Winograd decoder ran 1.95× faster
than oneDNN's direct convolutions, within 2e-6 of them (`benchmarks/winograd_decoder.py`).

Fast mode's split ("int8dec"):

Why this split (docs/PERFORMANCE.md, "AVX2-only CPU, session 7"): on an AMD EPYC with AVX2
and no VNNI, no int8 path ran the ViT's Linears faster than OpenVINO's fp32 ones within the
agreement limits. Their int8 products are at best about 1.5× fp32 there (ONNX Runtime's
dynamic u8s8 GEMM; OpenVINO's and PyTorch's int8 fully connected kernels were no faster than
fp32 at all), and a faithful ViT needs at least two int8 passes per Linear (split weights or
split inputs, recipe v4), which costs more than fp32. The decoder's 5×5 convolutions are
different: one int8 pass (`int8.Int8Conv2d`, per-image range, 7-bit weights) runs them about
1.7× faster than fp32, and the decoder's error alone stays inside the limits (its first
convolution, which reads the ViT's features, stays fp32: `accelerate.FLOAT_CONVS`).
Statically calibrated int8 (NNCF) was measured and rejected: ranges taken from calibration
images clip the activations of an image unlike them (the maps collapsed to a constant on the
two far-from-flat held-out photos).

Nothing is calibrated, so there is nothing to prepare but the backbone's converted file
(cached and checked like exact mode's, `openvino_cpu`), and an image's map does not depend
on its batch-mates.
"""

from __future__ import annotations

import torch
from torch import nn


class HybridNet(nn.Module):
    """B×3×S×S float32 in, B×1×h×w logits out: `backbone` (an `openvino_cpu.OpenVINONet` of the
    network's backbone) feeds `decoder` (the torch decoder with its int8 convolutions)."""

    def __init__(self, backbone: nn.Module, decoder: nn.Module, precision: str):
        super().__init__()
        self.backbone = backbone
        self.decoder = decoder
        self.precision = precision

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.backbone(x))


def exact_decoder(net: nn.Module) -> nn.Module:
    """`net`'s (BN-folded, `optimize_exact`-ed) decoder with its 5×5 convolutions by Winograd's
    algorithm (`winograd.winograd_decoder`; a linear decoder is returned as it is)."""
    from declip_desktop.engine import winograd

    winograd.winograd_decoder(net)
    return net.decoder


def int8_decoder(net: nn.Module) -> nn.Module:
    """`net`'s (BN-folded, `optimize_exact`-ed) decoder with every convolution but the first and
    the logits in one int8 pass; raises ValueError when `net` has no convolutional decoder or
    this PyTorch has no oneDNN int8 kernels (the caller says so and runs another mode)."""
    from declip_desktop.engine import accelerate, int8

    if not int8.available():
        raise ValueError("this PyTorch build has no oneDNN int8 kernels")
    decoder = getattr(net, "decoder", None)
    fc = getattr(decoder, "fc", None)
    if isinstance(fc, accelerate.ChannelsLast):
        fc = fc.inner
    if not isinstance(fc, nn.Sequential) or sum(isinstance(m, nn.Conv2d) for m in fc) < 2:
        raise ValueError("the network has no convolutional decoder to run in int8")
    decoder.fc = accelerate.int8_decoder(fc, accelerate.FLOAT_CONVS, split=False, split_input=False)
    return decoder
