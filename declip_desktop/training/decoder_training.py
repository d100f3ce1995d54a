"""Training a DeCLIP decoder over a frozen CLIP backbone, as in the paper.

What follows the authors' recipe (their `train.py`, `networks/trainer.py`):
- only the decoder is trained; decoder weights start from N(0, 0.02) (`init_gain`);
- loss: BCE with logits between the 256×256 logits and the mask resized to 256×256 with
  PIL bilinear and *not* binarized (soft edges), 1 = manipulated;
- AdamW (betas 0.9/0.999), lr 1e-3 by default, weight decay 0;
- validation after each epoch with the paper's metrics (`engine.metrics`, maps resized to
  the original mask size); early stopping on the mean validation IoU: after `patience`
  epochs without an improvement of at least `min_delta`, the learning rate is divided by
  10 and the count restarts; once it would fall below `min_lr`, training stops. The
  decoder with the best validation IoU is the one kept.
- augmentations (blur, JPEG, colour jitter, all) on the 224×224 input, see `engine.augment`.

What differs, and why:
- the backbone's features are cached on disk (`engine.feature_cache`): the backbone is
  frozen and kept in eval mode, so each input gives the same features every epoch. With
  augmentation, each image has `aug_variants` fixed, seeded augmented versions (one is
  drawn per epoch) so those can be cached too; `aug_variants=0` draws a fresh augmentation
  every epoch and then nothing is cached (the backbone runs every epoch, as the authors').
- RN50 BatchNorm layers stay in eval mode (the authors' RN50-only models let
  `model.train()` reach them); required for features to be cacheable at all.
- the state is saved after every epoch (`work_dir/state.json` + `state-<epoch>.safetensors`,
  the JSON written last, so a crash while saving leaves the previous epoch's state whole), and
  `resume=True` continues exactly where an interrupted run stopped (shuffling and
  augmentation draws are seeded per epoch, so a resumed run equals an uninterrupted one).
- the result is installed in the model store as `<name>.safetensors` + model card
  (training data, epochs, validation metrics), usable by the Localizer like any model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from declip_desktop.common.hashing import sha256_file
from declip_desktop.common.version import SOFTWARE_VERSION
from declip_desktop.engine import networks as nets
from declip_desktop.engine.augment import AUGMENTATIONS, augment, variant_rng
from declip_desktop.engine.datasets import DatasetError, Sample, find_samples, load_mask, load_soft_mask
from declip_desktop.engine.feature_cache import FeatureCache, backbone_fingerprint
from declip_desktop.engine.metrics import image_metrics, summarize
from declip_desktop.engine.models import DEMO_LABEL, ModelCard, ModelError, ModelStore, check_model_name, utc_now_iso
from declip_desktop.engine.weights_file import write_safetensors, write_text_atomic

STATE_VERSION = 1
TINY_VIT = nets.VitSpec(width=64, depth=2, patch_size=14, image_size=224, head_width=64)
TINY_RESNET = nets.ResNetSpec(width=8, blocks=(1, 1, 1, 1))
TINY_DECODER_WIDTHS = (32, 16, 8, 8)


class TrainingError(Exception):
    """Training cannot start or continue; the message says what to change."""


@dataclass
class TrainConfig:
    data: str
    name: str
    backbone: str = nets.VIT
    layer: str = "layer20"
    decoder: str = "conv-20"
    generator: str | None = None  # Dolos generator folder
    train_split: str = "train"
    val_split: str = "valid"
    val_data: str | None = None  # separate validation folder (any layout)
    val_fraction: float = 0.1  # plain layout without val_data: share of images held out
    mask_polarity: str | None = None
    # Where the frozen backbone's weights come from (exactly one):
    base_model: str | None = None  # an installed DeCLIP model (its backbone is reused)
    clip_weights: list[str] = field(default_factory=list)  # OpenAI CLIP files (ViT-L-14.pt, RN50.pt)
    random_backbone: str | None = None  # "tiny" | "full": random weights, demo model (tests, benchmarks)
    decoder_widths: tuple[int, ...] | None = None  # None: the paper's (512, 256, 128, 64); tiny: smaller
    epochs: int = 400
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 5
    min_delta: float = 0.001  # IoU points
    min_lr: float = 1e-6
    init_gain: float = 0.02
    augment: str = "none"
    aug_variants: int = 4
    cache: bool = True
    cache_dir: str | None = None
    cache_dtype: str = "float32"
    device: str = "auto"
    seed: int = 0
    work_dir: str | None = None
    install: bool = True  # install the best model in the store at the end


@dataclass
class EpochStats:
    epoch: int
    loss: float
    val: dict[str, Any]
    lr: float
    backbone_images: int  # images that went through the backbone this epoch
    cache_hits: int
    seconds: float
    cpu_seconds: float = 0.0  # process CPU time (all threads): comparable on a busy machine


@dataclass
class TrainResult:
    name: str
    history: list[EpochStats]
    best_epoch: int | None
    best_val: dict[str, Any] | None
    finished: bool  # False when stopped by `should_stop` (resumable)
    stop_reason: str
    work_dir: Path
    card: ModelCard | None = None
    notes: list[str] = field(default_factory=list)


Progress = Callable[[str], None]


# ----------------------------------------------------------------------------- data


def _split_plain(samples: list[Sample], fraction: float) -> tuple[list[Sample], list[Sample]]:
    """Deterministic hold-out by name hash (stable when images are added)."""
    def bucket(s: Sample) -> float:
        return int(hashlib.sha256(s.name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    val = [s for s in samples if bucket(s) < fraction]
    train = [s for s in samples if bucket(s) >= fraction]
    if not val and len(train) > 1:
        val, train = train[:1], train[1:]
    return train, val


def load_training_data(cfg: TrainConfig) -> tuple[list[Sample], list[Sample], str, str, list[str]]:
    """(train samples, val samples, polarity, description, notes)."""
    notes: list[str] = []
    train_set = find_samples(cfg.data, generator=cfg.generator, split=cfg.train_split, polarity=cfg.mask_polarity,
                             default_split=cfg.train_split)
    train = train_set.samples
    if cfg.val_data:
        val_set = find_samples(cfg.val_data, generator=cfg.generator, split=cfg.val_split, polarity=cfg.mask_polarity,
                               default_split=cfg.val_split)
        val, val_desc = val_set.samples, val_set.description
        if val_set.polarity != train_set.polarity:
            raise TrainingError("training and validation folders have different mask polarities; set --mask-polarity")
    elif train_set.layout == "dolos":
        val_set = find_samples(cfg.data, generator=cfg.generator, split=cfg.val_split, polarity=cfg.mask_polarity,
                               default_split=cfg.val_split)
        if val_set.description == train_set.description:
            raise TrainingError(f"{cfg.data}: validation split {cfg.val_split!r} not found next to {cfg.train_split!r}")
        val, val_desc = val_set.samples, val_set.description
    else:
        train, val = _split_plain(train, cfg.val_fraction)
        val_desc = f"{len(val)} held-out images of {train_set.description}"
    for label, items in (("training", train), ("validation", val)):
        missing = [s.name for s in items if s.mask is None]
        if missing:
            notes.append(f"{len(missing)} {label} image(s) without a mask skipped: {', '.join(missing[:5])}"
                         + (" …" if len(missing) > 5 else ""))
    train = [s for s in train if s.mask is not None]
    val = [s for s in val if s.mask is not None]
    if not train:
        raise TrainingError(f"{cfg.data}: no training image with a mask ({train_set.description})")
    if not val:
        raise TrainingError(f"{cfg.data}: no validation image with a mask; give --val-data or --val-fraction")
    desc = f"{train_set.description} ({len(train)} images); validation: {val_desc} ({len(val)} images)"
    return train, val, train_set.polarity, desc, notes


# ----------------------------------------------------------------------------- network


def _pick_device(device: str) -> torch.device:
    # The Localizer's rule (one definition): auto → cuda, else mps, else cpu; a missing one is refused.
    from declip_desktop.engine.localizer import pick_device

    return torch.device(pick_device(device))


def _visual_to_backbone(state: dict[str, torch.Tensor], target: str) -> dict[str, torch.Tensor]:
    return {f"{target}.{k[len('visual.'):]}": v for k, v in state.items() if k.startswith("visual.")}


def build_frozen_network(cfg: TrainConfig) -> tuple[nets.DeclipNet, list[dict], bool]:
    """(network with the frozen backbone's weights loaded, backbone sources for the card, demo?)."""
    sources = [bool(cfg.base_model), bool(cfg.clip_weights), bool(cfg.random_backbone)]
    if sum(sources) != 1:
        raise TrainingError("choose where the frozen backbone's weights come from: --base-model NAME, "
                            "--clip-weights FILE (OpenAI ViT-L-14.pt / RN50.pt), or --random-backbone for tests")
    widths = tuple(cfg.decoder_widths) if cfg.decoder_widths else nets.DEFAULT_DECODER_WIDTHS
    try:
        if cfg.random_backbone:
            if cfg.random_backbone not in ("tiny", "full"):
                raise TrainingError(f"--random-backbone is tiny or full, not {cfg.random_backbone!r}")
            tiny = cfg.random_backbone == "tiny"
            spec = nets.NetSpec(cfg.backbone, cfg.layer, cfg.decoder,
                                vit=TINY_VIT if tiny else nets.VitSpec(),
                                resnet=TINY_RESNET if tiny else nets.ResNetSpec(),
                                decoder_widths=tuple(cfg.decoder_widths or (TINY_DECODER_WIDTHS if tiny else widths)))
            torch.manual_seed(cfg.seed)
            net = nets.DeclipNet(spec)
            return net, [{"role": cfg.backbone, "file": f"random ({cfg.random_backbone}, seed {cfg.seed})"}], True
        backbone_state, shapes, card_sources = _backbone_weights(cfg)
        spec = nets.spec_from_shapes(cfg.backbone, cfg.layer, cfg.decoder, shapes)
        spec = dataclasses.replace(spec, decoder_widths=widths)
    except nets.NetworkSpecError as exc:
        raise TrainingError(str(exc)) from None
    net = nets.DeclipNet(spec)
    expected = net.backbone.state_dict()
    missing = [k for k in expected if k not in backbone_state]
    wrong = [k for k in expected if k in backbone_state and tuple(backbone_state[k].shape) != tuple(expected[k].shape)]
    if missing or wrong:
        raise TrainingError(f"the backbone weights do not fit {cfg.backbone} {cfg.layer}: "
                            f"missing {missing[:5]}, wrong shape {wrong[:5]}")
    net.backbone.load_state_dict({k: backbone_state[k].float() for k in expected}, strict=True)
    return net, card_sources, False


def _backbone_weights(cfg: TrainConfig) -> tuple[dict[str, torch.Tensor], dict[str, tuple], list[dict]]:
    """Backbone-relative tensors (`vit.*`, `rn50.*`), their shapes as `backbone.*`, and their sources."""
    state: dict[str, torch.Tensor] = {}
    sources: list[dict] = []
    if cfg.base_model:
        from safetensors.torch import load_file

        from declip_desktop.engine.models import resolve_model

        installed = resolve_model(cfg.base_model)
        if installed.card.kind != "declip":
            raise TrainingError(f"model {installed.name!r} is a {installed.card.kind} model; it has no CLIP backbone")
        if installed.card.backbone != cfg.backbone:
            raise TrainingError(f"model {installed.name!r} has a {installed.card.backbone} backbone, not {cfg.backbone}")
        if sha256_file(installed.weights_path) != installed.card.sha256:
            raise TrainingError(f"model {installed.name!r}: weights file changed since install (SHA-256 mismatch)")
        full = load_file(str(installed.weights_path))
        state = {k[len("backbone."):]: v for k, v in full.items() if k.startswith("backbone.")}
        sources.append({"role": cfg.backbone, "file": f"model {installed.name}", "sha256": installed.card.sha256})
    else:
        from declip_desktop.engine.checkpoints import read_clip_weights

        for path in cfg.clip_weights:
            role, visual, sha = read_clip_weights(Path(path))
            target = "vit" if role == nets.VIT else "rn50"
            state.update(_visual_to_backbone(visual, target))
            sources.append({"role": role, "file": Path(path).name, "sha256": sha})
    shapes = {f"backbone.{k}": tuple(v.shape) for k, v in state.items()}
    return state, shapes, sources


def init_decoder(decoder: torch.nn.Module, gain: float) -> None:
    """The authors' initialisation: every `weight` in `fc` (conv, BatchNorm, linear) ~ N(0, gain)."""
    for module in decoder.fc:
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor):
            torch.nn.init.normal_(weight.data, 0.0, gain)


