"""One decoder training run's state: feature caching, epochs, validation, schedule, saved state.

`Trainer` is driven by `decoder_training.train`; its state is saved after every epoch so an
interrupted run resumes exactly where it stopped.
"""


from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from declip_desktop.common.facts import DEMO_LABEL
from declip_desktop.common.hashing import sha256_file
from declip_desktop.common.progress import StepProgress
from declip_desktop.common.model_card import ModelCard
from declip_desktop.common.version import SOFTWARE_VERSION
from declip_desktop.engine import networks as nets
from declip_desktop.modelstore.safetensors_header import write_text_atomic
from declip_desktop.modelstore.store import ModelStore, check_model_name, utc_now_iso
from declip_desktop.modelstore.weights_file import write_safetensors
from declip_desktop.training.augment import AUGMENTATIONS, augment, variant_rng
from declip_desktop.training.config import STATE_VERSION, EpochStats, TrainConfig, TrainingError
from declip_desktop.training.datasets import Sample, load_mask, load_soft_mask
from declip_desktop.training.feature_cache import FeatureCache, backbone_fingerprint
from declip_desktop.training.frozen_network import build_frozen_network, init_decoder, pick_torch_device
from declip_desktop.training.metrics import image_metrics, summarize
from declip_desktop.training.training_data import load_training_data

class Trainer:
    def __init__(self, cfg: TrainConfig, progress: StepProgress | None):
        from declip_desktop.common.paths import declip_home

        self.cfg = cfg
        self._progress = progress
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
        self.device = pick_torch_device(cfg.device)

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
    def say(self, text: str, done: int = 0, total: int = 0) -> None:
        """Report to `progress(done, total, text)` (epochs counted; notes with `total` 0)."""
        if self._progress is not None:
            self._progress(done, total, text)

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
            "identity": self._config_identity(), "config": jsonable(dataclasses.asdict(self.cfg)),
            "epoch": self.epoch, "lr": self.lr, "es_best": self.es_best, "es_count": self.es_count,
            "best_iou": None if self.best_iou == -math.inf else self.best_iou, "best_epoch": self.best_epoch,
            "best_val": self.best_val, "history": [dataclasses.asdict(h) for h in self.history],
            "param_groups": jsonable(opt["param_groups"]), "running": running, "stop_reason": self.stop_reason,
        }
        write_text_atomic(self.work_dir / "state.json", json.dumps(json_nan_safe(state), indent=1))
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
            metrics={"validation": json_nan_safe(self.best_val or {}), "best_epoch": self.best_epoch},
            backbone_sources=self.backbone_sources,
            extra={"training": json_nan_safe({
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


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    return value


def json_nan_safe(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_nan_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_nan_safe(v) for v in value]
    return value
