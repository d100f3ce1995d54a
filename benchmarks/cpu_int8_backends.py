"""Which int8 CPU back end can make fast mode faster on a CPU without VNNI/bf16 (AVX2 only)?

The side-by-side measurements behind docs/PERFORMANCE.md "AVX2-only CPU, session 7" (issue 23
items 2-3), one section per run (a ViT-L/14 section takes 3-10 minutes on 2 cores):

    cpu_int8_backends.py layers    one layer of each kind (a ViT MLP Linear each way, two decoder
                                   convolutions), batch 4: PyTorch fp32 and oneDNN int8 (recipe v4's
                                   layers and cheaper variants), OpenVINO fp32 / NNCF int8 / dynamic
                                   quantization, ONNX Runtime fp32 / dynamic int8 (MatMul)
    cpu_int8_backends.py decoder   the benchmark model's conv-20 decoder, batch 4: fp32 (PyTorch,
                                   OpenVINO) against the per-image int8 variants, with agreement
                                   on the two far-from-flat held-out photos
    cpu_int8_backends.py nncf      the whole benchmark model through NNCF's static int8 (all, decoder
                                   only, ViT only) against the authors' path and OpenVINO fp32,
                                   with OpenVINO's PERF_COUNT time per operation type

Needs openvino, nncf, onnxruntime and onnx (measurement tools, not app dependencies) and
data/photos (scripts/fetch_starter_photos.py). NNCF's calibration images are procedural ones
and the scikit-image photos that set the benchmark model's BatchNorm statistics: disjoint
from both evaluation sets of benchmarks/heldout_images.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
PHOTOS = ("lomiri_Greentock.png", "lomiri_Bridge.png")  # held-out photos with far-from-flat maps
CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 2, "PERFORMANCE_HINT": "LATENCY",
          "NUM_STREAMS": 1}


def best_of(f, n=5) -> float:
    f()
    f()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def ov_request(model, **extra):
    import openvino as ov

    return ov.Core().compile_model(model, "CPU", {**CONFIG, **extra}).create_infer_request()


def nncf_int8(model, inputs: list[np.ndarray], **options):
    import nncf

    # OverflowFix.ENABLE: 7-bit weights, so that AVX2's u8·s8 pair sums (int16) cannot saturate.
    params = nncf.AdvancedQuantizationParameters(overflow_fix=nncf.OverflowFix.ENABLE)
    return nncf.quantize(model, nncf.Dataset(inputs), subset_size=len(inputs), preset=nncf.QuantizationPreset.MIXED,
                         advanced_parameters=params, **options)


def layers() -> None:
    import openvino as ov

    from declip_desktop.engine.int8 import Int8Conv2d, Int8Linear

    cases = {"fc1 1028x1024->4096": (nn.Linear(1024, 4096), (4, 257, 1024)),
             "fc2 1028x4096->1024": (nn.Linear(4096, 1024), (4, 257, 4096)),
             "conv 512->512 5x5 @16": (nn.Conv2d(512, 512, 5, padding=2), (4, 512, 16, 16)),
             "conv 64->64 5x5 @128": (nn.Conv2d(64, 64, 5, padding=2), (4, 64, 128, 128))}
    for name, (layer, shape) in cases.items():
        layer.eval()
        x = torch.randn(shape) if isinstance(layer, nn.Linear) else torch.randn(shape).relu()
        xn = x.numpy()
        with torch.no_grad():
            ref = layer(x)
            row = [f"torch f32 {best_of(lambda: layer(x)) * 1e3:.0f}"]
            model = ov.convert_model(layer, example_input=x)
        r32 = ov_request(model)
        row.append(f"OV f32 {best_of(lambda: r32.infer({0: xn})) * 1e3:.0f}")
        r8 = ov_request(nncf_int8(model, [x.numpy() for _ in range(2)]))
        err = np.abs(r8.infer({0: xn})[0] - ref.numpy()).max() / ref.abs().max().item()
        row.append(f"OV NNCF int8 {best_of(lambda: r8.infer({0: xn})) * 1e3:.0f} (rel. err {err:.3f})")
        if isinstance(layer, nn.Linear):
            rd = ov_request(model, DYNAMIC_QUANTIZATION_GROUP_SIZE=32)
            row.append(f"OV f32 + dynamic quantization {best_of(lambda: rd.infer({0: xn})) * 1e3:.0f}")
            variants = {"v4 (w×2, x×2)": (True, True), "w×2": (True, False), "single": (False, False)}
            for label, (split, split_input) in variants.items():
                q = Int8Linear(layer, split=split, split_input=split_input)
                with torch.no_grad():
                    err = ((q(x) - ref).abs().max() / ref.abs().max()).item()
                    row.append(f"torch int8 {label} {best_of(lambda: q(x)) * 1e3:.0f} ({err:.3f})")
            row.append(onnxruntime_matmul(layer, x))
        else:
            for label, split in (("w×2, x×2", True), ("single", False)):
                q = Int8Conv2d(layer, split=split, split_input=split)
                with torch.no_grad():
                    row.append(f"torch int8 {label} {best_of(lambda: q(x)) * 1e3:.0f}")
        print(f"{name:22s} ms: " + " | ".join(row), flush=True)


def onnxruntime_matmul(layer: nn.Linear, x: torch.Tensor) -> str:
    import tempfile

    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rows = x.reshape(-1, layer.in_features).numpy()
    w = layer.weight.detach().numpy().T.copy()
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "fc",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(rows.shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows.shape[0], w.shape[1]])],
                              [numpy_helper.from_array(w, "w")])
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
    with tempfile.TemporaryDirectory() as tmp:
        f32, q8 = f"{tmp}/fc.onnx", f"{tmp}/fc-int8.onnx"
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), f32)
        # reduce_range: 7-bit weights, as for OpenVINO (no int16 saturation on AVX2)
        quantize_dynamic(f32, q8, weight_type=QuantType.QInt8, reduce_range=True)
        s32 = ort.InferenceSession(f32, options, providers=["CPUExecutionProvider"])
        s8 = ort.InferenceSession(q8, options, providers=["CPUExecutionProvider"])
        y, y8 = s32.run(None, {"x": rows})[0], s8.run(None, {"x": rows})[0]
        t32, t8 = best_of(lambda: s32.run(None, {"x": rows})), best_of(lambda: s8.run(None, {"x": rows}))
    return f"ORT f32 {t32 * 1e3:.0f} | ORT dynamic int8 {t8 * 1e3:.0f} ({np.abs(y - y8).max() / np.abs(y).max():.3f})"


def benchmark_net():
    """benchmarks/engine.py's model, exact-optimized, and its authors-style twin."""
    import engine as bench

    from declip_desktop.engine import accelerate

    net = bench.build_benchmark_net()
    authors = bench.authors_style_from(net)
    return accelerate.optimize_exact(net), authors


