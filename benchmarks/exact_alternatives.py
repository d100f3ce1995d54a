"""Ways to a faster exact mode, side by side with the shipped one (issue 23 item 3).

Same seeded full-size ViT-L/14 layer20 conv-20 as `benchmarks/engine.py`, batch 4, interleaved
rounds. Prints, against the authors-style path:
- OpenVINO fp32 as exact mode compiles it (LATENCY, one stream), with CPU pinning, and with two
  streams of one thread each (the batch split over an `AsyncInferQueue`); their max |Δ| of the
  logits against the shipped configuration;
- PyTorch's oneDNN fp32 math done in bf16 (`torch.backends.mkldnn.{matmul,conv}.fp32_precision`)
  against strict fp32: speed, and max |Δ| of the map (decoder resolution) on the held-out images
  of `benchmarks/heldout_images.py`, worst first. Exact mode's limit is 1e-4.

    .venv/bin/python benchmarks/exact_alternatives.py [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import engine as bench  # noqa: E402  (benchmarks/engine.py)
import heldout_images  # noqa: E402

from declip_desktop.engine.accelerate import optimize_exact  # noqa: E402
from declip_desktop.engine.preprocess import to_input_tensor  # noqa: E402

EXACT_CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "EXECUTION_MODE_HINT": "ACCURACY",
                "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0}


def openvino_paths(model, threads: int) -> dict:
    import openvino as ov

    core = ov.Core()

    def latency(extra: dict):
        compiled = core.compile_model(model, "CPU", {**EXACT_CONFIG, "INFERENCE_NUM_THREADS": threads,
                                                     "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, **extra})
        request = compiled.create_infer_request()

        def run(x):
            request.infer({0: np.ascontiguousarray(x.numpy())})
            return request.get_output_tensor(0).data.copy()
        return run

    def two_streams():
        compiled = core.compile_model(model, "CPU", {**EXACT_CONFIG, "INFERENCE_NUM_THREADS": threads,
                                                     "PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": 2})
        queue, outs = ov.AsyncInferQueue(compiled, 2), {}
        queue.set_callback(lambda request, i: outs.__setitem__(i, request.get_output_tensor(0).data.copy()))

        def run(x):
            a = np.ascontiguousarray(x.numpy())
            half = a.shape[0] // 2
            queue.start_async({0: a[:half]}, 0)
            queue.start_async({0: a[half:]}, 1)
            queue.wait_all()
            return np.concatenate([outs[0], outs[1]])
        return run

    return {"OpenVINO fp32 (shipped exact)": latency({}),
            "OpenVINO fp32, CPU pinning": latency({"ENABLE_CPU_PINNING": True}),
            "OpenVINO fp32, 2 streams x 1 thread": two_streams()}


def onednn_math(net, mode: str):
    def run(x):
        torch.backends.mkldnn.matmul.fp32_precision = mode
        torch.backends.mkldnn.conv.fp32_precision = mode
        try:
            return net(x)
        finally:
            torch.backends.mkldnn.matmul.fp32_precision = "ieee"
            torch.backends.mkldnn.conv.fp32_precision = "ieee"
    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("machine:", bench.machine(), f"| threads {args.threads}", flush=True)
    from PIL import Image

    from declip_desktop.engine.backends.openvino_cpu import _convert

    net = bench.build_benchmark_net()
    authors = bench.authors_style_from(net)
    exact = optimize_exact(copy.deepcopy(net)).eval()
    del net
    images = heldout_images.heldout_images()
    x = torch.stack([to_input_tensor(Image.fromarray(a)) for _, a in images[:4]])
    paths = {"authors-style": authors, **openvino_paths(_convert(exact, 224), args.threads),
             "PyTorch fp32 (strict)": onednn_math(exact, "ieee"),
             "PyTorch, oneDNN fp32 math in bf16": onednn_math(exact, "bf16")}
    shipped = paths["OpenVINO fp32 (shipped exact)"](x)
    with torch.inference_mode():
        for name, run in paths.items():
            if name.startswith("OpenVINO") and "shipped" not in name:
                print(f"  {name}: max |Δ| logits vs shipped {np.abs(np.asarray(run(x)) - shipped).max():.2e}")
    times = bench.time_rounds(paths, x, args.rounds)
    base_best, base_median = times["authors-style"]
    print(f"batch {x.shape[0]}, seconds per image (best / median of {args.rounds} interleaved rounds):")
    for name, (best, median) in times.items():
        print(f"  {name:38s} {best:.3f} / {median:.3f}   vs authors-style {base_best / best:.2f}× "
              f"(medians {base_median / median:.2f}×)")
    worst = []
    with torch.inference_mode():
        for name, a in images:
            one = to_input_tensor(Image.fromarray(a)).unsqueeze(0)
            strict = torch.sigmoid(onednn_math(exact, "ieee")(one))
            bf16 = torch.sigmoid(onednn_math(exact, "bf16")(one))
            worst.append(((bf16 - strict).abs().max().item(), name))
    worst.sort(reverse=True)
    print(f"oneDNN bf16 math vs strict fp32 over {len(worst)} held-out images: max |Δ| of the map "
          f"{worst[0][0]:.4f} (exact mode's limit 1e-4); worst:")
    for d, name in worst[:5]:
        print(f"    {name:44s} {d:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
