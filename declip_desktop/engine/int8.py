"""int8 Linear and Conv2d layers whose activation scale is taken from each input, not calibrated.

Fast mode's earlier recipe quantized the decoder statically: activation ranges fixed once on
calibration images. On images unlike those (a screenshot, a photo with large flat areas) the
activations left the calibrated range and were clipped, which moved single pixels of the map
by up to 0.4 (docs/PERFORMANCE.md). These layers instead quantize each image's activations
with that image's own range at every call, so nothing is ever clipped, no calibration data is
needed, and an image's result does not depend on the other images of its batch:
- `Int8Linear`: every token (row) is scaled by its own absolute maximum to [-1, 1] and
  quantized to 8 bits; the int8 product comes back in fp32 and is multiplied by the token's
  scale (exact algebra for a linear map; the bias is added in fp32);
- `Int8Conv2d`: each image is quantized to 8 bits over its own [min, max] (ReLU outputs give
  [0, max]); the convolution, with the ReLU fused when one follows, returns fp32.
Weights are per output channel, symmetric, 7-bit (±63): CPUs with AVX2 but no VNNI multiply
u8 activations by s8 weights in pairs summed into int16, and 255·64·2 < 2¹⁵ cannot saturate,
so every x86 CPU computes the same integer products (tests/test_accelerate.py checks oneDNN's
AVX2 kernels against the VNNI/AMX ones; with 8-bit weights they differed by 18 %). Where 7 bits
are too coarse, `split=True` stores each weight as the sum of two 7-bit ones (the second
quantizes what the first rounded away, about 13 bits in all) stacked as twice the output
channels, so one int8 product computes both; `split_input=True` adds a second 8-bit pass
over what the activations' 8 bits rounded away (about 16 bits). Each doubles the
layer's int8 work. The kernels are oneDNN's (`torch.ops.onednn`, those of PyTorch's own x86
int8 path), with fp32 output so there is no second quantization.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

# torch.quantize_per_tensor/-per_channel are the fused (one pass, vectorized) quantizers; PyTorch
# 2.14 marks them deprecated. The separate div/round/clamp/cast they replace cost more time than
# the int8 products themselves (profiled: about 60 % of fast mode), so they are used, quietly.
warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor", category=UserWarning)

WEIGHT_QMAX = 63  # 7-bit weights, see the module docstring


def available() -> bool:
    """True when this PyTorch build has the oneDNN int8 kernels (x86 builds do; ARM ones may not)."""
    ops = getattr(torch.ops, "onednn", None)
    try:
        return ops is not None and all(hasattr(ops, n) for n in
                                       ("qconv_prepack", "qconv_pointwise", "qlinear_prepack", "qlinear_pointwise"))
    except RuntimeError:  # an op namespace that failed to load
        return False


def _quantize_weight(weight: torch.Tensor, split: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel symmetric int8 (±WEIGHT_QMAX) values and their fp32 scales.

    `split`: the weight as the sum of two int8 weights, the second quantizing what the first
    rounded away (about 13 bits in all), stacked as twice the output channels, so one int8
    product computes both halves; the caller adds them.
    """
    w = weight.detach().float()
    shape = (-1,) + (1,) * (w.dim() - 1)
    scale = w.flatten(1).abs().amax(dim=1).clamp_min(1e-30) / WEIGHT_QMAX
    q = torch.round(w / scale.reshape(shape)).clamp_(-WEIGHT_QMAX, WEIGHT_QMAX)
    if not split:
        return q.to(torch.int8), scale.contiguous()
    rest = w - q * scale.reshape(shape)
    scale2 = rest.flatten(1).abs().amax(dim=1).clamp_min(1e-30) / WEIGHT_QMAX
    q2 = torch.round(rest / scale2.reshape(shape)).clamp_(-WEIGHT_QMAX, WEIGHT_QMAX)
    return torch.cat([q, q2]).to(torch.int8), torch.cat([scale, scale2]).contiguous()


