"""Importing the authors' checkpoints: safe reading, strict keys, cards, the model store."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from tests import factories
from declip_desktop.common.hashing import sha256_file
from declip_desktop.common.model_card import ModelCard, ModelError
from declip_desktop.common.paths import models_dir
from declip_desktop.engine.networks import FUSION, RN50, VIT
from declip_desktop.modelstore import torch_files
from declip_desktop.modelstore.checkpoint_import import default_name
from declip_desktop.modelstore.checkpoint_import import import_checkpoint
from declip_desktop.modelstore.loading import load_network, resolve_model
from declip_desktop.modelstore.store import ModelStore

torch.set_num_threads(2)


def _store():
    return ModelStore(bundled=None)  # only what the test installs


def _installed_files():
    return sorted(p.name for p in models_dir().glob("*")) if models_dir().exists() else []


def _rewrite(src: Path, dst: Path, edit) -> Path:
    ckpt = torch.load(src, weights_only=True)
    edit(ckpt)
    torch.save(ckpt, dst)
    return dst


def test_import_writes_safetensors_and_card_without_text_tower(tmp_path):
    src = factories.make_tiny_vit_checkpoint(tmp_path / "ViT_layer20_conv-20_ldm.pth", layer="layer0")
    card = import_checkpoint(src, name="tiny-vit", store=_store())
    weights, card_path = models_dir() / "tiny-vit.safetensors", models_dir() / "tiny-vit.json"
    assert weights.is_file() and card_path.is_file()
    assert (card.backbone, card.layer, card.decoder, card.kind) == (VIT, "layer0", "conv-4", "declip")
    assert card.training_set == "ldm" and "Dolos LDM" in card.label
    assert card.source_file == src.name and card.source_sha256 == sha256_file(src)
    assert card.sha256 == sha256_file(weights)
    assert card.input_size == 224 and card.mean[0] == pytest.approx(0.48145466)
    assert ModelCard.from_json_file(card_path) == card
    with safe_open(str(weights), "pt") as f:
        keys = set(f.keys())
        assert all(f.get_tensor(k).dtype in (torch.float32, torch.int64) for k in keys)
    assert not any("token_embedding" in k or "ln_final" in k or "text_projection" in k for k in keys)
    assert not any(".resblocks.1." in k for k in keys)  # layer0: block 1 is never run, so not stored
    assert not any("ln_post" in k or k.endswith(".proj") for k in keys)
    assert {k for k in keys if k.startswith("decoder.")} == {f"decoder.{k}" for k in
                                                            torch.load(src, weights_only=True)["model"] if k.startswith("fc.")}


def test_same_weights_give_the_same_file(tmp_path):
    a = factories.make_tiny_vit_checkpoint(tmp_path / "a.pth", seed=1)
    b = factories.make_tiny_vit_checkpoint(tmp_path / "b.pth", seed=1)
    assert import_checkpoint(a, name="a").sha256 == import_checkpoint(b, name="b").sha256


@pytest.mark.parametrize(
    "file,name",
    [
        ("ViT_layer20_conv-20_ldm.pth", "vit-ldm"),
        ("ViT_layer20_conv-20_cocosd.pth", "vit-cocosd"),
        ("ViT_layer20+RN50_layer3_conv-20_lama.pth", "vit+rn50-lama"),
        ("ViT_layer20+RN50_layer3_conv-20_repaint-p2-9k.pth", "vit+rn50-repaint-p2-9k"),
        ("ViT_layer16_conv-12_pluralistic.pth", "vit-layer16-conv-12-pluralistic"),
        ("my checkpoint (1).pth", "my-checkpoint-1"),
    ],
)
def test_default_names_follow_the_authors_file_names(file, name):
    backbone = FUSION if "+RN50" in file else VIT
    layer = "layer16" if "layer16" in file else "layer20"
    decoder = "conv-12" if "conv-12" in file else "conv-20"
    assert default_name(Path(file), backbone, layer, decoder, None) == name


def test_missing_weight_is_refused_naming_file_and_key(tmp_path):
    src = factories.make_tiny_vit_checkpoint(tmp_path / "src.pth")
    key = "model.visual.transformer.resblocks.1.attn.in_proj_weight"
    bad = _rewrite(src, tmp_path / "missing.pth", lambda c: c["model"].pop(key))
    with pytest.raises(ModelError) as err:
        import_checkpoint(bad)
    assert "missing" in str(err.value) and key in str(err.value) and "missing.pth" in str(err.value)
    assert _installed_files() == []


def test_missing_decoder_weight_is_refused(tmp_path):
    src = factories.make_tiny_vit_checkpoint(tmp_path / "src.pth")
    bad = _rewrite(src, tmp_path / "nofc.pth", lambda c: c["model"].pop("fc.5.running_var"))
    with pytest.raises(ModelError, match=r"missing: fc\.5\.running_var"):
        import_checkpoint(bad)


def test_unexpected_weight_is_refused(tmp_path):
    src = factories.make_tiny_vit_checkpoint(tmp_path / "src.pth")

    def add(c):
        c["model"]["fc.99.weight"] = torch.zeros(3)
        c["model"]["model.visual.extra_head.weight"] = torch.zeros(3)

    bad = _rewrite(src, tmp_path / "extra.pth", add)
    with pytest.raises(ModelError) as err:
        import_checkpoint(bad)
    assert "unexpected" in str(err.value)
    assert "fc.99.weight" in str(err.value) and "model.visual.extra_head.weight" in str(err.value)
    assert _installed_files() == []


def test_misshaped_weight_is_refused(tmp_path):
    src = factories.make_tiny_vit_checkpoint(tmp_path / "src.pth")
    key = "model.visual.transformer.resblocks.0.mlp.c_fc.weight"
    bad = _rewrite(src, tmp_path / "shape.pth", lambda c: c["model"].__setitem__(key, torch.zeros(100, 64)))
    with pytest.raises(ModelError) as err:
        import_checkpoint(bad)
    assert "wrong shape" in str(err.value) and key in str(err.value) and "[100, 64]" in str(err.value)


def test_truncated_file_is_refused(tmp_path):
    src = factories.make_tiny_vit_checkpoint(tmp_path / "src.pth")
    data = src.read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated or corrupted"):
        import_checkpoint(cut)
    assert _installed_files() == []


@pytest.mark.parametrize("content", ["jpeg", "list", "empty", "no_model"])
def test_non_checkpoints_are_refused(tmp_path, content):
    path = tmp_path / f"{content}.pth"
    if content == "jpeg":
        path.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF" + os.urandom(2000))
    elif content == "list":
        torch.save([1, 2, 3], path)
    elif content == "empty":
        path.write_bytes(b"")
    else:
        torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(ModelError, match="not a|empty"):
        import_checkpoint(path)
    assert _installed_files() == []


class _RunsCode:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))  # unpickling would create the marker file


@pytest.mark.parametrize("raw_pickle", [False, True])
def test_a_pickle_that_runs_code_is_refused_without_running(tmp_path, raw_pickle):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pth"
    payload = {"model": {"fc.0.weight": _RunsCode(marker)}, "feature_layer": "layer20"}
    if raw_pickle:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, path)
    with pytest.raises(ModelError) as err:
        import_checkpoint(path)
    assert not marker.exists()
    assert "executed" in str(err.value)
    assert _installed_files() == []


def test_decoder_type_that_contradicts_the_shapes_is_refused(tmp_path):
    src = factories.make_tiny_vit_checkpoint(tmp_path / "src.pth", decoder="conv-4")
    bad = _rewrite(src, tmp_path / "lie.pth", lambda c: c.__setitem__("decoder_type", "conv-20"))
    with pytest.raises(ModelError, match="conv-20.*conv-4"):
        import_checkpoint(bad)


def test_missing_feature_layer_is_refused_not_guessed(tmp_path):
    src = factories.make_tiny_vit_checkpoint(tmp_path / "src.pth")
    bad = _rewrite(src, tmp_path / "nolayer.pth", lambda c: c.pop("feature_layer"))
    with pytest.raises(ModelError, match="feature_layer"):
        import_checkpoint(bad)


def test_rn50_checkpoint_imports(tmp_path):
    src = factories.make_tiny_rn50_checkpoint(tmp_path / "RN50_layer2_conv-4_lama.pth", layer="layer2")
    card = import_checkpoint(src)
    assert (card.backbone, card.layer) == (RN50, "layer2")
    with safe_open(str(models_dir() / f"{card.name}.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert not any("layer3" in k or "layer4" in k or "attnpool" in k for k in keys)


# ---------------------------------------------------------------------- fusion


def test_fusion_without_clip_weights_names_the_files_needed(tmp_path):
    tiny = factories.make_tiny_fusion_checkpoint(tmp_path / "tiny.pth")
    # the real decoder reads 2048 channels; a zero-stride tensor keeps the file small
    src = _rewrite(tiny, tmp_path / "ViT_layer20+RN50_layer3_conv-20_ldm.pth",
                   lambda c: c["model"].__setitem__("fc.0.weight", torch.zeros(1).expand(32, 2048, 5, 5)))
    with pytest.raises(ModelError) as err:
        import_checkpoint(src)
    message = str(err.value)
    assert "ViT-L-14.pt" in message and "RN50.pt" in message and "--clip-weights" in message
    assert _installed_files() == []


def test_fusion_with_one_backbone_names_the_other(tmp_path):
    src = factories.make_tiny_fusion_checkpoint(tmp_path / "f.pth")
    vit = factories.make_clip_weights(tmp_path / "v.pt", "ViT")
    with pytest.raises(ModelError, match=r"missing: RN50\.pt"):
        import_checkpoint(src, clip_weights=[vit])


def test_fusion_with_plain_state_dicts_records_its_backbones(tmp_path):
    src = factories.make_tiny_fusion_checkpoint(tmp_path / "ViT_layer1+RN50_layer3_conv-4_lama.pth")
    vit = factories.make_clip_weights(tmp_path / "ViT-L-14.pt", "ViT")
    rn = factories.make_clip_weights(tmp_path / "RN50.pt", "RN50")
    card = import_checkpoint(src, clip_weights=[rn, vit])  # any order
    assert card.backbone == FUSION and card.training_set == "lama"
    roles = {s["role"]: s for s in card.backbone_sources}
    assert roles["ViT-L/14"]["sha256"] == sha256_file(vit) and roles["RN50"]["file"] == "RN50.pt"
    net = load_network(resolve_model(card.name))
    assert net(torch.zeros(1, 3, 224, 224)).shape == (1, 1, 256, 256)


def test_clip_weights_that_do_not_fit_the_decoder_are_refused(tmp_path):
    tiny = factories.make_tiny_fusion_checkpoint(tmp_path / "tiny.pth")
    real = _rewrite(tiny, tmp_path / "real.pth",
                    lambda c: c["model"].__setitem__("fc.0.weight", torch.zeros(1).expand(32, 2048, 5, 5)))
    vit = factories.make_clip_weights(tmp_path / "v.pt", "ViT")  # tiny: 64 + 128 channels, not 2048
    rn = factories.make_clip_weights(tmp_path / "r.pt", "RN50")
    with pytest.raises(ModelError, match="do not fit real.pth, whose decoder reads 2048 channels"):
        import_checkpoint(real, clip_weights=[vit, rn])
    with pytest.raises(ModelError, match="two ViT-L/14 CLIP weights files"):
        import_checkpoint(tiny, clip_weights=[vit, vit])
    assert _installed_files() == []


def test_clip_weights_for_a_vit_checkpoint_are_refused(tmp_path):
    src = factories.make_tiny_vit_checkpoint(tmp_path / "v.pth")
    vit = factories.make_clip_weights(tmp_path / "ViT-L-14.pt", "ViT")
    with pytest.raises(ModelError, match="only for the ViT-L/14\\+RN50 fusion"):
        import_checkpoint(src, clip_weights=[vit])


def test_torchscript_with_unknown_hash_is_refused(tmp_path):
    src = factories.make_tiny_fusion_checkpoint(tmp_path / "f.pth")
    ts = factories.make_torchscript_clip(tmp_path / "ViT-L-14.pt", "ViT")
    rn = factories.make_clip_weights(tmp_path / "RN50.pt", "RN50")
    with pytest.raises(ModelError) as err:
        import_checkpoint(src, clip_weights=[ts, rn])
    assert "TorchScript" in str(err.value) and sha256_file(ts) in str(err.value)


def test_torchscript_with_a_published_hash_is_loaded(tmp_path, monkeypatch):
    src = factories.make_tiny_fusion_checkpoint(tmp_path / "f.pth")
    ts = factories.make_torchscript_clip(tmp_path / "ViT-L-14.pt", "ViT")
    rn = factories.make_clip_weights(tmp_path / "RN50.pt", "RN50")
    plain_vit = factories.make_clip_weights(tmp_path / "plain.pt", "ViT")
    # pretend this archive is OpenAI's: the allow-list is the only thing that admits TorchScript
    monkeypatch.setitem(torch_files.OPENAI_CLIP_SHA256, sha256_file(ts), "ViT-L/14")
    a = import_checkpoint(src, name="from-archive", clip_weights=[ts, rn])
    b = import_checkpoint(src, name="from-plain", clip_weights=[plain_vit, rn])
    assert a.sha256 == b.sha256  # same weights either way
    assert any(s["openai_archive"] for s in a.backbone_sources)


# ---------------------------------------------------------------------- store, resolve, load


def test_store_lists_gets_defaults_verifies_and_removes(tmp_path):
    store = _store()
    with pytest.raises(ModelError, match="no model installed.*declip models download vit-ldm"):
        store.default()
    first = factories.install_tiny_model("first")
    second = factories.install_tiny_model("second", seed=1)
    assert [c.name for c in store.list()] == ["first", "second"]
    assert store.get("first").card == first
    assert store.default().name in ("first", "second")
    assert all(ok for _, ok, _ in store.verify())
    with open(store.get("second").weights_path, "r+b") as fh:
        fh.seek(-4, os.SEEK_END)
        fh.write(b"\x00\x01\x02\x03")
    assert dict((n, ok) for n, ok, _ in store.verify()) == {"first": True, "second": False}
    with pytest.raises(ModelError, match="SHA-256"):
        load_network(store.get("second"))
    store.remove("second")
    assert store.names() == ["first"]
    with pytest.raises(ModelError, match="no model named 'second'"):
        store.get("second")
    del second


def test_default_is_recorded_and_installing_never_changes_it(tmp_path):
    store = _store()
    factories.install_tiny_model("real-old")
    assert store.default_name() == "real-old"  # the first casework model: recorded, and said so by the CLI
    factories.install_tiny_model("real-new", seed=1)
    factories.install_tiny_model("demo", seed=2)
    assert store.default().name == "real-old"  # newer installs do not move it
    store.set_default("real-new")
    assert store.default().name == "real-new"


def test_store_without_a_recorded_default_keeps_its_old_choice(tmp_path):
    store = _store()
    factories.install_tiny_model("real-old")
    factories.install_tiny_model("real-new", seed=1)
    factories.install_tiny_model("demo", seed=2)
    for name, created, demo in (("real-old", "2026-01-01T00:00:00Z", False),
                                ("real-new", "2026-02-01T00:00:00Z", False),
                                ("demo", "2026-03-01T00:00:00Z", True)):
        path = models_dir() / f"{name}.json"
        data = json.loads(path.read_text())
        data.update(created=created, demo=demo)
        path.write_text(json.dumps(data))
    store.default_file.unlink()  # a model folder written by an older version
    assert store.default().name == "real-new"  # the old rule: newest casework model
    factories.install_tiny_model("later", seed=3)  # installing pins that choice instead of replacing it
    assert store.default_name() == "real-new" and store.default().name == "real-new"


def test_bundled_models_are_listed_read_only(tmp_path):
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    card = factories.install_tiny_model("shipped")
    for suffix in (".json", ".safetensors"):
        (models_dir() / f"shipped{suffix}").rename(bundled / f"shipped{suffix}")
    store = ModelStore(bundled=bundled)
    model = store.get("shipped")
    assert model.read_only and model.card.sha256 == card.sha256
    with pytest.raises(ModelError, match="cannot be removed"):
        store.remove("shipped")
    assert load_network(model)(torch.zeros(1, 3, 224, 224)).shape == (1, 1, 256, 256)


def test_resolve_by_name_safetensors_path_and_checkpoint(tmp_path):
    card = factories.install_tiny_model("named")
    assert resolve_model("named").card == card
    assert resolve_model(str(models_dir() / "named.safetensors")).card == card
    src = factories.make_tiny_vit_checkpoint(tmp_path / "ViT_layer1_conv-4_ldm.pth", seed=9)
    first = resolve_model(src)  # imported on the fly
    again = resolve_model(str(src))  # found again by its hash, not imported twice
    assert first.name == again.name == "vit-layer1-conv-4-ldm"
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(tmp_path / "nope.pth")
    with pytest.raises(ModelError, match="no model named"):
        resolve_model("nope")


def test_importing_a_name_twice_is_refused_unless_it_is_the_same_file(tmp_path):
    a = factories.make_tiny_vit_checkpoint(tmp_path / "a.pth", seed=1)
    b = factories.make_tiny_vit_checkpoint(tmp_path / "b.pth", seed=2)
    card = import_checkpoint(a, name="m")
    assert import_checkpoint(a, name="m") == card
    with pytest.raises(ModelError, match="installed already"):
        import_checkpoint(b, name="m")
    with pytest.raises(ModelError, match="invalid model name"):
        import_checkpoint(b, name="../escape")


def test_tampered_weights_file_with_fixed_card_is_still_checked_by_shape(tmp_path):
    card = factories.install_tiny_model("t")
    weights = models_dir() / "t.safetensors"
    from safetensors.torch import load_file, save_file

    state = load_file(str(weights))
    state["decoder.fc.0.weight"] = torch.zeros(5, 64, 5, 5)
    save_file(state, str(weights))
    data = card.to_dict()
    data["sha256"] = sha256_file(weights)
    (models_dir() / "t.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="decoder.fc"):
        load_network(resolve_model("t"))
