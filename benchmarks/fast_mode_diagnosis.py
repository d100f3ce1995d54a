"""Where fast mode's error comes from: the ViT's int8 Linears vs the decoder's int8 convolutions.

On the benchmark model (`benchmarks/engine.py`: full-size ViT-L/14 layer20 conv-20, seeded
random weights) and the held-out images (`benchmarks/heldout_images.py`), prints mean and
max |Δ| per pixel of the 256×256 probability map against exact fp32 for:
- the ViT int8 alone (decoder fp32 on int8-ViT features);
- the decoder int8 alone (fast decoder on exact features), and both together (fast mode);
- with --per-layer: one decoder convolution int8 at a time, and one ViT block's Linears int8
  at a time (on the worst images of the first pass, to keep it short).

    nice -n 10 .venv/bin/python benchmarks/fast_mode_diagnosis.py [--per-layer] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine as bench  # noqa: E402  (benchmarks/engine.py)
from heldout_images import heldout_images  # noqa: E402


def inputs(images) -> torch.Tensor:
    from PIL import Image

    from declip_desktop.engine.preprocess import to_input_tensor

    return torch.stack([to_input_tensor(Image.fromarray(a)) for _, a in images])


def batched(fn, x: torch.Tensor, batch: int = 4) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([fn(x[i : i + batch]) for i in range(0, len(x), batch)])


def errors(p: torch.Tensor, ref: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    d = (p - ref).abs().flatten(1)
    return d.mean(1).numpy(), d.amax(1).numpy()


def report(label: str, p: torch.Tensor, ref: torch.Tensor, names=None, worst: int = 0) -> np.ndarray:
    mean, mx = errors(p, ref)
    print(f"  {label:44s} mean |Δ| {mean.mean():.4f}  max |Δ| {mx.max():.4f}  (median of per-image max {np.median(mx):.4f})",
          flush=True)
    if worst and names is not None:
        for i in np.argsort(-mx)[:worst]:
            print(f"      {names[i]:46s} mean {mean[i]:.4f} max {mx[i]:.4f}")
    return mx


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--per-layer", action="store_true")
    ap.add_argument("--limit", type=int, default=0, help="only the first N held-out images")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from declip_desktop.engine import accelerate

    print("machine:", bench.machine(), flush=True)
    t0 = time.perf_counter()
    net = accelerate.optimize_exact(bench.build_benchmark_net())
    images = heldout_images()
    if args.limit:
        images = images[: args.limit]
    names = [n for n, _ in images]
    x = inputs(images)
    print(f"model and {len(images)} images ready in {time.perf_counter() - t0:.0f} s", flush=True)

    feats = batched(net.backbone, x)
    ref = torch.sigmoid(batched(net.decoder, feats))[:, 0]
    qvit = copy.deepcopy(net.backbone)
    accelerate.quantize_linears_dynamic(qvit.vit)
    qfeats = batched(qvit, x)
    print(f"features ready in {time.perf_counter() - t0:.0f} s; feature |Δ| ViT int8: "
          f"max {float((qfeats - feats).abs().max()):.3f} (features' max {float(feats.abs().max()):.1f})")
    fast = torch.nn.Module()  # what optimize_fast_cpu reads: .backbone (already int8 here) and .decoder
    fast.backbone, fast.decoder = qvit, copy.deepcopy(net.decoder)
    found = accelerate.optimize_fast_cpu(fast, calibration=lambda: accelerate_calibration(accelerate))
    print("decoder recipe:", {k: v for k, v in (found or {}).items() if k != "observers"})

    print("fast vs exact (held-out):")
    report("ViT int8, decoder fp32", torch.sigmoid(batched(net.decoder, qfeats))[:, 0], ref, names, 5)
    report("ViT fp32, decoder int8", torch.sigmoid(batched(fast.decoder, feats))[:, 0], ref, names, 5)
    mx = report("both int8 (fast mode)", torch.sigmoid(batched(fast.decoder, qfeats))[:, 0], ref, names, 8)

    if args.per_layer:
        worst = np.argsort(-mx)[:8]
        per_layer(net, x[worst], feats[worst], ref[worst])
    return 0


def accelerate_calibration(accelerate):
    from PIL import Image

    from declip_desktop.engine.preprocess import to_input_tensor

    return [torch.stack([to_input_tensor(Image.fromarray(a)) for a in accelerate.calibration_images(count=4)])]


def per_layer(net, x, feats, ref) -> None:
    from declip_desktop.engine import accelerate

    fc = net.decoder.fc
    convs = [m for m in fc if isinstance(m, torch.nn.Conv2d)]
    calib = accelerate_calibration(accelerate)
    with torch.inference_mode():
        calib_feats = [net.backbone(b) for b in calib]
    unit_ranges = accelerate._unit_output_ranges(fc, calib_feats)
    everything = frozenset(range(len(convs)))
    print("one decoder convolution int8 at a time (static, procedural calibration ranges), worst images:")
    for i in range(len(convs) - 1):
        qdec, _ = accelerate.quantize_decoder(net.decoder, None, "minmax", everything - {i}, weight_bits7=True,
                                              unit_ranges=unit_ranges)
        report(f"conv {i} int8", torch.sigmoid(batched(qdec, feats))[:, 0], ref)
    print("one ViT block's Linears int8 at a time, worst images:")
    for b in range(len(net.backbone.vit.transformer.resblocks)):
        qvit = copy.deepcopy(net.backbone)
        accelerate.quantize_linears_dynamic(qvit.vit.transformer.resblocks[b])
        report(f"block {b} int8", torch.sigmoid(batched(net.decoder, batched(qvit, x)))[:, 0], ref)


if __name__ == "__main__":
    sys.exit(main())
