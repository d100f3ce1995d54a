"""Decoder training on a tiny random backbone: loss goes down, the feature cache replaces the
backbone from the second epoch on, an interrupted run resumes to the same result, and the
trained model is installed and loadable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from declip_desktop.cli import main
from declip_desktop.common.progress import CancelToken
from declip_desktop.engine import networks as nets
from declip_desktop.training.config import TrainConfig, TrainingError
from declip_desktop.training.decoder_training import train

WIDTHS = (16, 8, 8, 4)


def make_dolos(root: Path, n_train=4, n_val=2, size=(48, 56)) -> Path:
    """Dolos layout; the manipulated square is brighter, so a decoder can learn something."""
    rng = np.random.default_rng(0)
    h, w = size
    for split, n in (("train", n_train), ("valid", n_val)):
        for i in range(n):
            img = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
            mask = np.full((h, w), 255, np.uint8)  # Dolos: black = manipulated
            y, x = int(rng.integers(0, h - 24)), int(rng.integers(0, w - 24))
            mask[y : y + 24, x : x + 24] = 0
            img[mask == 0] += 120
            for kind, arr in (("images", img), ("masks", mask)):
                d = root / "fake" / "ldm" / kind / split
                d.mkdir(parents=True, exist_ok=True)
                Image.fromarray(arr).save(d / f"{i:03d}.png")
    return root


def config(root: Path, name: str, **kw) -> TrainConfig:
    base = dict(data=str(root), name=name, layer="layer1", decoder="conv-4", random_backbone="tiny",
                decoder_widths=WIDTHS, epochs=2, batch_size=2, lr=1e-2, seed=3)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def dolos(tmp_path_factory):
    return make_dolos(tmp_path_factory.mktemp("dolos"))


def test_two_epochs_lower_the_loss_and_use_the_cache(dolos, monkeypatch):
    calls = []
    original = nets.ClipBackbone.forward

    def counting_forward(self, x):
        calls.append(x.shape[0])
        return original(self, x)

    monkeypatch.setattr(nets.ClipBackbone, "forward", counting_forward)
    told = []
    result = train(config(dolos, "t-cache"), progress=lambda done, total, text: told.append((done, total)))
    first, second = result.history
    assert second.loss < first.loss
    assert first.backbone_images == 6 and second.backbone_images == 0  # 4 train + 2 val, then all cached
    assert second.cache_hits == 6
    assert sum(calls) == 6  # the backbone's forward never ran in epoch 2
    assert result.finished and result.card is not None
    assert [t for t in told if t[1]] == [(1, 2), (2, 2)]  # one count per epoch, of the run's epochs

    # installed, with a card describing the training, and loadable by the engine
    from declip_desktop.modelstore.loading import load_network
    from declip_desktop.modelstore.store import ModelStore

    model = ModelStore().get("t-cache")
    card = json.loads(model.card_path.read_text())
    assert card["demo"] is True and card["decoder"] == "conv-4" and "Dolos ldm/train (4 images)" in card["training_set"]
    assert card["training"]["epochs_run"] == 2 and card["metrics"]["best_epoch"] in (1, 2)
    assert set(card["metrics"]["validation"]) >= {"n", "iou", "f1_best", "f1_fixed", "ap"}
    net = load_network(model)
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 224, 224)).shape == (1, 1, 256, 256)


def test_interrupted_run_resumes_to_the_same_decoder(dolos, tmp_path):
    # one uninterrupted run, and one stopped after epoch 1 then resumed
    full = train(config(dolos, "t-full", install=False, work_dir=str(tmp_path / "full")))
    cfg = config(dolos, "t-resumed", work_dir=str(tmp_path / "resumed"), cache_dir=str(tmp_path / "cache2"))
    stop = CancelToken()  # what the GUI's Cancel sets; asked after each epoch
    part = train(cfg, should_stop=stop, progress=lambda done, total, text: stop.set() if done == 1 else None)
    assert not part.finished and len(part.history) == 1 and part.history[0].backbone_images == 6
    with pytest.raises(TrainingError, match="--resume"):
        train(cfg)  # a second start must not silently overwrite the saved run
    done = train(cfg, resume=True)
    assert done.finished and [h.epoch for h in done.history] == [1, 2]
    assert done.history[1].loss == full.history[1].loss
    assert done.history[1].backbone_images == 0  # cache survived the interruption

    from safetensors.torch import load_file

    assert [p.name for p in (tmp_path / "resumed").glob("state-*.safetensors")] == ["state-0002.safetensors"]
    a = load_file(str(tmp_path / "full" / "state-0002.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "state-0002.safetensors"))
    for k in a:
        if k.startswith("decoder."):
            assert torch.equal(a[k], b[k]), k
    # resuming with other options is refused
    with pytest.raises(TrainingError, match="differs"):
        train(config(dolos, "t-resumed", work_dir=str(tmp_path / "resumed"), seed=4, install=False), resume=True)


def test_augmented_variants_are_cached_and_fresh_ones_are_not(dolos):
    r = train(config(dolos, "t-aug", augment="all", aug_variants=1, install=False))
    assert r.history[1].backbone_images == 0  # the single variant per image is cached
    r = train(config(dolos, "t-aug0", augment="jpeg", aug_variants=0, epochs=2, install=False))
    assert r.history[1].backbone_images == 4  # fresh augmentation: training images recomputed, val cached


def test_cli_train_then_eval(dolos, tmp_path, capsys):
    code = main(["train", "--data", str(dolos), "--generator", "ldm", "--name", "cli-tiny", "--layer", "layer1",
                 "--decoder", "conv-4", "--random-backbone", "tiny", "--epochs", "1", "--batch-size", "3", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    s = json.loads(out)
    assert s["name"] == "cli-tiny" and s["epochs"] == 1 and s["model_sha256"]
    # training data without a backbone source is a usage error
    code = main(["train", "--data", str(dolos), "--name", "x", "--layer", "layer1"])
    assert code == 2 and "backbone" in capsys.readouterr().err


def test_backbone_from_an_installed_model_or_clip_weights(dolos, tmp_path):
    from tests.factories import install_tiny_model, make_clip_weights

    from declip_desktop.modelstore.store import ModelStore
    from safetensors.torch import load_file

    install_tiny_model("base", layer="layer1", decoder="conv-4")
    r = train(config(dolos, "from-base", random_backbone=None, base_model="base", epochs=1))
    trained = load_file(str(ModelStore().get("from-base").weights_path))
    base = load_file(str(ModelStore().get("base").weights_path))
    for k, v in base.items():
        if k.startswith("backbone."):
            assert torch.equal(trained[k], v), k  # the backbone is reused unchanged (frozen)
    assert r.card.demo is False and r.card.backbone_sources[0]["file"] == "model base"

    clip = make_clip_weights(tmp_path / "clip-vit.pt", kind="ViT")
    r = train(config(dolos, "from-clip", random_backbone=None, clip_weights=[str(clip)], epochs=1))
    assert r.card.backbone_sources[0]["sha256"] and r.card.backbone_sources[0]["role"] == "ViT-L/14"
    with pytest.raises(TrainingError, match="layer"):
        train(config(dolos, "too-deep", random_backbone=None, base_model="base", layer="layer5", epochs=1))


def test_plain_layout_with_a_held_out_fraction(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(5):
        img = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
        mask = np.zeros((40, 40), np.uint8)  # plain layout: white = manipulated
        mask[5:25, 10:30] = 255
        (tmp_path / "plain" / "images").mkdir(parents=True, exist_ok=True)
        (tmp_path / "plain" / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(tmp_path / "plain" / "images" / f"p{i}.jpg")
        Image.fromarray(mask).save(tmp_path / "plain" / "masks" / f"p{i}.png")
    r = train(config(tmp_path / "plain", "plain", epochs=1, val_fraction=0.4))
    desc = r.card.training_set
    n_train = int(desc.split("(")[1].split(" ")[0])
    n_val = int(desc.rsplit("(", 1)[1].split(" ")[0])
    assert n_train + n_val == 5 and n_val >= 1 and "held-out" in desc
    assert r.best_val["n"] == n_val