def _inputs(names) -> torch.Tensor:
    from declip_desktop.engine.preprocess import to_input_tensor

    return torch.stack([to_input_tensor(Image.open(ROOT / "data" / "photos" / n).convert("RGB")) for n in names])


def _bench_batch() -> torch.Tensor:
    import skimage.data as data

    from declip_desktop.engine.preprocess import to_input_tensor

    return torch.stack([to_input_tensor(Image.fromarray(getattr(data, n)()))
                        for n in ("astronaut", "coffee", "chelsea", "rocket")])


def _agreement(label: str, got: torch.Tensor, ref: torch.Tensor) -> str:
    d = (torch.sigmoid(got) - torch.sigmoid(ref)).abs()
    return label + "  " + "  ".join(f"{n.split('.')[0]} max |Δ| {d[i].max():.4f} mean {d[i].mean():.5f}"
                                    for i, n in enumerate(PHOTOS))


def decoder() -> None:
    import openvino as ov

    from declip_desktop.engine import accelerate

    net, _ = benchmark_net()
    fc = net.decoder.fc
    with torch.no_grad():
        feats, batch = net.backbone(_inputs(PHOTOS)), net.backbone(_bench_batch())
        ref = fc(feats)
        request = ov_request(ov.convert_model(fc, example_input=batch, input=[ov.PartialShape([-1, 1024, 16, 16])]))

    def openvino_fp32(x):
        return torch.from_numpy(request.infer({0: x.numpy()})[0].copy())

    fns = {"PyTorch fp32": fc, "OpenVINO fp32": openvino_fp32}
    for split, split_input, floats in ((False, False, {0}), (True, False, {0}), (False, True, {0}),
                                       (True, True, {0}), (False, False, set())):
        label = f"int8 w×{1 + split} x×{1 + split_input}, fp32 convs {sorted(floats)}"
        fns[label] = accelerate.int8_decoder(fc, frozenset(floats), split=split, split_input=split_input)
    times = {k: [] for k in fns}
    with torch.no_grad():
        for f in fns.values():
            f(batch)
        for _ in range(2):  # interleaved rounds
            for k, f in fns.items():
                t = time.perf_counter()
                f(batch)
                times[k].append(time.perf_counter() - t)
        for k, f in fns.items():
            print(f"{min(times[k]):6.3f} s per batch of 4  " + _agreement(f"{k:34s}", f(feats), ref), flush=True)


