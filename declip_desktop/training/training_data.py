"""The samples a decoder training run learns from and validates on (`load_training_data`)."""


from __future__ import annotations

import hashlib

from declip_desktop.training.config import TrainConfig, TrainingError
from declip_desktop.training.datasets import Sample, find_samples

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
