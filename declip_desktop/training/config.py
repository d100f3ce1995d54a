"""What a decoder training run is told (`TrainConfig`) and what it reports (`TrainResult`, `EpochStats`)."""


from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from declip_desktop.common.model_card import ModelCard
from declip_desktop.engine import networks as nets

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

