"""The scripting surface: `from declip_desktop import …` is lazy, and `Localizer` takes a ready network."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import declip_desktop
from declip_desktop import Localizer, ModelCard


def test_importing_the_package_and_the_case_store_imports_no_torch():
    code = ("import sys, declip_desktop; from declip_desktop import Case, AnalysisSession; "
            "print('torch' in sys.modules); from declip_desktop import Localizer; Localizer; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]  # even the Localizer class loads torch only when built


def test_unknown_names_are_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Localiser'"):
        declip_desktop.Localiser  # noqa: B018
    assert {"Localizer", "Case", "AnalysisSession"} <= set(dir(declip_desktop))


def _net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 1, 1))


def _card(**kw) -> ModelCard:
    return ModelCard(name="mine", kind="custom", backbone="conv", decoder="conv", input_size=32,
                     mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25], **kw)


def test_a_ready_network_is_identified_by_its_weights_not_by_its_card():
    from safetensors.torch import save

    from declip_desktop.common.hashing import sha256_bytes

    net = _net(0)
    expected = sha256_bytes(save({k: v.contiguous() for k, v in net.state_dict().items()}))
    loc = Localizer(net, card=_card(sha256="0" * 64), device="cpu")  # the card's claim is replaced
    assert loc.model_sha256 == expected and loc.card_snapshot["sha256"] == expected
    assert Localizer(_net(1), card=_card(), device="cpu").model_sha256 != expected
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    pred = loc.predict_one(image)
    assert pred.prob_map.shape == (20, 30) and pred.model_sha256 == expected
    assert pred.mask(0.0).all() and not pred.mask(1.0).any()
    assert [r.area_px for r in pred.regions(0.0)] == [600]


def test_a_ready_network_needs_a_card_and_a_card_needs_a_network():
    with pytest.raises(ValueError, match="needs its model card"):
        Localizer(_net(0), device="cpu")
    with pytest.raises(ValueError, match="pass the network itself"):
        Localizer("starter", card=_card(), device="cpu")


def test_mask_and_regions_refuse_a_threshold_outside_0_1():
    pred = Localizer(_net(0), card=_card(), device="cpu").predict_one(np.zeros((8, 8, 3), np.uint8))
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="outside 0…1"):
            pred.mask(bad)


def test_a_model_by_name_is_loaded_through_the_store_and_checked_against_its_card():
    import shutil

    from declip_desktop import ModelStore, load_localizer
    from declip_desktop.common.model_card import ModelError
    from declip_desktop.common.paths import models_dir

    with pytest.raises(TypeError, match="load_localizer"):
        Localizer("starter", device="cpu")  # inference knows no names: the store resolves them
    starter = ModelStore().get("starter")
    loc = load_localizer("starter", device="cpu")
    assert loc.model_sha256 == starter.card.sha256  # the card's hash, which loading checked
    # the attack: the weights change after install, the card stays; nothing may run on them
    models_dir().mkdir(parents=True, exist_ok=True)
    weights = models_dir() / "tampered.safetensors"
    shutil.copyfile(starter.weights_path, weights)
    card = starter.card.to_dict() | {"name": "tampered"}
    (models_dir() / "tampered.json").write_text(ModelCard.from_dict(card).to_json(), encoding="utf-8")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        load_localizer("tampered", device="cpu")


def test_the_card_store_finds_models_without_torch():
    code = ("import sys; from declip_desktop.modelstore.store import ModelStore, find_model; "
            "from declip_desktop.modelstore import download; "
            "print(find_model('starter').card.kind, [c.name for c in ModelStore().list()] == ['starter'], "
            "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["starter", "True", "False"]
