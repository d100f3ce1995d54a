"""The decoder's 5×5 convolutions by Winograd's minimal filtering, F(4×4, 5×5), in fp32.

Why: on CPUs without AMX the conv-20 decoder's twenty 5×5 convolutions are a third of a ViT-L/14
model's time, and neither oneDNN nor OpenVINO has a fast algorithm for 5×5 kernels on AVX2 (they
run them directly, 25 multiply-adds per output and input channel). Winograd's F(4×4, 5×5) computes
a 4×4 block of outputs from an 8×8 input tile with 64 products per channel pair instead of 400,
as 64 independent matrix products (`torch.bmm`), so it runs on the same BLAS kernels. Measured on
an AMD EPYC (AVX2, `benchmarks/winograd_decoder.py`, docs/PERFORMANCE.md): the whole decoder
1.95× faster than PyTorch's direct convolution, maps within 2.0e-6 of it (its own fp32 rounding differs from direct convolution's
by about 1e-5 of a layer's largest output, from the transform's fractions).

The transforms are built from exact rational Toom-Cook matrices for the interpolation points
0, ±1, ±2, ±1/2 and ∞ (the usual choice for F(4, 5): the smallest integers and their
reciprocals keep the fp32 error low), applied one axis at a time as small matrix products.

Only stride-1 "same" 5×5 convolutions are rewritten (`WinogradConv2d.supports`); a layer with
few output channels (the decoder's logits) stays a direct convolution, which is faster there.
On a GPU cuDNN picks its own algorithms, so nothing here runs on one (`winograd_decoder` is a CPU
rewrite).
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

#: Recorded with each result computed this way (`Localizer.parameters["decoder_convolutions"]`).
LABEL = "winograd-f4x4-5x5-fp32-v1"
KERNEL = 5
TILE_OUT = 4
TILE_IN = TILE_OUT + KERNEL - 1  # 8
POINTS = (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2))  # the finite points; ∞ is the 8th
#: Below this many output channels a direct convolution is faster (64 → 1 logits at 256×256:
#: 113 ms direct, 518 ms Winograd per batch of 4 on the AMD EPYC).
MIN_OUT_CHANNELS = 16
#: Images per batched product are limited so one layer's tiles stay under this many floats
#: (the 8×8 tiles hold four times the input; 8 M floats = 32 MB). Smaller chunks were no
#: slower: conv-20 at batch 4, 0.529 s per image with 8 M, 0.569 s with 32 M (AMD EPYC, one run each).
MAX_TILE_FLOATS = 8 * 1024 * 1024


def _poly_mul(p: list[Fraction], q: list[Fraction]) -> list[Fraction]:
    out = [Fraction(0)] * (len(p) + len(q) - 1)
    for i, a in enumerate(p):
        for j, b in enumerate(q):
            out[i + j] += a * b
    return out


@lru_cache(maxsize=1)
def toom_cook_matrices() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Aᵀ 4×8, G 8×5, Bᵀ 8×8) in float64 with y = Aᵀ[(G g) ⊙ (Bᵀ d)] the 4 outputs of the 1-D
    correlation of the 8 inputs `d` with the 5 taps `g`; exact up to float64 rounding."""
    pts = [Fraction(p) for p in POINTS]
    n = len(pts)
    a_t = [[p ** i for p in pts] + [Fraction(int(i == TILE_OUT - 1))] for i in range(TILE_OUT)]
    g = []
    for j, pj in enumerate(pts):
        norm = Fraction(1)
        for k, pk in enumerate(pts):
            if k != j:
                norm *= pj - pk
        g.append([pj ** k / norm for k in range(KERNEL)])
    g.append([Fraction(0)] * (KERNEL - 1) + [Fraction(1)])
    b_t = []
    for j in range(n + 1):  # row j < n: ∏_{k≠j}(x − p_k); the last row: ∏_k(x − p_k)
        poly = [Fraction(1)]
        for k in range(n):
            if k != j:
                poly = _poly_mul(poly, [-pts[k], Fraction(1)])
        b_t.append(poly + [Fraction(0)] * (TILE_IN - len(poly)))

    def as_tensor(rows):
        return torch.tensor([[float(v) for v in row] for row in rows], dtype=torch.float64)

    return as_tensor(a_t), as_tensor(g), as_tensor(b_t)


