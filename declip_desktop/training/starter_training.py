"""Train, evaluate and package the starter model (end to end, from scratch, on synthetic data).

Separate from `engine.training` (the frozen-backbone DeCLIP decoder): here every weight is
trained, there is no backbone and no feature cache.

    declip train-starter train --data data/synth --run runs/starter --steps 1500
    declip train-starter package --data data/synth --run runs/starter --models models

(the command line is `cli/train_starter.py`; here the steps take `TrainConfig` / `PackageConfig`).

`train` keeps the weights with the best validation IoU in RUN/best.safetensors (so an
interrupted run still leaves a usable model); `package` evaluates them on the held-out test
split (photos never used in train/valid), per manipulation type, and writes
MODELS/starter.safetensors + MODELS/starter.json (the model card).

Images go through the same preprocessing as the Localizer: resized (PIL bilinear) to
input_size × input_size, normalized with the card's mean/std; the output probability is
resized (bilinear) back to the image size and thresholded at 0.5 for IoU, as in the paper.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from declip_desktop.common.hashing import sha256_file
from declip_desktop.common.version import SOFTWARE_VERSION
from declip_desktop.engine import starter
from declip_desktop.training.starter_eval import StarterDataError
from declip_desktop.training.synth import MANIPULATIONS, read_manifest


@dataclass
class TrainConfig:
    data: str
    extra_data: list[str] = field(default_factory=list)
    run: str = "runs/starter"
    steps: int = 1500
    batch: int = 8
    crop: int = 256
    lr: float = 3e-3
    seed: int = 0
    threads: int = 1
    val_every: int = 250
    init: str | None = None  # start from these weights (safetensors) instead of random
    val_limit: int = 96  # validate on the first N valid images (0: all)
    max_minutes: float = 0.0  # the schedule decays over min(steps, this many minutes) (0: steps only)
    input_size: int = starter.DEFAULT_INPUT_SIZE
    widths: list[int] = field(default_factory=lambda: list(starter.DEFAULT_WIDTHS))
    max_side: int = 0  # native resolution up to this long side (0: the square input_size mode)


@dataclass
class PackageConfig:
    data: str
    run: str = "runs/starter"
    weights: str = "best.safetensors"
    photos: str = "data/photos"
    models: str = "models"
    name: str = "starter"
    threads: int = 1
    input_size: int = starter.DEFAULT_INPUT_SIZE
    max_side: int = 0
    test_time_flips: int = 1
    calibrate: bool = True
    compare: str | None = None  # card of an earlier model to evaluate on the same test split
    compare_flips: int | None = None  # evaluate it with this many flips (None: its card's)
    false_alarm_budget: float = 0.20  # native packaging: bias fit keeps ≤ this share of authentic valid images > 1 %
    valid_limit: int = 0  # native packaging: first N validation / test images (0: all)
    test_limit: int = 0


@dataclass
class Item:
    image: np.ndarray  # input_size × input_size × 3 uint8 (already resized like the Localizer)
    mask: np.ndarray  # original-size bool mask (for evaluation)
    mask_small: np.ndarray  # input_size × input_size float32 in [0, 1] (for the loss)
    record: dict


def resize_like_localizer(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def load_split(data_dir: Path, split: str, size: int) -> list[Item]:
    if not (data_dir / "manifest.jsonl").is_file():
        raise StarterDataError(f"{data_dir} holds no synthetic data set (no manifest.jsonl). Run `declip synth` first.")
    items = []
    for rec in read_manifest(data_dir):
        if rec["split"] != split:
            continue
        image = np.asarray(Image.open(data_dir / rec["image"]).convert("RGB"))
        mask = np.asarray(Image.open(data_dir / rec["mask"]).convert("L")) > 127
        small = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((size, size), Image.BILINEAR))
        items.append(Item(resize_like_localizer(image, size), mask, small.astype(np.float32) / 255.0, rec))
    if not items:
        raise StarterDataError(f"no {split} images in {data_dir}/manifest.jsonl. Run `declip synth` first.")
    return items


def iou_percent(pred: np.ndarray, gt: np.ndarray) -> float:
    """The paper's IoU: prediction > 0.5 vs ground truth > 0.5, in percent."""
    p, g = pred > 0.5, gt > 0.5
    inter, union = float(np.logical_and(p, g).sum()), float(np.logical_or(p, g).sum())
    return (inter + 1e-8) / (union + 1e-8) * 100.0


@torch.no_grad()
def predict_prob(net: torch.nn.Module, image_small: np.ndarray, out_hw: tuple[int, int], mean, std) -> np.ndarray:
    x = starter.normalize(torch.from_numpy(np.array(image_small)).unsqueeze(0), mean, std)
    logits = net(x)
    prob = torch.sigmoid(F.interpolate(logits, size=out_hw, mode="bilinear", align_corners=False))
    return prob[0, 0].numpy()


