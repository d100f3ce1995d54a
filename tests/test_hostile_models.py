"""Model files that are not what they claim are refused before anything is installed (issue 14, item 3).

Each attack goes through `declip models import` (or `verify`): one clear `error:` line naming
the file and the problem, no traceback, exit code 2 (verify: 1), and the model store unchanged.
"""

from __future__ import annotations

import json
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
import torch

from declip_desktop.cli import main
from declip_desktop.common.model_card import ModelCard, card_snapshot
from declip_desktop.common.paths import BUNDLED_MODELS_DIR, models_dir
from declip_desktop.modelstore import model_facts
from declip_desktop.modelstore.safetensors_header import WeightsFileError, read_header
from declip_desktop.modelstore.store import ModelStore, is_demo_model
from tests.factories import _save_authors, make_tiny_vit_checkpoint, vit_checkpoint_state


def _import(capsys, path) -> tuple[int, str]:
    code = main(["models", "import", str(path)])
    _, err = capsys.readouterr()
    return code, err


def _store_files() -> list[str]:
    root = models_dir()
    return sorted(p.name for p in root.rglob("*")) if root.exists() else []


def _assert_refused(capsys, path, *needles):
    code, err = _import(capsys, path)
    assert code == 2, err
    assert "Traceback" not in err and err.count("error:") == 1
    assert str(path) in err
    for needle in needles:
        assert needle in err, err
    assert _store_files() == []