class WinogradConv2d(nn.Module):
    """Drop-in for a stride-1, padding-2 5×5 `nn.Conv2d` (float32, CPU): same input, same output
    values within fp32 rounding. The output is channels_last in memory (NCHW shape)."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        if not self.supports(conv):
            raise ValueError(f"not a stride-1 'same' 5×5 convolution: {conv}")
        a_t, g, b_t = toom_cook_matrices()
        # One product lays U out as the 64 products need it (64 × in × out): kron(G, G) (64 × 25)
        # times the taps as 25 × (in·out). In fp32: G's entries are short fractions, so this adds
        # ~1e-7, a hundredth of the transform's own rounding (a float64 einsum took 5 s for
        # conv-20 at every model load).
        taps = conv.weight.detach().float().permute(2, 3, 1, 0).reshape(KERNEL * KERNEL, -1)
        u = torch.kron(g, g).float() @ taps
        self.register_buffer("u", u.view(TILE_IN * TILE_IN, conv.in_channels, conv.out_channels))
        del taps
        bias = conv.bias.detach().float() if conv.bias is not None else torch.zeros(conv.out_channels)
        self.register_buffer("bias", bias.clone())
        self.register_buffer("a_t", a_t.float().contiguous())
        self.register_buffer("b_t", b_t.float().contiguous())
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels

    @staticmethod
    def supports(conv: nn.Module) -> bool:
        return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (KERNEL, KERNEL) and conv.stride == (1, 1)
                and conv.padding == (2, 2) and conv.dilation == (1, 1) and conv.groups == 1
                and conv.padding_mode == "zeros" and conv.weight.dtype == torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if c != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {c}")
        th, tw = -(-h // TILE_OUT), -(-w // TILE_OUT)
        per_image = th * tw * TILE_IN * TILE_IN * max(c, self.out_channels)
        step = max(1, MAX_TILE_FLOATS // max(1, per_image))
        if n > step:
            return torch.cat([self.forward(x[i:i + step]) for i in range(0, n, step)]).contiguous(
                memory_format=torch.channels_last)
        # Zero "same" padding, plus whatever makes the size a whole number of 4×4 output blocks.
        padded = F.pad(x, (2, 2 + tw * TILE_OUT - w, 2, 2 + th * TILE_OUT - h)).permute(0, 2, 3, 1)
        tiles = padded.unfold(1, TILE_IN, TILE_OUT).unfold(2, TILE_IN, TILE_OUT)  # n th tw c 8 8 (a view)
        blocks = n * th * tw
        # Input transform Bᵀ d B, one axis at a time: rows, then columns.
        d = tiles.permute(4, 5, 0, 1, 2, 3).reshape(TILE_IN, -1)
        v = torch.matmul(self.b_t, (self.b_t @ d).view(TILE_IN, TILE_IN, -1))
        m = torch.bmm(v.view(TILE_IN * TILE_IN, blocks, c), self.u)  # 64 × blocks × out
        # Output transform Aᵀ m A, then the 4×4 blocks back into the image, cropped.
        y = torch.matmul(self.a_t, (self.a_t @ m.view(TILE_IN, -1)).view(TILE_OUT, TILE_IN, -1))
        y = y.view(TILE_OUT, TILE_OUT, n, th, tw, self.out_channels).permute(2, 3, 0, 4, 1, 5)
        y = y.reshape(n, th * TILE_OUT, tw * TILE_OUT, self.out_channels)[:, :h, :w]
        return (y + self.bias).permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel 5×5, F(4×4, 5×5)"


def winograd_sequential(fc: nn.Sequential, min_out_channels: int = MIN_OUT_CHANNELS) -> int:
    """Replace, in place, every supported convolution of `fc` with at least `min_out_channels`
    outputs by its `WinogradConv2d`; returns how many were replaced."""
    count = 0
    for name, module in list(fc._modules.items()):
        if WinogradConv2d.supports(module) and module.out_channels >= min_out_channels:
            fc._modules[name] = WinogradConv2d(module)
            count += 1
    return count


def winograd_decoder(net: nn.Module) -> int:
    """Winograd convolutions in the (BN-folded) conv decoder of a DeclipNet on the CPU, in place;
    returns how many convolutions were rewritten (0 for a linear decoder or none that pays)."""
    decoder = getattr(net, "decoder", None)
    fc = getattr(decoder, "fc", None)
    inner = getattr(fc, "inner", fc)  # accelerate.ChannelsLast wraps the Sequential
    if not isinstance(inner, nn.Sequential):
        return 0
    return winograd_sequential(inner)


def uses_winograd(net: object) -> bool:
    """Whether `net` (any module, or a back end's wrapper of one) runs a `WinogradConv2d`."""
    modules = getattr(net, "modules", None)
    return callable(modules) and any(isinstance(m, WinogradConv2d) for m in modules())