# ----------------------------------------------------------------------------- the run


class _Trainer:
    def __init__(self, cfg: TrainConfig, progress: Progress | None):
        from declip_desktop.common.paths import declip_home

        self.cfg = cfg
        self.say = progress or (lambda _m: None)
        check_model_name(cfg.name)
        if cfg.augment not in AUGMENTATIONS:
            raise TrainingError(f"unknown augmentation {cfg.augment!r} (known: {', '.join(AUGMENTATIONS)})")
        if cfg.epochs < 1 or cfg.batch_size < 1:
            raise TrainingError("--epochs and --batch-size must be at least 1")
        self.store = ModelStore()
        if cfg.install and cfg.name in self.store:
            raise TrainingError(f"a model named {cfg.name!r} is installed already; choose another --name "
                                f"or remove it with `declip models remove {cfg.name}`")
        self.work_dir = Path(cfg.work_dir) if cfg.work_dir else declip_home() / "training" / cfg.name
        self.train, self.val, self.polarity, self.data_desc, self.notes = load_training_data(cfg)
        self.device = _pick_device(cfg.device)

        self.say("preparing the frozen backbone")
        self.net, self.backbone_sources, self.demo = build_frozen_network(cfg)
        self.net.to(self.device)
        self.backbone = self.net.backbone.eval()
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.decoder = self.net.decoder
        self.fingerprint = backbone_fingerprint(self.backbone)
        spec = self.net.spec
        side = spec.resnet.stage_size(spec.resnet_layer) if cfg.backbone == nets.RN50 else spec.vit.grid
        shape = (spec.feature_channels, side, side)
        cache_root = Path(cfg.cache_dir) if cfg.cache_dir else declip_home() / "cache" / "features"
        backbone_id = f"{cfg.backbone}|{cfg.layer}|{self.fingerprint}"
        self.cache = FeatureCache(cache_root, backbone_id, shape, cfg.cache_dtype) if cfg.cache else None
        self._hashes: dict[Path, str] = {}
        self._val_masks: dict[Path, np.ndarray] = {}
        self.backbone_images = 0

        torch.manual_seed(cfg.seed)
        init_decoder(self.decoder, cfg.init_gain)
        params = [p for p in self.decoder.parameters()]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay)
        self.loss_fn = torch.nn.BCEWithLogitsLoss()
        self.epoch = 0  # epochs completed
        self.lr = cfg.lr
        self.es_best: float | None = None
        self.es_count = 0
        self.best_iou = -math.inf
        self.best_epoch: int | None = None
        self.best_val: dict | None = None
        self.best_decoder = {k: v.detach().clone() for k, v in self.decoder.state_dict().items()}
        self.history: list[EpochStats] = []
        self.stop_reason = ""

    # ---------------------------------------------------------------- features
    def _sha(self, path: Path) -> str:
        if path not in self._hashes:
            self._hashes[path] = sha256_file(path)
        return self._hashes[path]

    def _aug_key(self, sample: Sample, epoch: int, rng: np.random.Generator | None) -> tuple[str, bool]:
        """(key naming the exact input picture, cacheable?)."""
        cfg = self.cfg
        if cfg.augment == "none" or rng is None:
            return "none", True
        if cfg.aug_variants > 0:
            return f"{cfg.augment}:v{int(rng.integers(cfg.aug_variants))}:s{cfg.seed}", True
        return f"{cfg.augment}:epoch{epoch}:s{cfg.seed}", False

    def _input(self, sample: Sample, aug_key: str) -> torch.Tensor:
        from declip_desktop.common.images import load_rgb_image
        from declip_desktop.engine.preprocess import resize_for_model, to_input_tensor

        img = resize_for_model(load_rgb_image(sample.image), self.net.spec.vit.image_size)
        if aug_key != "none":
            kind, variant, _ = aug_key.split(":")
            img = augment(img, kind, variant_rng(self.cfg.seed, self._sha(sample.image), variant))
        return to_input_tensor(img, img.width)

    def features(self, samples: list[Sample], keys: list[tuple[str, bool]]) -> torch.Tensor:
        out: list[torch.Tensor | None] = [None] * len(samples)
        todo = []
        for i, (s, (aug_key, cacheable)) in enumerate(zip(samples, keys)):
            if self.cache is not None and cacheable:
                out[i] = self.cache.load(self.cache.key(self._sha(s.image), aug_key))
            if out[i] is None:
                todo.append(i)
        if todo:
            x = torch.stack([self._input(samples[i], keys[i][0]) for i in todo]).to(self.device)
            with torch.no_grad():
                feats = self.backbone(x).float()
            self.backbone_images += len(todo)
            for j, i in enumerate(todo):
                out[i] = feats[j]
                if self.cache is not None and keys[i][1]:
                    self.cache.store(self.cache.key(self._sha(samples[i].image), keys[i][0]), feats[j])
        return torch.stack([t.to(self.device) for t in out])

    # ---------------------------------------------------------------- epochs
    def _batches(self, n: int, order: np.ndarray):
        bs = self.cfg.batch_size
        for start in range(0, n, bs):
            yield order[start:start + bs]

    def train_epoch(self, epoch: int, bar_factory) -> float:
        rng = np.random.default_rng([self.cfg.seed, epoch])
        order = rng.permutation(len(self.train))
        self.decoder.train()
        total, count = 0.0, 0
        with bar_factory(total=len(self.train), desc=f"epoch {epoch}") as bar:
            for idx in self._batches(len(self.train), order):
                batch = [self.train[i] for i in idx]
                keys = [self._aug_key(s, epoch, rng) for s in batch]
                feats = self.features(batch, keys)
                target = torch.from_numpy(np.stack([
                    load_soft_mask(s.mask, self.polarity, nets.OUTPUT_SIZE) for s in batch
                ]))[:, None].to(self.device)
                logits = self.decoder(feats)
                loss = self.loss_fn(logits, target)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total += float(loss.detach()) * len(batch)
                count += len(batch)
                bar.update(len(batch))
                last = self.history[-1].val.get("authors_mean", {}).get("iou") if self.history else None
                bar.set_postfix(loss=f"{total / count:.4f}", val_iou="-" if last is None else f"{last:.2f}")
        return total / max(count, 1)

    def validate(self) -> dict[str, Any]:
        self.decoder.eval()
        rows = []
        with torch.no_grad():
            for start in range(0, len(self.val), self.cfg.batch_size):
                batch = self.val[start:start + self.cfg.batch_size]
                feats = self.features(batch, [("none", True)] * len(batch))
                probs = torch.sigmoid(self.decoder(feats)[:, 0]).float().cpu().numpy()
                for s, prob in zip(batch, probs):
                    if s.mask not in self._val_masks:
                        self._val_masks[s.mask] = load_mask(s.mask, self.polarity)
                    rows.append(image_metrics(prob, self._val_masks[s.mask]))
        return summarize(rows)

    def step_schedule(self, val_iou: float) -> bool:
        """Early stopping as the authors do it; returns False when training should stop."""
        if self.es_best is None or val_iou >= self.es_best + self.cfg.min_delta:
            self.es_best, self.es_count = val_iou, 0
            return True
        self.es_count += 1
        if self.es_count < self.cfg.patience:
            return True
        new_lr = self.lr / 10.0
        if new_lr < self.cfg.min_lr * (1 - 1e-9):
            self.stop_reason = f"validation IoU stopped improving at lr {self.lr:g}"
            return False
        self.lr = new_lr
        for group in self.optimizer.param_groups:
            group["lr"] = new_lr
        self.es_best, self.es_count = None, 0
        self.say(f"validation IoU stopped improving: learning rate divided by 10 → {new_lr:g}")
        return True

    # ---------------------------------------------------------------- state
    def _config_identity(self) -> dict:
        return {
            "backbone": self.cfg.backbone, "layer": self.cfg.layer, "decoder": self.cfg.decoder,
            "backbone_sha256": self.fingerprint,
            "decoder_widths": list(self.net.spec.decoder_widths),
            "train_images": hashlib.sha256("\n".join(str(s.image) for s in self.train).encode()).hexdigest(),
            "val_images": hashlib.sha256("\n".join(str(s.image) for s in self.val).encode()).hexdigest(),
            "augment": self.cfg.augment, "aug_variants": self.cfg.aug_variants, "seed": self.cfg.seed,
            "batch_size": self.cfg.batch_size,
        }

    def save_state(self, running: bool) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        tensors = {f"decoder.{k}": v.detach().cpu() for k, v in self.decoder.state_dict().items()}
        tensors.update({f"best.{k}": v.detach().cpu() for k, v in self.best_decoder.items()})
        opt = self.optimizer.state_dict()
        for pid, st in opt["state"].items():
            for k, v in st.items():
                v = v if isinstance(v, torch.Tensor) else torch.tensor(v)
                tensors[f"opt.{pid}.{k}"] = v.detach().cpu().reshape(-1) if v.dim() == 0 else v.detach().cpu()
        tensor_name = f"state-{self.epoch:04d}.safetensors"
        sha = write_safetensors(self.work_dir / tensor_name, tensors)
        state = {
            "version": STATE_VERSION, "software_version": SOFTWARE_VERSION, "tensors": tensor_name, "tensors_sha256": sha,
            "identity": self._config_identity(), "config": _jsonable(dataclasses.asdict(self.cfg)),
            "epoch": self.epoch, "lr": self.lr, "es_best": self.es_best, "es_count": self.es_count,
            "best_iou": None if self.best_iou == -math.inf else self.best_iou, "best_epoch": self.best_epoch,
            "best_val": self.best_val, "history": [dataclasses.asdict(h) for h in self.history],
            "param_groups": _jsonable(opt["param_groups"]), "running": running, "stop_reason": self.stop_reason,
        }
        write_text_atomic(self.work_dir / "state.json", json.dumps(_json_nan_safe(state), indent=1))
        for old in self.work_dir.glob("state-*.safetensors"):  # only now is the previous state superseded
            if old.name != tensor_name:
                old.unlink(missing_ok=True)

    def load_state(self) -> None:
        from safetensors.torch import load_file

        path = self.work_dir / "state.json"
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TrainingError(f"cannot read the saved training state {path}: {exc}") from None
        if state.get("version") != STATE_VERSION:
            raise TrainingError(f"{path} was written by another version of the trainer; start a new run")
        mine, saved = self._config_identity(), state.get("identity", {})
        diff = [k for k in mine if mine[k] != saved.get(k)]
        if diff:
            raise TrainingError(f"cannot resume {path}: the run differs in {', '.join(diff)}. "
                                "Use the same options and data, or another --work-dir")
        tensor_path = self.work_dir / str(state.get("tensors", ""))
        if not tensor_path.is_file():
            raise TrainingError(f"{tensor_path} named by {path.name} is missing; start a new run")
        if sha256_file(tensor_path) != state["tensors_sha256"]:
            raise TrainingError(f"{tensor_path} does not match {path.name} (changed or damaged); start a new run")
        tensors = load_file(str(tensor_path))
        self.decoder.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("decoder.")}, strict=True)
        self.best_decoder = {k[5:]: v.to(self.device) for k, v in tensors.items() if k.startswith("best.")}
        opt_state: dict[int, dict] = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, pid, name = k.split(".", 2)
                opt_state.setdefault(int(pid), {})[name] = v.reshape(()) if name == "step" else v
        groups = state["param_groups"]
        for g in groups:
            if isinstance(g.get("betas"), list):
                g["betas"] = tuple(g["betas"])
        self.optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
        self.epoch, self.lr = state["epoch"], state["lr"]
        self.es_best, self.es_count = state["es_best"], state["es_count"]
        self.best_iou = state["best_iou"] if state["best_iou"] is not None else -math.inf
        self.best_epoch, self.best_val = state["best_epoch"], state["best_val"]
        self.history = [EpochStats(**h) for h in state["history"]]
        self.stop_reason = state.get("stop_reason", "")
        if not state.get("running", True):
            self.stop_reason = self.stop_reason or "finished"
            if self.stop_reason.startswith("reached") and self.cfg.epochs > self.epoch:
                self.stop_reason = ""  # asked for more epochs than the finished run had: go on

    # ---------------------------------------------------------------- output
    def install(self) -> ModelCard:
        tensors = {f"backbone.{k}": v.detach().cpu() for k, v in self.backbone.state_dict().items()}
        tensors.update({f"decoder.{k}": v.detach().cpu() for k, v in self.best_decoder.items()})
        if self.cfg.name in self.store:
            raise TrainingError(f"a model named {self.cfg.name!r} was installed meanwhile; the trained decoder is kept in "
                                f"{self.work_dir} — remove the other model and resume to install")
        self.store.root.mkdir(parents=True, exist_ok=True)
        weights_path, card_path = self.store.paths_for(self.cfg.name)
        sha = write_safetensors(weights_path, tensors, metadata={
            "format": "pt", "backbone": self.cfg.backbone, "layer": self.cfg.layer, "decoder": self.cfg.decoder,
        })
        cfg = self.cfg
        label = f"DeCLIP {cfg.backbone} {cfg.layer} {cfg.decoder}, trained here"
        card = ModelCard(
            name=cfg.name, kind="declip", backbone=cfg.backbone, layer=cfg.layer, decoder=cfg.decoder,
            training_set=self.data_desc, source_file=None, source_sha256=None, sha256=sha, created=utc_now_iso(),
            software_version=SOFTWARE_VERSION, demo=self.demo, label=DEMO_LABEL if self.demo else label,
            input_size=self.net.spec.vit.image_size, notes=(
                f"Decoder trained with `declip train` for {self.epoch} epoch(s) over a frozen backbone "
                f"({'random weights — not for casework' if self.demo else 'see backbone_sources'}); "
                f"best validation IoU at epoch {self.best_epoch}. Stopped: {self.stop_reason}."),
            metrics={"validation": _json_nan_safe(self.best_val or {}), "best_epoch": self.best_epoch},
            backbone_sources=self.backbone_sources,
            extra={"training": _json_nan_safe({
                "data": str(Path(cfg.data).resolve()), "description": self.data_desc,
                "epochs_run": self.epoch, "best_epoch": self.best_epoch, "stop_reason": self.stop_reason,
                "optimizer": "AdamW", "lr": cfg.lr, "final_lr": self.lr, "weight_decay": cfg.weight_decay,
                "batch_size": cfg.batch_size, "augment": cfg.augment, "aug_variants": cfg.aug_variants,
                "loss": "BCEWithLogits on 256x256 soft masks", "seed": cfg.seed,
                "history": [{"epoch": h.epoch, "loss": h.loss, "val_iou": h.val.get("authors_mean", {}).get("iou"),
                             "lr": h.lr} for h in self.history],
            })},
        )
        try:
            write_text_atomic(card_path, card.to_json())
        except OSError:
            weights_path.unlink(missing_ok=True)
            raise
        return card


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    return value


