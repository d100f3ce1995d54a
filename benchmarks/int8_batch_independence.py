"""Fast mode's int8 Linears and batch independence: how much a batch moves one image, and the cost of not.

`nnqd.Linear` (dynamic int8), used by fast mode for the ViT's MLP layers, picks one
quantization range for its whole input: given a batch, an image's result depends on the
other images in it (on the tiny test model, features of one image batched with three others
differed by 0.14 from the same image alone; the final map by up to 0.007). The attention
projections (`engine.accelerate.TokenScaledDynamicLinear`) scale every token to [-1, 1]
first, so their range is [-1, 1] in practice whatever the batch.

This compares, on ViT-L/14's four Linear shapes (width 1024, 257 tokens, batch 4, image 3
with an 8× wider range and an outlier token), interleaved:
- the shipped layers, and for the MLP a batch-independent alternative written here
  (`ImageRangeDynamicLinear`: each image mapped affinely from its own range onto [0, 1],
  a pinning row fixing the kernel's range, the map undone exactly afterwards);
- time per batch; how far image 0's output moves when batched (0 = independent); and the
  int8 error of image 0 against fp32 (max |Δ| / max |output|).

    nice -n 10 .venv/bin/python benchmarks/int8_batch_independence.py [--rounds 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from declip_desktop.engine import accelerate  # noqa: E402

SHAPES = {"attn.qkv": (1024, 3072, "token"), "attn.out_proj": (1024, 1024, "token"),
          "mlp.c_fc": (1024, 4096, "image"), "mlp.c_proj": (4096, 1024, "image")}


class ImageRangeDynamicLinear(nn.Module):
    """Dynamic int8 Linear quantizing each image's input over that image's own range.

    `nnqd.Linear` quantizes its whole input with one asymmetric range [min, max]; given a
    batch, the other images' values widen it and change this image's result. Here each image
    (dim 0 of a batch-first B×L×W input; a 2-D input is one image) is mapped affinely from its
    own range [a, b] (0 included, as the kernel includes it) onto [0, 1], and an extra row
    holding 0 and 1 pins the kernel's range to exactly [0, 1], so every image is quantized on
    the grid its own range gives, whatever it is batched with, in one int8 product. The map is
    undone exactly: W·x = s·(W·u) + a·(W·1), with W·1 the row sums of the int8 weights.
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        from torch.ao.nn.quantized import dynamic as nnqd
        from torch.ao.quantization.qconfig import per_channel_dynamic_qconfig

        bias = None if linear.bias is None else linear.bias.detach().clone()
        plain = nn.Linear(linear.in_features, linear.out_features, bias=False, device="meta")
        plain.weight = linear.weight
        plain.qconfig = per_channel_dynamic_qconfig
        with torch.no_grad():
            self.linear = nnqd.Linear.from_float(plain)
            row_sums = self.linear.weight().dequantize().sum(dim=1)
        self.register_buffer("bias", bias)
        self.register_buffer("row_sums", row_sums, persistent=False)
        pin = torch.zeros(1, linear.in_features)
        pin[0, 0] = 1.0
        self.register_buffer("pin", pin, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = x.shape[0] if x.dim() >= 3 else 1
        lo, hi = torch.aminmax(x.reshape(images, -1), dim=1)
        lo = lo.clamp_max(0.0)
        span = (hi.clamp_min(0.0) - lo).clamp_min_(1e-12)
        shape = (images,) + (1,) * (x.dim() - 1) if x.dim() >= 3 else (1,) * x.dim()
        lo, span = lo.view(shape), span.view(shape)
        # u = (x - lo) / span, written straight into the kernel's input with the pinning row after it
        rows = x.numel() // x.shape[-1]
        buffer = torch.empty(rows + 1, x.shape[-1], dtype=x.dtype, device=x.device)
        inv = 1.0 / span
        torch.addcmul(-lo * inv, x, inv, out=buffer[:rows].view(x.shape))
        buffer[rows:] = self.pin.to(x.dtype)
        y = self.linear(buffer)[:rows].view(*x.shape[:-1], -1)
        shift = lo * self.row_sums if self.bias is None else torch.addcmul(self.bias, lo, self.row_sums)
        return torch.addcmul(shift, y, span)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.quantized.engine = "x86" if "x86" in torch.backends.quantized.supported_engines else "fbgemm"
    from torch.ao.nn.quantized import dynamic as nnqd
    from torch.ao.quantization.qconfig import per_channel_dynamic_qconfig

    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads, "
          f"batch 4 × 257 tokens, median of {args.rounds} interleaved rounds")
    gen = torch.Generator().manual_seed(0)
    totals = {"shipped": 0.0, "independent": 0.0}
    for name, (cin, cout, kind) in SHAPES.items():
        linear = nn.Linear(cin, cout)
        x = torch.randn(4, 257, cin, generator=gen)
        if cin == 4096:  # c_proj reads QuickGELU output: one-sided
            x = x * torch.sigmoid(1.702 * x)
        x[3] *= 8.0  # a neighbour with a wider range …
        x[3, 0] *= 30.0  # … and an outlier token, as attention inputs have
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "token":
                shipped = accelerate.TokenScaledDynamicLinear(linear)
                layers = {"shipped": shipped, "independent": shipped}
            else:
                alternative = ImageRangeDynamicLinear(linear)
                linear.qconfig = per_channel_dynamic_qconfig
                layers = {"shipped": nnqd.Linear.from_float(linear), "independent": alternative}
        times = {k: [] for k in layers}
        with torch.inference_mode():
            exact0 = linear(x[:1])
            for layer in layers.values():
                for _ in range(3):
                    layer(x)
            for _ in range(args.rounds):
                for label, layer in layers.items():
                    t0 = time.perf_counter()
                    layer(x)
                    times[label].append(time.perf_counter() - t0)
            row = []
            for label, layer in layers.items():
                moved = float((layer(x)[:1] - layer(x[:1])).abs().max())
                err = float((layer(x)[:1] - exact0).abs().max() / exact0.abs().max())
                med = statistics.median(times[label])
                totals[label] += med
                if kind == "image" or label == "shipped":
                    row.append(f"{label} {med * 1e3:6.1f} ms, image 0 moved {moved:.2g}, error {err:.2g}")
        print(f"{name:14s} {cin}→{cout}: " + " | ".join(row))
    blocks = 21  # layer20: blocks 0…20
    print(f"21 ViT blocks, per image: shipped {totals['shipped'] * blocks / 4:.2f} s, batch-independent MLP "
          f"{totals['independent'] * blocks / 4:.2f} s ({(totals['independent'] - totals['shipped']) * blocks / 4 * 1e3:+.0f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