class Int8Linear(nn.Module):
    """int8 replacement for an `nn.Linear`, activations quantized per token; see the module docstring."""

    def __init__(self, linear: nn.Linear, split: bool = False, split_input: bool = False):
        super().__init__()
        self.split_input = split_input
        q, scale = _quantize_weight(linear.weight, split)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.split = split
        self.register_buffer("w_scale", scale)
        self.register_buffer("w_zero", torch.zeros(q.shape[0], dtype=torch.int64))
        # oneDNN's packed layout: an opaque tensor, kept out of the state dict
        self.packed = torch.ops.onednn.qlinear_prepack(q, None)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float().clone())

    def _product(self, q: torch.Tensor, x_scale: float) -> torch.Tensor:
        return torch.ops.onednn.qlinear_pointwise(q, x_scale, 128, self.packed, self.w_scale, self.w_zero, None,
                                                  1.0, 0, torch.float32, "none", [], "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        lo, hi = torch.aminmax(rows, dim=1)
        scale = torch.maximum(hi, -lo).clamp_min_(1e-30)  # each token's absolute maximum
        # Each token over its own maximum: 127 steps each side of the zero point 128 (u8).
        zeros = torch.full(scale.shape, 128, dtype=torch.int64)
        qx = torch.quantize_per_channel(rows, scale / 127.0, zeros, 0, torch.quint8)
        y = self._product(qx.int_repr(), 1.0 / 127.0)
        if self.split_input:  # what the 8 bits rounded away, in a second 8-bit pass (as Int8Conv2d)
            rest = torch.quantize_per_channel(rows - qx.dequantize(), scale / (127.0 * 254.0), zeros, 0, torch.quint8)
            y += self._product(rest.int_repr(), 1.0 / (127.0 * 254.0))
        if self.split:
            y = y[:, : self.out_features] + y[:, self.out_features :]
        scale = scale.unsqueeze(1)
        y = y.mul_(scale) if self.bias is None else torch.addcmul(self.bias, y, scale)
        return y.reshape(*x.shape[:-1], self.out_features)


class Int8Conv2d(nn.Module):
    """int8 replacement for an `nn.Conv2d` (optionally fused with the ReLU after it); see the module docstring."""

    def __init__(self, conv: nn.Conv2d, relu: bool = False, split: bool = False, split_input: bool = False):
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError("only zero-padded convolutions with explicit padding are supported")
        q, scale = _quantize_weight(conv.weight, split)
        self.split, self.split_input = split, split_input
        self.stride, self.padding = list(conv.stride), list(conv.padding)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.out_channels = conv.out_channels
        self.relu = relu
        self.register_buffer("w_scale", scale)
        self.register_buffer("w_zero", torch.zeros(q.shape[0], dtype=torch.int64))
        self.packed = torch.ops.onednn.qconv_prepack(  # opaque, kept out of the state dict
            q, scale, 1.0, 0, self.stride, self.padding, self.dilation, self.groups, None)
        bias = None if conv.bias is None else conv.bias.detach().float()
        if bias is not None and split:
            bias = torch.cat([bias, torch.zeros_like(bias)])
        self.register_buffer("bias", None if bias is None else bias.clone())

    def _conv(self, q: torch.Tensor, scale: float, zero: int, bias, relu: bool) -> torch.Tensor:
        return torch.ops.onednn.qconv_pointwise(
            q, scale, zero, self.packed, self.w_scale, self.w_zero, bias, self.stride, self.padding,
            self.dilation, self.groups, 1.0, 0, torch.float32, "relu" if relu else "none", [], "")

    def _one(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = torch.aminmax(x)
        lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
        scale = (hi - lo) / 255.0 if hi > lo else 1.0
        zero = int(round(-lo / scale))
        qx = torch.quantize_per_tensor(x, scale, zero, torch.quint8)
        fused = self.relu and not (self.split or self.split_input)
        y = self._conv(qx.int_repr(), scale, zero, self.bias, fused)
        if self.split_input:
            # What the 8 bits rounded away (within ±scale/2), as a second 8-bit input through the
            # same int8 weights: about 16-bit activations for one more int8 product.
            fine = scale / 254.0
            rest = torch.quantize_per_tensor(x - qx.dequantize(), fine, 128, torch.quint8)
            y += self._conv(rest.int_repr(), fine, 128, None, False)
        if self.split:
            n = self.out_channels
            y = y[:, :n] + y[:, n:]
        if self.relu and not fused:
            y = y.relu_()
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One image at a time: its own range, so its batch-mates cannot change its result.
        return torch.cat([self._one(x[i : i + 1]) for i in range(x.shape[0])])
