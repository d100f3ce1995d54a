"""Engine speed, fast-mode accuracy and `analyze` memory on a full-size ViT-L/14 layer20 conv-20.

No downloads: the model has seeded random weights, with the decoder's BatchNorm statistics
set from data (as training leaves them: each BN roughly standardizes its input; other
scikit-image samples than the evaluation photos), conv weights that keep the random decoder
out of the chaotic regime, and the logits scaled to a spread like a trained model's (std 3),
so that probability maps cover [0, 1] and the fast-vs-exact differences mean something. Random CLIP weights give other
features than OpenAI's; the speed does not depend on the values.

Prints, per image at batch 4 on the CPU (interleaved rounds, best and median):
- "authors-style": an independent re-implementation of the authors' inference path
  (OpenAI-CLIP-style ViT with all 24 blocks, sequence-first `nn.MultiheadAttention`, fp32
  LayerNorm casts, every block's output kept, `ln_post`/`proj` computed; the `fc`
  Sequential with BatchNorm; the flattened output), written from DESIGN.md and a reading
  of their code, with the same weights;
- exact mode (`Localizer(fast=False)`) and fast mode (`Localizer(fast=True)`) and the ratios;
- authors-style vs exact max |Δ| (conformance) and exact vs fast mean/max |Δ| per pixel over
  seven scikit-image sample photos at their original resolutions, and over the held-out set
  of `benchmarks/heldout_images.py` (73 photos, edits, JPEG, grayscale, screenshots outside
  the tuning photos; needs data/photos from scripts/fetch_starter_photos.py), per kind and
  with the worst images;
- with --fast-candidates: every fast recipe this CPU can run (OpenVINO bf16 and "int8dec", through
  $DECLIP_OPENVINO_FAST, and PyTorch's int8 recipe) in the same interleaved rounds, with their
  agreement with exact mode, so a CPU kind where the automatic choice is not the fastest shows it;
- peak RSS of `python -m declip_desktop analyze` (exact and --fast) with the model installed;
- with CUDA: fp32 / fp16 / bf16 at batch 1 and 32.

    nice -n 10 .venv/bin/python benchmarks/engine.py [--rounds 3] [--threads 2] [--skip-rss]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
SEED = 1234
BATCH = 4

# --------------------------------------------------------------------------- authors-style


class _FP32LayerNorm(nn.LayerNorm):
    """OpenAI CLIP's LayerNorm: computes in fp32 and casts back."""

    def forward(self, x):
        return super().forward(x.float()).type(x.dtype)


class _QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class _AuthorsBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)  # sequence-first, as in OpenAI CLIP
        self.ln_1 = _FP32LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict(c_fc=nn.Linear(width, 4 * width), gelu=_QuickGELU(),
                                             c_proj=nn.Linear(4 * width, width)))
        self.ln_2 = _FP32LayerNorm(width)

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False, attn_mask=None)[0]
        return x + self.mlp(self.ln_2(x))


class AuthorsStyle(nn.Module):
    """The authors' inference path for ViT-L/14 + conv-K, re-implemented for timing and conformance."""

    def __init__(self, fc: nn.Sequential, layer: int = 20, width: int = 1024, blocks: int = 24, patch: int = 14):
        super().__init__()
        self.layer = layer
        scale = width**-0.5
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((224 // patch) ** 2 + 1, width))
        self.ln_pre = _FP32LayerNorm(width)
        self.resblocks = nn.ModuleList(_AuthorsBlock(width, width // 64) for _ in range(blocks))
        self.ln_post = _FP32LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, 768))
        self.fc = fc

    def encode(self, x):
        x = self.conv1(x).flatten(2).permute(0, 2, 1)
        cls = self.class_embedding + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding)
        x = x.permute(1, 0, 2)  # NLD -> LND
        out = {}
        for i, block in enumerate(self.resblocks):  # all 24 blocks, every output kept
            x = block(x)
            out[f"layer{i}"] = x
        pooled = self.ln_post(x.permute(1, 0, 2)[:, 0, :])
        out["after_projection"] = pooled @ self.proj
        return out

    def forward(self, x):
        tokens = self.encode(x)[f"layer{self.layer}"][1:]  # LND, class token dropped
        fmap = tokens.permute(1, 2, 0)
        side = int(fmap.shape[2] ** 0.5)
        fmap = fmap.reshape(fmap.shape[0], fmap.shape[1], side, side)
        return torch.flatten(self.fc(fmap), start_dim=1)


def authors_style_from(net) -> AuthorsStyle:
    """Same weights as our DeclipNet (blocks after layer20 and the head stay random)."""
    vit = net.backbone.vit
    ours = net.state_dict()
    fc = copy.deepcopy(net.decoder.fc)
    model = AuthorsStyle(fc).eval()
    sd = model.state_dict()
    copied = 0
    for key in list(sd):
        src = "backbone.vit." + key.replace("resblocks.", "transformer.resblocks.")
        if src in ours and ours[src].shape == sd[key].shape:
            sd[key] = ours[src]
            copied += 1
    model.load_state_dict(sd)
    per_block = len([k for k in sd if k.startswith("resblocks.0.")])
    assert len(vit.transformer.resblocks) == 21 and copied == 5 + 21 * per_block, copied
    return model


# --------------------------------------------------------------------------- the model


def _rgb(a: np.ndarray) -> np.ndarray:
    return np.stack([a] * 3, axis=2) if a.ndim == 2 else a[:, :, :3]


def sample_photos() -> list[tuple[str, np.ndarray]]:
    """Evaluation photos (scikit-image samples shipped with the package)."""
    import skimage.data as data

    names = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "camera", "coins")
    return [(n, getattr(data, n)()) for n in names]


