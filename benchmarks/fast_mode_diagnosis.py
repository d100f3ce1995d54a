"""Where fast mode's error comes from: the ViT's int8 Linears vs the decoder's int8 convolutions.

On the benchmark model (`benchmarks/engine.py`: full-size ViT-L/14 layer20 conv-20, seeded
random weights) and the held-out images (`benchmarks/heldout_images.py`), prints mean and
max |Δ| per pixel of the 256×256 probability map against exact fp32 for:
- the ViT int8 alone (decoder fp32 on int8-ViT features);
- the decoder int8 alone (on exact features), and both together (fast mode);
- the same with plain (unsplit) 7-bit weights, to show what the split weights buy;
- with --per-layer: on the worst images, every decoder convolution but one int8, and one ViT
  block's Linears at a time int8;
- with --profile: fast mode's self CPU time per operator at batch 4 (shares stay meaningful
  on a loaded machine, absolute times do not).

    nice -n 10 .venv/bin/python benchmarks/fast_mode_diagnosis.py [--per-layer] [--profile] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine as bench  # noqa: E402  (benchmarks/engine.py)
from heldout_images import heldout_images  # noqa: E402

from declip_desktop.engine import accelerate  # noqa: E402


def inputs(images) -> torch.Tensor:
    from PIL import Image

    from declip_desktop.engine.preprocess import to_input_tensor

    return torch.stack([to_input_tensor(Image.fromarray(a)) for _, a in images])


def batched(fn, x: torch.Tensor, batch: int = 4) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([fn(x[i : i + batch]) for i in range(0, len(x), batch)])


def report(label: str, logits: torch.Tensor, ref: torch.Tensor, names=None, worst: int = 0) -> np.ndarray:
    d = (torch.sigmoid(logits)[:, 0] - ref).abs().flatten(1)
    mean, mx = d.mean(1).numpy(), d.amax(1).numpy()
    print(f"  {label:46s} mean |Δ| {mean.mean():.4f}  max |Δ| {mx.max():.4f}  "
          f"(median per-image max {np.median(mx):.4f})", flush=True)
    if worst and names is not None:
        for i in np.argsort(-mx)[:worst]:
            print(f"      {names[i]:46s} mean {mean[i]:.4f} max {mx[i]:.4f}")
    return mx


def int8_vit(backbone: nn.Module, split: bool, only_block: int | None = None) -> nn.Module:
    """A copy of `backbone` with the ViT's Linears int8 as fast mode makes them (or only one block's)."""
    qb = copy.deepcopy(backbone)
    target = qb.vit if only_block is None else qb.vit.transformer.resblocks[only_block]
    accelerate.int8_linears(target, split=(lambda parent, name: split))
    return qb


class _Net(nn.Module):
    def __init__(self, backbone, decoder):
        super().__init__()
        self.backbone, self.decoder = backbone, decoder

    def forward(self, x):
        return self.decoder(self.backbone(x))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--per-layer", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--limit", type=int, default=0, help="only the first N held-out images")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("machine:", bench.machine(), "| recipe", accelerate.FAST_RECIPE, flush=True)
    t0 = time.perf_counter()
    net = accelerate.optimize_exact(bench.build_benchmark_net())
    images = heldout_images()[: args.limit or None]
    names = [n for n, _ in images]
    x = inputs(images)
    feats = batched(net.backbone, x)
    with torch.inference_mode():
        ref = torch.sigmoid(batched(net.decoder, feats))[:, 0]
    print(f"model, {len(images)} held-out images and exact features in {time.perf_counter() - t0:.0f} s", flush=True)

    fc = net.decoder.fc
    worst = None
    for split in (False, True):
        recipe = "fast mode" if split == accelerate.SPLIT_WEIGHTS else "unsplit 7-bit weights and activations"
        print(f"fast vs exact, {len(images)} held-out images, {recipe}:")
        qb = int8_vit(net.backbone, split)
        qfeats = batched(qb, x)
        dec = accelerate.int8_decoder(copy.deepcopy(fc), accelerate.FLOAT_CONVS, split=split,
                                      split_input=split and accelerate.SPLIT_DECODER_INPUT)
        report("ViT int8, decoder fp32", batched(net.decoder, qfeats), ref, names, 4)
        report("ViT fp32, decoder int8", batched(dec, feats), ref, names, 4)
        mx = report("both int8", batched(dec, qfeats), ref, names, 8)
        if split == accelerate.SPLIT_WEIGHTS:
            worst, fast = np.argsort(-mx)[:6], _Net(qb, dec)
        del qb, qfeats, dec

    if args.profile:
        profile(fast, x[:4])
    if args.per_layer:
        per_layer(net, x[worst], feats[worst], ref[worst])
    return 0


def profile(fast: nn.Module, x: torch.Tensor, rounds: int = 2) -> None:
    """Self CPU time per operator over `rounds` fast-mode batches (after a warm-up)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch.inference_mode():
        fast(x)
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(rounds):
                fast(x)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    print(f"fast mode, batch {len(x)}, self CPU time shares by operator ({rounds} batches, "
          f"{total / 1e6 / rounds / len(x):.3f} s per image under the current load):")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:16]:
        print(f"  {e.key:44s} {100 * e.self_cpu_time_total / total:5.1f} %  ({e.count} calls)")


def per_layer(net, x, feats, ref) -> None:
    fc = net.decoder.fc
    n = sum(isinstance(m, nn.Conv2d) for m in fc)
    print(f"on the {len(x)} worst images: every decoder convolution int8 except conv i (ViT fp32):")
    for i in range(n - 1):
        dec = accelerate.int8_decoder(copy.deepcopy(fc), frozenset({i}), split=accelerate.SPLIT_WEIGHTS,
                                      split_input=accelerate.SPLIT_DECODER_INPUT)
        report(f"conv {i} fp32", batched(dec, feats), ref)
    print(f"on the {len(x)} worst images: one ViT block's Linears int8 at a time (decoder fp32):")
    for b in range(len(net.backbone.vit.transformer.resblocks)):
        qb = int8_vit(net.backbone, accelerate.SPLIT_WEIGHTS, only_block=b)
        report(f"block {b} int8", batched(net.decoder, batched(qb, x)), ref)


if __name__ == "__main__":
    sys.exit(main())