def _json_nan_safe(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_nan_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_nan_safe(v) for v in value]
    return value


def _quiet_bar(total: int, desc: str):
    class _Bar:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            pass

        def set_postfix(self, **kw):
            pass

    return _Bar()


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    progress: Progress | None = None,
    show_bars: bool = False,
    should_stop: Callable[[int], bool] | None = None,
) -> TrainResult:
    """Train (or resume) a decoder; install the best one in the model store when done.

    `should_stop(epoch)` is asked after each completed epoch; True ends the run there,
    resumable with `resume=True` (this is also what happens after Ctrl-C or a crash:
    the state of the last completed epoch is on disk).
    """
    t = _Trainer(cfg, progress)
    state_file = t.work_dir / "state.json"
    if resume:
        if not state_file.is_file():
            raise TrainingError(f"nothing to resume in {t.work_dir} (no state.json); run without --resume")
        t.load_state()
        t.say(f"resuming after epoch {t.epoch} (lr {t.lr:g}, best val IoU {t.best_iou:.2f})")
    elif state_file.is_file():
        raise TrainingError(f"{t.work_dir} holds an earlier run of {cfg.name!r}; continue it with --resume, "
                            "or choose another --name / --work-dir")

    if show_bars:
        from tqdm import tqdm

        def bar_factory(total, desc):
            return tqdm(total=total, desc=desc, unit="img", leave=False)
    else:
        bar_factory = _quiet_bar

    finished = bool(t.stop_reason)
    while not finished and t.epoch < cfg.epochs:
        epoch = t.epoch + 1
        start, cpu_start, before_backbone = time.perf_counter(), time.process_time(), t.backbone_images
        hits_before = t.cache.hits if t.cache else 0
        loss = t.train_epoch(epoch, bar_factory)
        val = t.validate()
        val_iou = val["authors_mean"]["iou"]
        if val_iou > t.best_iou:
            t.best_iou, t.best_epoch, t.best_val = val_iou, epoch, val
            t.best_decoder = {k: v.detach().clone() for k, v in t.decoder.state_dict().items()}
        stats = EpochStats(epoch, loss, _json_nan_safe(val), t.lr, t.backbone_images - before_backbone,
                           (t.cache.hits - hits_before) if t.cache else 0, time.perf_counter() - start,
                           time.process_time() - cpu_start)
        t.history.append(stats)
        t.epoch = epoch
        keep_going = t.step_schedule(val_iou)
        if not keep_going:
            finished = True
        elif t.epoch >= cfg.epochs:
            t.stop_reason, finished = f"reached {cfg.epochs} epoch(s)", True
        t.save_state(running=not finished)
        t.say(f"epoch {epoch}: loss {loss:.4f}, val IoU {val_iou:.2f} (best {t.best_iou:.2f} @ {t.best_epoch}), "
              f"lr {stats.lr:g}, backbone {stats.backbone_images} img, cache hits {stats.cache_hits}, "
              f"{stats.seconds:.1f}s")
        if not finished and should_stop is not None and should_stop(epoch):
            return TrainResult(cfg.name, t.history, t.best_epoch, t.best_val, False,
                               f"stopped after epoch {epoch}; resume with --resume", t.work_dir, notes=t.notes)
    if not finished:
        t.stop_reason = t.stop_reason or f"reached {cfg.epochs} epoch(s)"
        t.save_state(running=False)
    card = t.install() if cfg.install else None
    return TrainResult(cfg.name, t.history, t.best_epoch, t.best_val, True, t.stop_reason, t.work_dir, card, t.notes)


__all__ = ["TrainConfig", "TrainResult", "EpochStats", "TrainingError", "DatasetError", "train", "ModelError"]
