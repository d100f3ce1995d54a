"""Two-part weights for bf16: the graph that OpenVINO's bf16 fast mode compiles.

bf16 keeps 8 significant bits. Plain bf16 everywhere moved the benchmark model's maps by up to
0.063 on held-out photos (docs/PERFORMANCE.md), most of it the ViT's: a weight's rounding is
the same for every token, so its error adds up coherently over a layer's outputs, where the
inputs' rounding is independent from value to value and mostly averages out (ViT alone, two
photos: plain bf16 Linears 0.024; two-part weights 0.009; two-part inputs instead 0.019).

So every weight W becomes two bf16-exact parts, hi = bf16(W) and lo = bf16(W − hi) (about 16
significant bits together), laid side by side along the reduction axis, and the input is
repeated along it: [x, x] · [hi, lo]ᵀ = x·hiᵀ + x·loᵀ, one product of twice the length whose
two halves are summed in the product's fp32 accumulator: no second pass and no extra
rounding of a partial result. The parts are stored as fp32 values that bf16 represents
exactly, so OpenVINO's conversion to bf16 keeps them as they are. Run in fp32 the rewritten
network equals the original to about 16 bits, not exactly: it exists only to be compiled in bf16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def two_parts(weight: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """[hi, lo] concatenated along `dim` (fp32 values, each exactly representable in bf16)."""
    w = weight.detach().float()
    hi = w.to(torch.bfloat16).float()
    lo = (w - hi).to(torch.bfloat16).float()
    return torch.cat([hi, lo], dim=dim).contiguous()


class TwoPartLinear(nn.Module):
    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.register_buffer("weight", two_parts(linear.weight))  # out × 2·in
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(torch.cat([x, x], dim=-1), self.weight, self.bias)


class TwoPartConv2d(nn.Module):
    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        if conv.padding_mode != "zeros" or conv.groups != 1 or isinstance(conv.padding, str):
            raise ValueError("only zero-padded, ungrouped convolutions with explicit padding are supported")
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.register_buffer("weight", two_parts(conv.weight))  # out × 2·in × k × k
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().float().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(torch.cat([x, x], dim=1), self.weight, self.bias, self.stride, self.padding, self.dilation)


def rewrite(net: nn.Module) -> nn.Module:
    """In place: every Linear of the ViT and every convolution of the decoder except the logits
    (64 → 1 channels: negligible work) gets two-part weights; returns `net`."""
    vit = getattr(getattr(net, "backbone", None), "vit", None)
    if vit is not None:
        for parent in list(vit.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is nn.Linear:
                    setattr(parent, name, TwoPartLinear(child))
    fc = getattr(getattr(net, "decoder", None), "fc", None)
    if isinstance(fc, nn.Sequential):
        convs = [i for i, m in enumerate(fc) if type(m) is nn.Conv2d]
        for i in convs[:-1]:
            fc[i] = TwoPartConv2d(fc[i])
    return net