def whole_nncf() -> None:
    import engine as bench
    import nncf
    import openvino as ov

    from declip_desktop.engine.preprocess import to_input_tensor

    net, authors = benchmark_net()
    f32 = ov.convert_model(net, example_input=torch.zeros(1, 3, 224, 224), input=[ov.PartialShape([-1, 3, 224, 224])])
    calib = [to_input_tensor(Image.fromarray(a))[None].numpy()
             for a in bench.procedural_images(count=4, seed=99) + bench.training_photos()]
    models = {"OpenVINO fp32": f32,
              "NNCF int8": nncf_int8(f32, calib),
              "NNCF int8, decoder only": nncf_int8(f32, calib, ignored_scope=nncf.IgnoredScope(types=["MatMul"])),
              "NNCF int8, ViT only": nncf_int8(f32, calib, ignored_scope=nncf.IgnoredScope(types=["Convolution"]))}
    requests = {k: ov_request(m, PERF_COUNT=True) for k, m in models.items()}

    def runner(r):
        return lambda x: torch.from_numpy(r.infer({0: x.numpy()})[0].copy())

    fns = {"authors-style": authors, **{k: runner(r) for k, r in requests.items()}}
    x = _bench_batch()
    res = bench.time_rounds(fns, x, 2)
    base = res["authors-style"][0]
    for k, (best, med) in res.items():
        print(f"  {k:26s} {best:6.3f} / {med:6.3f} s per image   {base / best:4.2f}× authors-style", flush=True)
    xp = _inputs(PHOTOS)
    ref = fns["OpenVINO fp32"](xp)
    for k in list(models)[1:]:
        print(_agreement(f"  {k:26s}", fns[k](xp), ref), flush=True)
    for k, r in requests.items():  # the last call ran on the photos; profile the benchmark batch
        r.infer({0: x.numpy()})
        per_op = defaultdict(float)
        for p in r.profiling_info:
            per_op[(p.node_type, p.exec_type)] += p.real_time.total_seconds()
        total = sum(per_op.values())
        print(f"PERF_COUNT {k}: {total:.2f} s per batch of 4; " + ", ".join(
            f"{n} {e} {s:.2f} s" for (n, e), s in sorted(per_op.items(), key=lambda kv: -kv[1])[:5]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("section", choices=("layers", "decoder", "nncf"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    CONFIG["INFERENCE_NUM_THREADS"] = args.threads
    import engine as bench

    print("machine:", bench.machine(), flush=True)
    {"layers": layers, "decoder": decoder, "nncf": whole_nncf}[args.section]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