def training_photos() -> list[np.ndarray]:
    """Other scikit-image samples, disjoint from `sample_photos`: they set the random decoder's
    BatchNorm statistics, the way training on natural photos would."""
    import skimage.data as data

    names = ("hubble_deep_field", "retina", "brick", "grass", "gravel", "moon", "clock", "page")
    return [_rgb(getattr(data, n)()) for n in names]


def procedural_images(count: int = 6, size: int = 224, seed: int = 20250101) -> list[np.ndarray]:
    """Deterministic photo-like RGB uint8 images (smooth shading, edges, texture, noise).

    With other photos they set the benchmark model's BatchNorm statistics. (Until fast-mode
    recipe v4 they also set fast mode's int8 ranges, as `engine.accelerate.calibration_images`;
    the same function, kept here so that the benchmark model's weights stay the same.)
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    images = []
    for i in range(count):
        base = rng.uniform(0, 255, 3)
        grad = rng.uniform(-120, 120, (2, 3))
        img = base + xx[..., None] * grad[0] + yy[..., None] * grad[1]
        for _ in range(4 + i):  # flat-coloured blobs with hard edges
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.35)
            mask = ((xx - cx) ** 2 + (yy - cy) ** 2) < r * r
            img[mask] = rng.uniform(0, 255, 3)
        freq = rng.uniform(4, 40)
        img += 25 * np.sin(2 * np.pi * freq * (xx + rng.uniform() * yy))[..., None]  # texture
        img += rng.normal(0, 2 + 6 * (i % 3), img.shape)  # sensor-like noise
        images.append(np.clip(img, 0, 255).astype(np.uint8))
    return images


def build_benchmark_net():
    """Full-size ViT-L/14 layer20 conv-20 DeclipNet with seeded, data-calibrated random weights."""
    from PIL import Image

    from declip_desktop.engine.networks import NetSpec, build_network
    from declip_desktop.engine.preprocess import to_input_tensor

    torch.manual_seed(SEED)
    net = build_network(NetSpec("ViT-L/14", "layer20", "conv-20"))
    stats_images = procedural_images(count=4, seed=SEED) + training_photos()
    x = torch.stack([to_input_tensor(Image.fromarray(a)) for a in stats_images])
    with torch.inference_mode():
        feats = torch.cat([net.backbone(x[i : i + 4]) for i in range(0, len(x), 4)])
    fc = net.decoder.fc
    gen = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        h = feats
        for m in fc:
            if isinstance(m, nn.Conv2d):
                # He-scaled normal weights with a small positive mean: plain He init makes a
                # 21-layer random BN-ReLU stack chaotic (a 1e-6 change of the features moves
                # the map by 4e-4), unlike a trained decoder; the mean keeps it well-behaved.
                fan_in = m.weight[0].numel()
                m.weight.copy_((torch.randn(m.weight.shape, generator=gen) + 0.05) * (2.0 / fan_in) ** 0.5)
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=gen))
            if isinstance(m, nn.BatchNorm2d):  # stats from data, affine mildly random
                m.running_mean.copy_(h.mean(dim=(0, 2, 3)))
                m.running_var.copy_(h.var(dim=(0, 2, 3)))
                m.weight.copy_(0.7 + 0.6 * torch.rand(m.weight.shape, generator=gen))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))
            h = m.eval()(h)
        last = [m for m in fc if isinstance(m, nn.Conv2d)][-1]
        std, mean = h.std().item(), h.mean().item()
        last.weight.mul_(3.0 / std)
        last.bias.mul_(3.0 / std).sub_(mean * 3.0 / std)
    return net.eval()


def install(net, home: Path):
    """Write the net as an installed model (safetensors + card) under `home`/models."""
    from safetensors.torch import save_file

    from declip_desktop.common.hashing import sha256_file
    from declip_desktop.common.model_card import ModelCard
    from declip_desktop.modelstore.store import ModelStore, utc_now_iso

    models = home / "models"
    models.mkdir(parents=True, exist_ok=True)
    weights = models / "bench-vit.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(weights))
    card = ModelCard(name="bench-vit", kind="declip", backbone="ViT-L/14", layer="layer20", decoder="conv-20",
                     sha256=sha256_file(weights), created=utc_now_iso(), label="benchmark (random weights)")
    (models / "bench-vit.json").write_text(card.to_json(), encoding="utf-8")
    return ModelStore(models, bundled=None).get("bench-vit")


# --------------------------------------------------------------------------- measurements


def time_rounds(fns: dict, x: torch.Tensor, rounds: int) -> dict:
    times = {k: [] for k in fns}
    with torch.inference_mode():
        for f in fns.values():  # warm-up (oneDNN primitive creation, allocations)
            f(x)
        for _ in range(rounds):
            for k, f in fns.items():
                t = time.perf_counter()
                f(x)
                times[k].append((time.perf_counter() - t) / x.shape[0])
    return {k: (min(v), statistics.median(v)) for k, v in times.items()}


def peak_rss(home: Path, image: Path, extra: list[str], threads: int) -> tuple[float, float]:
    env = dict(os.environ, DECLIP_HOME=str(home), OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-c",
           "import sys; sys.argv=['declip']+sys.argv[1:];"
           "from declip_desktop.cli import main; code=main(sys.argv[1:]);"
           # VmHWM, not getrusage: ru_maxrss is inherited from this (large) parent across fork.
           "hwm=[l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1];"
           "print('RSS_MB', int(hwm)/1024, file=sys.stderr);"
           "sys.exit(code)",
           "analyze", str(image), "--model", "bench-vit", "--device", "cpu", "--threads", str(threads), *extra]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"analyze failed ({proc.returncode}): {proc.stderr[-2000:]}")
    rss = [float(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("RSS_MB")]
    return rss[0], wall


def machine() -> str:
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
            elif not line.strip():  # end of the first CPU's block: the others repeat it
                break
    except OSError:
        pass
    # The fast mode's int8 speed depends on the vector ISA: VNNI does the int8 dot products in one
    # instruction where AVX2 needs three, so the fast/exact ratio differs between machines.
    isa = torch.backends.cpu.get_cpu_capability()
    vnni = "yes" if {"avx512_vnni", "avx_vnni"} & flags else ("no" if flags else "unknown")
    # bf16 matrix instructions decide OpenVINO's fast mode (AMX tiles, or AVX512-BF16 dot products)
    bf16 = ", ".join(f for f in ("amx_bf16", "amx_int8", "avx512_bf16") if f in flags) or "none"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} logical CPUs, torch CPU capability {isa}, int8 VNNI {vnni}, AMX/bf16: {bf16}, "
            f"Python {platform.python_version()}, torch {torch.__version__}, load average at start {load:.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--worst", type=int, default=8, help="how many of the worst held-out images to list")
    ap.add_argument("--skip-heldout", action="store_true",
                    help="leave out the held-out agreement sets (minutes; the seven photos are still compared)")
    ap.add_argument("--fast-candidates", action="store_true",
                    help="also time every other fast recipe this CPU can run, side by side")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pipeline_common import scratch_dir

    # The installed model and its OpenVINO files take about 6 GB: removed at exit, also on SIGTERM.
    return measure(args, scratch_dir("declip-bench-"))


def measure(args, work: Path) -> int:
    torch.set_num_threads(args.threads)
    print("machine:", machine(), f"| torch threads {args.threads}", flush=True)

    from PIL import Image

    from declip_desktop.engine.preprocess import to_input_tensor
    from declip_desktop.modelstore.loading import load_localizer

    t0 = time.perf_counter()
    net = build_benchmark_net()
    authors = authors_style_from(net)
    os.environ["DECLIP_HOME"] = str(work)
    installed = install(net, work)
    del net
    print(f"model built and installed in {time.perf_counter() - t0:.0f} s", flush=True)
    loads = {}
    for label, kwargs in (("exact", {}), ("fast", {"fast": True}), ("exact, PyTorch", {"backend": "torch"})):
        for attempt in ("first", "again"):  # the first start converts (and caches) for OpenVINO
            t = time.perf_counter()
            loc = load_localizer(installed, device="cpu", batch_size=BATCH, on_status=lambda m: print("  ", m), **kwargs)
            loads[label, attempt] = time.perf_counter() - t
            if loc.parameters["backend"].startswith("torch"):
                break
        print(f"Localizer {label}: backend {loc.parameters['backend']}, recipe "
              f"{loc.parameters.get('fast_recipe', '-')}; start-up " +
              ", ".join(f"{a} {loads[label, a]:.1f} s" for a in ("first", "again") if (label, a) in loads), flush=True)
        if label == "exact":
            exact = loc
        elif label == "fast":
            fast = loc
        else:
            exact_torch = loc

    candidates = fast_candidates(installed, fast) if args.fast_candidates else {}

    photos = sample_photos()
    x = torch.stack([to_input_tensor(Image.fromarray(_rgb(a))) for _, a in photos[:BATCH]])
    with torch.inference_mode():
        a = torch.sigmoid(authors(x)).reshape(BATCH, 256, 256)
        e = torch.sigmoid(exact.net(x))[:, 0]
    print(f"conformance: authors-style vs exact, max |Δ| per pixel = {(a - e).abs().max().item():.2e} (limit 1e-4)")

    with torch.inference_mode():
        t = torch.sigmoid(exact_torch.net(x))[:, 0]
    print(f"conformance: exact (PyTorch) vs exact, max |Δ| per pixel = {(t - e).abs().max().item():.2e}")
    res = time_rounds({"authors-style": authors, "exact": exact.net, "fast": fast.net,
                       "exact, PyTorch": exact_torch.net, **{k: v.net for k, v in candidates.items()}},
                      x, args.rounds)
    base = res["authors-style"][0]
    print(f"CPU, batch {BATCH}, seconds per image (best / median of {args.rounds} interleaved rounds):")
    for k, (best, med) in res.items():
        print(f"  {k:18s} {best:6.3f} / {med:6.3f}   speed-up vs authors-style {base / best:4.2f}× "
              f"(medians {res['authors-style'][1] / med:4.2f}×)")

    deltas, maxes, spreads = [], [], []
    for name, arr in photos:
        pe = exact.predict_one(arr)
        pf = fast.predict_one(arr)
        d = np.abs(pe.prob_map - pf.prob_map)
        deltas.append(d.mean())
        maxes.append(d.max())
        spreads.append(pe.prob_map.std())
        print(f"  {name:22s} {arr.shape[1]}×{arr.shape[0]}  exact-vs-fast mean |Δ| {d.mean():.4f}  max |Δ| "
              f"{d.max():.4f}  (map std {pe.prob_map.std():.3f}, score exact {pe.score:.3f} fast {pf.score:.3f})")
    print(f"fast vs exact over {len(photos)} photos: mean |Δ| {np.mean(deltas):.4f} (limit 0.005), "
          f"max |Δ| {np.max(maxes):.4f} (limit 0.05)")
    for label, loc in candidates.items():
        d = [np.abs(exact.predict_one(a).prob_map - loc.predict_one(a).prob_map) for _, a in photos]
        print(f"  {label}: vs exact over the {len(photos)} photos mean |Δ| {np.mean([v.mean() for v in d]):.4f}, "
              f"max |Δ| {max(v.max() for v in d):.4f}")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from heldout_images import fresh_images, heldout_images

    if args.skip_heldout:
        print("held-out agreement: skipped (--skip-heldout)")
    else:
        if fast.fast:
            heldout_agreement(exact, fast, args.worst, heldout_images(), "evaluation images")
            heldout_agreement(exact, fast, args.worst, fresh_images(), "fresh images (never looked at for recipe v4)")
        else:  # the same computation: nothing to compare (minutes saved)
            print("held-out agreement of fast mode: skipped, fast mode runs exact mode on this CPU")
        for label, loc in candidates.items():
            heldout_agreement(exact, loc, args.worst, heldout_images() + fresh_images(),
                              f"evaluation + fresh images, {label}")

    if not args.skip_rss:
        img = work / "photo.png"
        Image.fromarray(photos[0][1]).save(img)
        for label, extra in (("exact", []), ("--fast", ["--fast"])):
            rss, wall = peak_rss(work, img, extra, args.threads)
            print(f"analyze peak RSS ({label}, one image, installed ViT-L/14 model): {rss:.0f} MB "
                  f"(limit 2500 MB), wall {wall:.1f} s incl. start-up", flush=True)

    if torch.cuda.is_available():
        gpu_section(installed)
    else:
        print("GPU: CUDA not available, GPU section skipped")
    return 0


def fast_candidates(installed, fast) -> dict:
    """The fast recipes other than the automatic one that this CPU can run, as Localizers, by label."""
    from declip_desktop.engine.backends import selection
    from declip_desktop.modelstore.loading import load_localizer

    chosen = fast.parameters.get("fast_recipe")
    found = {}
    for forced in ("bf16", "int8dec"):
        os.environ[selection.FAST_ENV] = forced
        try:
            loc = load_localizer(installed, device="cpu", fast=True, batch_size=BATCH, backend="openvino")
        except selection.BackendUnavailable as exc:
            print(f"fast candidate OpenVINO {forced}: cannot run here ({exc})")
            continue
        finally:
            del os.environ[selection.FAST_ENV]
        if loc.parameters.get("fast_recipe") != chosen:
            found[f"fast {forced} (forced)"] = loc
    loc = load_localizer(installed, device="cpu", fast=True, batch_size=BATCH, backend="torch")
    if loc.fast:
        found["fast, PyTorch int8"] = loc
    for label, loc in found.items():
        print(f"fast candidate {label}: recipe {loc.parameters.get('fast_recipe')}", flush=True)
    return found


def heldout_agreement(exact, fast, worst: int, images: list, label: str) -> None:
    """Fast vs exact on a set of `benchmarks/heldout_images.py`, per kind and worst images."""
    if not images:
        print(f"{label}: none (data/photos missing: run scripts/fetch_starter_photos.py)")
        return
    names = [n for n, _ in images]
    arrays = [a for _, a in images]
    t = time.perf_counter()
    rows = []  # (name, mean |Δ|, max |Δ|, map std)
    for name, pe, pf in zip(names, exact.predict_iter(arrays), fast.predict_iter(arrays)):
        if pe.error or pf.error:
            raise RuntimeError(f"{name}: {pe.error or pf.error}")
        d = np.abs(pe.prob_map - pf.prob_map)
        rows.append((name, float(d.mean()), float(d.max()), float(pe.prob_map.std())))
    means, maxes = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    # mean |Δ| over all images, each image weighted equally (its own pixel mean), as for the seven photos
    print(f"fast vs exact over {len(rows)} {label} ("
          f"{time.perf_counter() - t:.0f} s): mean |Δ| {means.mean():.4f} (limit 0.005), max |Δ| "
          f"{maxes.max():.4f} (limit 0.05); per-image max |Δ|: median {np.median(maxes):.4f}, "
          f"95th percentile {np.percentile(maxes, 95):.4f}")
    kinds: dict[str, list[int]] = {}
    for i, (name, *_rest) in enumerate(rows):
        kinds.setdefault(name.split("_", 1)[0], []).append(i)
    for kind, idx in kinds.items():
        print(f"  {kind:8s} {len(idx):3d} images  mean |Δ| {means[idx].mean():.4f}  max |Δ| {maxes[idx].max():.4f}")
    print(f"  worst {worst} (by max |Δ|):")
    for i in np.argsort(-maxes)[:worst]:
        name, mean, mx, std = rows[i]
        print(f"    {name:46s} mean |Δ| {mean:.4f}  max |Δ| {mx:.4f}  (exact map std {std:.3f})")


def gpu_section(installed) -> None:
    print("GPU:", torch.cuda.get_device_name(0))
    for precision in ("fp32", "fp16", "bf16"):
        loc = Localizer_for(installed, precision)
        for batch in (1, 32):
            x = torch.randn(batch, 3, 224, 224)
            for _ in range(2):
                loc._forward(x)
            times = [loc._forward(x)[1] / batch for _ in range(5)]
            print(f"  {precision} batch {batch:2d}: {min(times) * 1000:.1f} ms per image "
                  f"(peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MB)")
        del loc
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def Localizer_for(installed, precision):  # noqa: N802 - reads like the constructor it wraps
    from declip_desktop.modelstore.loading import load_localizer

    return load_localizer(installed, device="cuda", precision=precision, batch_size=32)


if __name__ == "__main__":
    sys.exit(main())
