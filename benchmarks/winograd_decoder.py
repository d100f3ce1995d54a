"""The full-size conv-20 decoder with direct and with Winograd F(4×4, 5×5) convolutions: time per
layer and in all, side by side in one run, and how far the maps move.

    .venv/bin/python benchmarks/winograd_decoder.py [--batch 4] [--rounds 3] [--threads 2]

The decoder is the benchmark network's (benchmarks/engine.py: seeded weights, BatchNorm statistics
from photos, logits scaled to std 3), BatchNorm folded as in exact mode, fed the ViT-L/14
features of the seven benchmark photos. Direct convolution is PyTorch's (oneDNN) in the default
layout, which exact mode ran before (channels_last was slower); Winograd is `engine.winograd` as
exact mode runs it on the CPU (the logits convolution, 64 → 1, stays direct in both).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine as bench  # noqa: E402 - the benchmark network and the machine line

from declip_desktop.engine import accelerate, winograd  # noqa: E402


def per_layer(fc: nn.Sequential, x: torch.Tensor, rounds: int) -> tuple[list[float], torch.Tensor]:
    """Best-of-`rounds` seconds of each module of `fc` on its real input, and the output."""
    times = []
    with torch.inference_mode():
        for module in fc:
            best = float("inf")
            for _ in range(rounds):
                t = time.perf_counter()
                y = module(x)
                best = min(best, time.perf_counter() - t)
            times.append(best)
            x = y
    return times, x


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(bench.machine())
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, best of {args.rounds}")

    from PIL import Image

    from declip_desktop.engine.preprocess import to_input_tensor

    net = accelerate.optimize_exact(bench.build_benchmark_net())
    photos = [to_input_tensor(Image.fromarray(a).convert("RGB")) for _, a in bench.sample_photos()]
    with torch.inference_mode():
        features = torch.cat([net.backbone(torch.stack(photos[i:i + 4])) for i in range(0, len(photos), 4)])
    direct = net.decoder.fc
    fast = copy.deepcopy(direct)
    replaced = winograd.winograd_sequential(fast)
    x = features[: args.batch]
    if len(x) < args.batch:
        x = x.repeat((args.batch + len(x) - 1) // len(x), 1, 1, 1)[: args.batch]
    # Interleaved: each round times both, so a change of load affects both alike.
    t_direct, t_wino = per_layer(direct, x, 1)[0], per_layer(fast, x, 1)[0]
    for _ in range(args.rounds - 1):
        t_direct = [min(a, b) for a, b in zip(t_direct, per_layer(direct, x, 1)[0])]
        t_wino = [min(a, b) for a, b in zip(t_wino, per_layer(fast, x, 1)[0])]

    print(f"\n{replaced} of {sum(isinstance(m, nn.Conv2d) for m in direct)} convolutions by Winograd; ms per batch:")
    print(f"{'layer':>5} {'in→out @ size':>18} {'direct':>8} {'winograd':>9} {'ratio':>6}")
    size = features.shape[-1]
    for i, (m, a, b) in enumerate(zip(direct, t_direct, t_wino)):
        if isinstance(m, nn.Upsample):
            size *= 2
        if isinstance(m, nn.Conv2d):
            shape = f"{m.in_channels}→{m.out_channels} @ {size}"
            print(f"{i:>5} {shape:>18} {a * 1e3:8.1f} {b * 1e3:9.1f} {a / b:5.2f}×")
    total_d, total_w = sum(t_direct), sum(t_wino)
    print(f"decoder in all: direct {total_d / args.batch:.3f} s per image, Winograd {total_w / args.batch:.3f} "
          f"s per image: {total_d / total_w:.2f}×")

    with torch.inference_mode():
        want = torch.sigmoid(direct(features)).flatten(1)
        got = torch.sigmoid(fast(features)).flatten(1)
    delta = (got - want).abs()
    print(f"maps of the {len(features)} photos, Winograd vs direct: mean |Δ| {delta.mean().item():.2e}, "
          f"max |Δ| {delta.max().item():.2e} (exact mode's limit 1e-4); map std {want.std().item():.3f}")
    u_bytes = sum(m.u.numel() * 4 for m in fast.modules() if isinstance(m, winograd.WinogradConv2d))
    w_bytes = sum(m.weight.numel() * 4 for m in direct.modules() if isinstance(m, nn.Conv2d))
    print(f"weights held: direct {w_bytes / 2**20:.0f} MB, Winograd {u_bytes / 2**20:.0f} MB "
          f"(the transformed 8×8 kernels: 64/25 of the 5×5 ones)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