def _rewrite_zip(src: Path, dst: Path, *, compress: str | None = None, corrupt: str | None = None) -> Path:
    """Copy a torch zip, deflating the members whose name contains `compress`, or flipping a byte
    inside the stored member whose name contains `corrupt` (its CRC then no longer matches)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            ctype = zipfile.ZIP_DEFLATED if compress and compress in info.filename else zipfile.ZIP_STORED
            zout.writestr(info, data, compress_type=ctype)
    if corrupt:
        with zipfile.ZipFile(dst) as zf:
            info = next(i for i in zf.infolist() if corrupt in i.filename and i.file_size > 64)
        raw = bytearray(dst.read_bytes())
        # local header: 30 bytes + name + extra, then the data
        name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26: info.header_offset + 30])
        at = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
        raw[at] ^= 0xFF
        dst.write_bytes(bytes(raw))
    return dst


@pytest.fixture
def tiny_pth(tmp_path):
    return make_tiny_vit_checkpoint(tmp_path / "src" / "ViT_layer1_conv-4_ldm.pth", seed=2)


def test_deflated_zip_members_are_refused(capsys, tiny_pth, tmp_path):
    bad = _rewrite_zip(tiny_pth, tmp_path / "ViT_layer1_conv-4_lama.pth", compress="/data/")
    _assert_refused(capsys, bad, "compressed")


def test_zip_member_with_a_wrong_crc_is_refused(capsys, tiny_pth, tmp_path):
    bad = _rewrite_zip(tiny_pth, tmp_path / "ViT_layer1_conv-4_lama.pth", corrupt="/data/")
    _assert_refused(capsys, bad, "CRC")


@pytest.mark.parametrize("poison", ["nan", "inf", "int", "complex", "bool"])
def test_nan_inf_and_non_float_weights_are_refused(capsys, tmp_path, poison):
    state = vit_checkpoint_state("layer1", "conv-4", seed=3)
    key = "model.visual.transformer.resblocks.0.mlp.c_fc.weight"
    t = state[key]
    if poison == "nan":
        t = t.clone()
        t[0, 0] = float("nan")
    elif poison == "inf":
        t = t.clone()
        t[1, 2] = float("-inf")
    elif poison == "int":
        t = t.to(torch.int32)
    elif poison == "complex":
        t = t.to(torch.complex64)
    else:
        t = t > 0
    state[key] = t
    bad = _save_authors(tmp_path / f"ViT_layer1_conv-4_{poison}.pth", state, "layer1", "conv-4")
    needle = "NaN or infinite" if poison in ("nan", "inf") else "type a DeCLIP network cannot use"
    _assert_refused(capsys, bad, needle, key)


# --------------------------------------------------------------------------- safetensors headers


def _safetensors(path: Path, header, data: bytes = b"\0" * 16, raw_header: bytes | None = None) -> Path:
    blob = raw_header if raw_header is not None else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)
    return path


GOOD = {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}
MALFORMED = {
    "list": (["a", "b"], "not an object"),
    "entry not an object": ({"a": [1, 2]}, "not an object"),
    "missing shape": ({"a": {"dtype": "F32", "data_offsets": [0, 16]}}, "no 'shape'"),
    "missing dtype": ({"a": {"shape": [4], "data_offsets": [0, 16]}}, "no 'dtype'"),
    "missing offsets": ({"a": {"dtype": "F32", "shape": [4]}}, "no 'data_offsets'"),
    "negative shape": ({"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, "invalid shape"),
    "float shape": ({"a": {"dtype": "F32", "shape": [4.0], "data_offsets": [0, 16]}}, "invalid shape"),
    "bool shape": ({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, "invalid shape"),
    "shape is text": ({"a": {"dtype": "F32", "shape": "4", "data_offsets": [0, 16]}}, "invalid shape"),
    "unknown dtype": ({"a": {"dtype": "F128", "shape": [4], "data_offsets": [0, 16]}}, "unknown dtype"),
    "offsets past the end": ({"a": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}, "holds only 16"),
    "reversed offsets": ({"a": {"dtype": "F32", "shape": [0], "data_offsets": [16, 0]}}, "invalid data_offsets"),
    "offsets not a pair": ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0]}}, "invalid data_offsets"),
    "size mismatch": ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}, "needs 12 bytes"),
    "overlap": ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                 "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, "overlapping"),
    "metadata not text": ({**GOOD, "__metadata__": {"x": 1}}, "__metadata__"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_every_malformed_safetensors_header_is_a_named_error(tmp_path, case):
    header, needle = MALFORMED[case]
    path = _safetensors(tmp_path / "m.safetensors", header)
    with pytest.raises(WeightsFileError, match=needle) as err:
        read_header(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("raw, needle", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"\xff\xfe": 1}', "not valid UTF-8"),
    (b'{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, "a": {}}', "twice"),
    (b"{not json", "not valid JSON"),
])
def test_raw_header_attacks(tmp_path, raw, needle):
    path = _safetensors(tmp_path / "m.safetensors", None, raw_header=raw)
    with pytest.raises(WeightsFileError, match=needle):
        read_header(path)


def test_header_length_past_the_file_and_good_header(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", 10**9) + b"{}")
    with pytest.raises(WeightsFileError, match="header length"):
        read_header(path)
    assert read_header(_safetensors(tmp_path / "ok.safetensors", GOOD)) == ({"a": (2, 2)}, {})


def test_malformed_installed_weights_fail_verify_and_load_cleanly(capsys, tmp_path):
    from tests.factories import install_tiny_model

    card = install_tiny_model("victim")
    weights = models_dir() / "victim.safetensors"
    _safetensors(weights, ["not", "a", "header"])
    data = json.loads((models_dir() / "victim.json").read_text())
    from declip_desktop.common.hashing import sha256_file

    data["sha256"] = sha256_file(weights)  # the attacker also fixes the card's hash
    (models_dir() / "victim.json").write_text(json.dumps(data))
    assert main(["models", "verify"]) == 1
    _, err = capsys.readouterr()
    assert "victim" in err and "Traceback" not in err
    code = main(["analyze", str(tmp_path / "x.png"), "--model", "victim"])
    _, err = capsys.readouterr()
    assert code == 2 and "not an object of tensors" in err and "Traceback" not in err
    assert card.name == "victim"


# --------------------------------------------------------------------------- demo-ness and architecture


def test_bundled_demo_hashes_are_the_bundled_files():
    from declip_desktop.common.hashing import sha256_file

    for weights in sorted(Path(BUNDLED_MODELS_DIR).glob("*.safetensors")):
        card = ModelCard.from_json_file(weights.with_suffix(".json"))
        if card.demo:
            assert sha256_file(weights) in model_facts.BUNDLED_DEMO_SHA256, weights


def test_card_cannot_make_the_bundled_demo_a_casework_model(capsys):
    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(Path(BUNDLED_MODELS_DIR) / f"starter{suffix}", root / f"casework{suffix}")
    data = json.loads((root / "casework.json").read_text())
    data.update(name="casework", demo=False, kind="declip", backbone="ViT-L/14", layer="layer20",
                decoder="conv-20", label="DeCLIP ViT-L/14 layer20 conv-20, trained on Dolos LDM")
    (root / "casework.json").write_text(json.dumps(data))
    model = ModelStore(bundled=None).get("casework")
    assert is_demo_model(model)  # by SHA-256, whatever the card says
    snap = card_snapshot(model.card)
    assert snap["demo"] is True and "demo model" in snap["label"]
    assert set(snap) >= {"name", "sha256", "kind", "backbone", "layer", "decoder", "training_set", "demo",
                         "software_version", "label"}
    assert main(["models", "verify", "--json"]) == 1
    out, _ = capsys.readouterr()
    rows = {r["name"]: r for r in json.loads(out)}
    assert not rows["casework"]["ok"]
    assert "kind 'declip'" in rows["casework"]["detail"] and "demo: false" in rows["casework"]["detail"]
    assert rows["starter"]["ok"]
    # Loading refuses it too: the card does not describe these weights.
    code = main(["analyze", str(BUNDLED_MODELS_DIR / "README.md"), "--model", "casework"])
    _, err = capsys.readouterr()
    assert code == 2 and "the card says kind 'declip'" in err


def test_card_claiming_another_architecture_fails_verify_and_load(capsys, tmp_path):
    from tests.factories import install_tiny_model

    install_tiny_model("liar", layer="layer1", decoder="conv-4")
    path = models_dir() / "liar.json"
    data = json.loads(path.read_text())
    data.update(layer="layer20", decoder="conv-20")
    path.write_text(json.dumps(data))
    results = {n: (ok, d) for n, ok, d in ModelStore(bundled=None).verify()}
    ok, detail = results["liar"]
    assert not ok and "layer 'layer20'" in detail and "'layer1'" in detail and "conv-4" in detail
    from declip_desktop.common.model_card import ModelError
    from declip_desktop.modelstore.loading import load_network

    with pytest.raises(ModelError, match="does not describe these weights"):
        load_network(ModelStore(bundled=None).get("liar"))


def test_architecture_is_read_from_shapes():
    arch = model_facts.architecture_from_shapes(read_header(Path(BUNDLED_MODELS_DIR) / "starter.safetensors")[0])
    assert arch.kind == "starter"
    shapes = {"backbone.vit.conv1.weight": (64, 3, 14, 14), "backbone.vit.transformer.resblocks.8.ln_1.weight": (64,),
              "backbone.rn50.layer3.0.conv1.weight": (8, 8, 1, 1), "decoder.fc.0.weight": (32, 96, 5, 5),
              "decoder.fc.3.weight": (16, 32, 5, 5), "decoder.fc.65.weight": (1, 8, 5, 5)}
    assert model_facts.architecture_from_shapes(shapes) == model_facts.Architecture(
        "declip", model_facts.FUSION, "layer8", "conv-2")
    assert model_facts.architecture_from_shapes({"weird.weight": (1,)}).kind == "unknown"