def evaluate(net, items: list[Item], mean, std, full: bool = False) -> dict[str, Any]:
    """Mean IoU (percent) overall, per manipulation type and per compression.

    full=True scores with `training.metrics.image_metrics` (the paper's protocol, also F1/AP);
    the quick path (validation during training) computes the same IoU directly.
    """
    net.eval()
    per_type: dict[str, list[float]] = defaultdict(list)
    per_jpeg: dict[str, list[float]] = defaultdict(list)
    scores, others = [], defaultdict(list)
    for it in items:
        prob = predict_prob(net, it.image, it.mask.shape, mean, std)
        if full:
            from declip_desktop.training.metrics import image_metrics

            m = image_metrics(prob, it.mask)
            s = float(m["iou"])
            for key in ("f1_best", "f1_fixed", "ap"):
                if key not in m["undefined"]:
                    others[key].append(float(m[key]))
        else:
            s = iou_percent(prob, it.mask.astype(np.float32))
        scores.append(s)
        per_type[it.record["type"]].append(s)
        per_jpeg["jpeg" if it.record.get("jpeg_quality") else "png"].append(s)
    return {
        "n": len(scores),
        "iou": round(float(np.mean(scores)), 2),
        "per_type": {t: {"n": len(v), "iou": round(float(np.mean(v)), 2)} for t, v in sorted(per_type.items())},
        "per_compression": {t: {"n": len(v), "iou": round(float(np.mean(v)), 2)} for t, v in sorted(per_jpeg.items())},
        **{k: round(float(np.mean(v)), 4) for k, v in others.items()},
    }


