"""Training a DeCLIP decoder over a frozen CLIP backbone, as in the paper.

What follows the authors' recipe (their `train.py`, `networks/trainer.py`):
- only the decoder is trained; decoder weights start from N(0, 0.02) (`init_gain`);
- loss: BCE with logits between the 256×256 logits and the mask resized to 256×256 with
  PIL bilinear and *not* binarized (soft edges), 1 = manipulated;
- AdamW (betas 0.9/0.999), lr 1e-3 by default, weight decay 0;
- validation after each epoch with the paper's metrics (`training.metrics`, maps resized to
  the original mask size); early stopping on the mean validation IoU: after `patience`
  epochs without an improvement of at least `min_delta`, the learning rate is divided by
  10 and the count restarts; once it would fall below `min_lr`, training stops. The
  decoder with the best validation IoU is the one kept.
- augmentations (blur, JPEG, colour jitter, all) on the 224×224 input, see `training.augment`.

What differs, and why:
- the backbone's features are cached on disk (`training.feature_cache`): the backbone is
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

import json
import time

from declip_desktop.common.progress import ShouldStop, StepProgress
from declip_desktop.training.config import EpochStats, TrainConfig, TrainingError, TrainResult
from declip_desktop.training.trainer import Trainer, json_nan_safe

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
    progress: StepProgress | None = None,
    show_bars: bool = False,
    should_stop: ShouldStop | None = None,
) -> TrainResult:
    """Train (or resume) a decoder; install the best one in the model store when done.

    `progress(epoch, epochs, line)` after each epoch (and `progress(0, 0, note)` for notes).
    `should_stop()` (e.g. a `CancelToken`) is asked after each completed epoch; True ends the run there,
    resumable with `resume=True` (this is also what happens after Ctrl-C or a crash:
    the state of the last completed epoch is on disk).
    """
    t = Trainer(cfg, progress)
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
        stats = EpochStats(epoch, loss, json_nan_safe(val), t.lr, t.backbone_images - before_backbone,
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
              f"{stats.seconds:.1f}s", epoch, cfg.epochs)
        if not finished and should_stop is not None and should_stop():
            return TrainResult(cfg.name, t.history, t.best_epoch, t.best_val, False,
                               f"stopped after epoch {epoch}; resume with --resume", t.work_dir, notes=t.notes)
    if not finished:
        t.stop_reason = t.stop_reason or f"reached {cfg.epochs} epoch(s)"
        t.save_state(running=False)
    card = t.install() if cfg.install else None
    return TrainResult(cfg.name, t.history, t.best_epoch, t.best_val, True, t.stop_reason, t.work_dir, card, t.notes)


__all__ = ["train"]