def _batch(items: list[Item], rng: np.random.Generator, batch: int, crop: int, mean, std):
    xs, ys = [], []
    for _ in range(batch):
        it = items[int(rng.integers(len(items)))]
        h, w = it.image.shape[:2]
        y0, x0 = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        img = it.image[y0 : y0 + crop, x0 : x0 + crop]
        m = it.mask_small[y0 : y0 + crop, x0 : x0 + crop]
        if rng.random() < 0.5:
            img, m = img[:, ::-1], m[:, ::-1]
        if rng.random() < 0.5:
            img, m = img[::-1], m[::-1]
        xs.append(np.ascontiguousarray(img))
        # Native-resolution items keep their target as uint8 (a quarter of the memory).
        ys.append(m.astype(np.float32) / 255.0 if m.dtype == np.uint8 else np.ascontiguousarray(m))
    x = starter.normalize(torch.from_numpy(np.stack(xs)), mean, std)
    y = torch.from_numpy(np.stack(ys)).unsqueeze(1)
    return x, y


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE + soft Dice on full-resolution logits (Dice keeps small masks from being ignored)."""
    logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    inter = (p * target).sum(dim=(1, 2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3)) + 1)
    return bce + dice.mean()


def _save(net, path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
    save_file(state, str(path))


def train(args: TrainConfig) -> int:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    mean, std = starter.DEFAULT_MEAN, starter.DEFAULT_STD
    native = bool(getattr(args, "max_side", 0))
    if native:  # native resolution (long side ≤ max_side): a generalization set with authentic images
        from declip_desktop.training.starter_eval import load_native
        from declip_desktop.training.starter_package import selection_figures

        def load(path, split, limit=0):
            return load_native(Path(path), split, args.max_side, limit)
    else:
        def load(path, split, limit=0):
            items = load_split(Path(path), split, args.input_size)
            return items[:limit] if limit else items
    train_items = load(args.data, "train")
    for extra in args.extra_data:  # more synthetic sets (other seeds): their train splits only
        train_items += load(extra, "train")
    print(f"{len(train_items)} training images from {1 + len(args.extra_data)} set(s)", flush=True)
    # Validation every few hundred steps on a fixed subset keeps its cost small on 2 CPU cores;
    # the manifest's round-robin order makes the first N cover every manipulation type evenly.
    valid_items = load(args.data, "valid", args.val_limit)
    net = starter.build_starter({"mean": mean, "std": std, "widths": list(args.widths)})
    if args.init:  # continue from earlier weights (e.g. a second, shorter schedule)
        from safetensors.torch import load_file

        net.load_state_dict(load_file(args.init), strict=True)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    warmup = min(100, args.steps // 10)

    def progress(step: int) -> float:
        """Fraction of the run done: by steps, or by wall time when a time budget is set.

        A time budget makes the schedule finish its decay on a busy shared machine instead of
        being cut off at a high learning rate; the card records the steps actually done.
        """
        done = step / args.steps
        if args.max_minutes:
            done = max(done, (time.time() - start) / 60 / args.max_minutes)
        return min(1.0, done)

    def lr_at(step: int) -> float:  # linear warm-up, then cosine decay to 2% of the peak
        if step < warmup:
            return args.lr * (step + 1) / warmup
        t = progress(step)
        return args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))

    log = open(run / "log.jsonl", "a")
    best, start, running = -1.0, time.time(), []
    for step in range(args.steps):
        if args.max_minutes and progress(step) >= 1.0:
            print(f"time budget of {args.max_minutes} minutes used up after {step} steps", flush=True)
            step -= 1
            break
        net.train()
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        x, y = _batch(train_items, rng, args.batch, args.crop, mean, std)
        loss = loss_fn(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running.append(float(loss.detach()))
        last = step + 1 == args.steps or (args.max_minutes and progress(step + 1) >= 1.0)
        if (step + 1) % args.val_every == 0 or last:
            entry = {"step": step + 1, "loss": round(float(np.mean(running)), 4)}
            if native:  # keep the weights best on edits, false alarms and AUC together, after the bias fit
                fit, res = selection_figures(net, valid_items, mean, std)
                entry.update({"valid_offset": fit["offset"], "valid_iou": res["iou"], "valid_selection": res["selection"],
                              "valid_authentic_over_1pct": res["authentic_over_1pct_share"],
                              "valid_authentic_median_flagged_pct": res["authentic_median_flagged_pct"],
                              "valid_auc": res["auc"], "valid_per_family": {k: v["iou"] for k, v in res["per_family"].items()}})
                figure = res["selection"]
            else:
                res = evaluate(net, valid_items, mean, std)
                entry.update({"valid_iou": res["iou"], "valid_per_type": {k: v["iou"] for k, v in res["per_type"].items()}})
                figure = res["iou"]
            entry.update({"lr": lr_at(step), "minutes": round((time.time() - start) / 60, 2)})
            running = []
            if figure > best:
                best = figure
                _save(net, run / "best.safetensors")
                entry["saved"] = True
            _save(net, run / "last.safetensors")
            log.write(json.dumps(entry) + "\n")
            log.flush()
            print(json.dumps(entry), flush=True)
    (run / "train_config.json").write_text(json.dumps(
        {**dataclasses.asdict(args),
         "best_valid_iou": best, "steps_done": step + 1, "minutes": round((time.time() - start) / 60, 2)},
        indent=2) + "\n")
    return 0


@torch.no_grad()
def calibrate_bias(net, items: list[Item], mean, std, offsets=np.arange(-3.0, 3.01, 0.25)) -> dict[str, float]:
    """Pick the logit offset that maximizes the validation IoU at the fixed 0.5 threshold.

    The paper scores at probability 0.5; a network trained briefly is often under-confident, so
    the offset (folded into the head's bias) is chosen on the *validation* split — never on test.
    sigmoid(l + o) > 0.5 ⟺ up(l) > -o (bilinear upsampling is linear), so one pass suffices.
    """
    net.eval()
    totals = np.zeros(len(offsets))
    for it in items:
        x = starter.normalize(torch.from_numpy(np.array(it.image)).unsqueeze(0), mean, std)
        up = F.interpolate(net(x), size=it.mask.shape, mode="bilinear", align_corners=False)[0, 0].numpy()
        for j, off in enumerate(offsets):
            totals[j] += iou_percent((up > -off).astype(np.float32), it.mask.astype(np.float32))
    means = totals / len(items)
    zero = int(np.argmin(np.abs(offsets)))
    best = int(np.argmax(means))
    net.head.bias += float(offsets[best])
    return {"offset": float(offsets[best]), "valid_iou_before": round(float(means[zero]), 2),
            "valid_iou_after": round(float(means[best]), 2)}


def training_set_text(synth_info: dict, extra_data: list[str]) -> str:
    """The card's `training_set`: the main synthetic set (its synth.json), extra sets' train splits, test photos."""
    def describe(info: dict) -> str:
        return f"seed {info['seed']}, n {info['n']}, jpeg-prob {info['jpeg_prob']}"

    main_photos = set(synth_info["photos"])
    n_test = sum(1 for v in synth_info["photos"].values() if v == "test")
    text = f"synthetic manipulations (declip synth, {describe(synth_info)}) of {len(main_photos)} registry photos"
    for extra in extra_data:
        extra_info = json.loads((Path(extra) / "synth.json").read_text())
        extra_train = {k for k, v in extra_info["photos"].items() if v != "test"}
        if set(extra_info["photos"]) == main_photos:
            whose = "same photos and test photos"
        else:
            whose = f"{len(extra_train)} training photos, {len(extra_train - main_photos)} of them not in the first set"
        text += f"; plus the train split of another set ({describe(extra_info)}, {whose})"
    return text + f"; test split from {n_test} photos never used in training"


def photos_of(data: Path, extra_data: list[str]) -> dict[str, str]:
    """{photo: role} over the main set and the extra sets ("test" only where no set trains on it)."""
    roles = dict(json.loads((data / "synth.json").read_text())["photos"])
    for extra in extra_data:
        for name, role in json.loads((Path(extra) / "synth.json").read_text())["photos"].items():
            if role != "test" or name not in roles:
                roles[name] = role
    return roles


def package(args: PackageConfig) -> int:
    """Evaluate RUN/best.safetensors on the test split and write the model + card into MODELS."""
    if args.max_side:  # the native-resolution generalization set (issue 22): its own figures and card
        from declip_desktop.training.starter_package import package_native

        return package_native(args)
    torch.set_num_threads(args.threads)
    run, data, models = Path(args.run), Path(args.data), Path(args.models)
    config = json.loads((run / "train_config.json").read_text()) if (run / "train_config.json").exists() else {}
    widths = config.get("widths", list(starter.DEFAULT_WIDTHS))
    mean, std = list(starter.DEFAULT_MEAN), list(starter.DEFAULT_STD)
    card: dict[str, Any] = {"mean": mean, "std": std, "widths": widths, "test_time_flips": args.test_time_flips}
    weights = run / args.weights
    synth_info = json.loads((data / "synth.json").read_text())
    test_photos = sorted(k for k, v in synth_info["photos"].items() if v == "test")
    all_photos = photos_of(data, config.get("extra_data") or [])
    leaked = [name for name in test_photos if all_photos.get(name) != "test"]
    if leaked:  # an extra set trained on a test photo: the test figure would not be held out
        raise StarterDataError(f"the extra training sets use test photos of {data}: {', '.join(leaked)}")
    net = starter.load_starter(weights, card)
    calibration = None
    if args.calibrate:
        calibration = calibrate_bias(net, load_split(data, "valid", args.input_size), mean, std)
        print(f"validation calibration: {json.dumps(calibration)}", flush=True)
    test_items = load_split(data, "test", args.input_size)
    res_test = evaluate(net, test_items, mean, std, full=True)
    single_view = None
    if args.test_time_flips != 1:  # the figure without flip averaging, for the card
        net.test_time_flips = 1
        single_view = evaluate(net, test_items, mean, std)["iou"]
        net.test_time_flips = args.test_time_flips
        print(f"test IoU without flip averaging: {single_view}", flush=True)
    sources_path = Path(args.photos) / "SOURCES.json"
    sources = json.loads(sources_path.read_text()) if sources_path.exists() else {}
    models.mkdir(parents=True, exist_ok=True)
    out_weights = models / f"{args.name}.safetensors"
    _save(net, out_weights)
    card = {
        "name": args.name,
        "kind": starter.KIND,
        "backbone": starter.BACKBONE,
        "layer": None,
        "decoder": starter.ARCHITECTURE,
        "training_set": training_set_text(synth_info, config.get("extra_data") or []),
        "source_file": None,
        "source_sha256": None,
        "sha256": sha256_file(out_weights),
        "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "software_version": SOFTWARE_VERSION,
        "demo": True,
        "label": starter.DEMO_LABEL,
        "input_size": args.input_size,
        "mean": mean,
        "std": std,
        "widths": widths,
        "test_time_flips": args.test_time_flips,
        "notes": ("Demo model — not for casework. Compact U-Net with fixed SRM high-pass input filters, "
                  "trained end to end from scratch (no pretrained backbone) on synthetic local manipulations "
                  "(splice, copy-move, OpenCV Telea/Navier-Stokes inpainting, Poisson blending, resampling, "
                  "blur, noise). It has never seen generative (diffusion/GAN) inpainting. "
                  "Training command: scripts/train_starter.sh. Sources and licences: models/README.md."),
        "metrics": {
            "test_iou": res_test["iou"],
            "test_n": res_test["n"],
            **{f"test_{k}": res_test[k] for k in ("f1_best", "f1_fixed", "ap") if k in res_test},
            "test_per_type": res_test["per_type"],
            "test_per_compression": res_test["per_compression"],
            "test_iou_single_view": single_view,  # without flip averaging (None: the card uses none)
            "valid_iou_best": config.get("best_valid_iou"),  # on the validation subset used in training
            "bias_calibration_on_valid": calibration,
            "test_photos": test_photos,
            "widths": widths,
            "training": {k: config.get(k) for k in ("steps", "steps_done", "batch", "crop", "lr", "seed", "minutes",
                                                       "data", "extra_data", "init")},
            "training_photos": {name: sources.get(name, {}) for name in sorted(all_photos)},
        },
    }
    (models / f"{args.name}.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({"test": res_test, "weights": str(out_weights),
                      "bytes": out_weights.stat().st_size}, indent=2))
    return 0
