"""Reproducibility bundle (issue 18 item 8): `declip case bundle` → `declip reproduce` in a fresh
DECLIP_HOME with the same (tiny) model gives max |Δ| ≤ 1e-6; a missing model, missing evidence
and an altered bundle are each said clearly."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from declip_desktop.cases import Case
from declip_desktop.cli import main
from tests.factories import install_tiny_model


@pytest.fixture
def analysed(tmp_path, monkeypatch):
    home_a = tmp_path / "home_a"
    monkeypatch.setenv("DECLIP_HOME", str(home_a))
    card = install_tiny_model(seed=3)
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in (("a.png", (48, 64)), ("b.jpg", (37, 29))):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(src / name)
    case_dir = tmp_path / "case"
    with Case.create(case_dir, number="R-1", title="repro", analyst="Dana") as case:
        case.import_paths([src])
    assert main(["case", "analyze", str(case_dir), "--model", card.name, "--device", "cpu", "--batch-size", "2"]) == 0
    return case_dir, src, card, home_a


def _fresh_home(tmp_path, monkeypatch, card_seed=3):
    home_b = tmp_path / "home_b"
    monkeypatch.setenv("DECLIP_HOME", str(home_b))
    if card_seed is not None:
        install_tiny_model(seed=card_seed)  # the same bytes as the analyst's model: the same SHA-256
    return home_b


def test_bundle_then_reproduce_in_a_fresh_home(analysed, tmp_path, monkeypatch, capsys):
    case_dir, src, card, _ = analysed
    bundle = tmp_path / "out" / "bundle.zip"
    bundle.parent.mkdir()
    assert main(["case", "bundle", str(case_dir), "--out", str(bundle)]) == 0
    assert main(["case", "bundle", str(case_dir), "--out", str(bundle)]) == 2  # never replaced
    capsys.readouterr()
    with zipfile.ZipFile(bundle) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert not any(n.startswith("evidence/") for n in zf.namelist())  # hashes only, by default
    env = manifest["environment"]
    assert env["dependencies"]["torch"] and env["dependencies"]["numpy"] and env["platform"]
    item = manifest["items"][0]
    assert item["analysis"]["model_sha256"] == card.sha256 and item["analysis"]["model_card"]["name"] == card.name
    assert {"fast", "precision", "input_size"} <= set(item["analysis"]["parameters"]) and "threshold" in item
    with Case.open(case_dir) as case:
        assert case.audit_entries()[-1].action == "case.bundled" and case.verify().ok

    _fresh_home(tmp_path, monkeypatch)
    shutil.copytree(src, tmp_path / "handed-over")
    code = main(["reproduce", str(bundle), "--evidence-dir", str(tmp_path / "handed-over"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    assert len(out["items"]) == 2
    for r in out["items"]:
        assert r["passed"] and r["max_abs_diff"] <= 1e-6 and r["score_diff"] <= 1e-6

    # Without the evidence: each item says which file (by SHA-256) is missing; exit 1.
    assert main(["reproduce", str(bundle)]) == 1
    assert "no file with SHA-256" in capsys.readouterr().out


def test_reproduce_names_the_missing_model_and_refuses_an_altered_bundle(analysed, tmp_path, monkeypatch, capsys):
    case_dir, src, card, _ = analysed
    bundle = tmp_path / "b.zip"
    assert main(["case", "bundle", str(case_dir), "--out", str(bundle), "--with-evidence", "--evidence", "1"]) == 0
    _fresh_home(tmp_path, monkeypatch, card_seed=4)  # another model under the same name
    capsys.readouterr()
    assert main(["reproduce", str(bundle)]) == 1
    out = capsys.readouterr().out
    assert f"model {card.name} with SHA-256 {card.sha256} is not installed" in out
    # Swap a map inside the bundle: its hash no longer matches the manifest.
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(bundle) as zin, zipfile.ZipFile(forged, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            zout.writestr(name, data[:-4] + b"\0\0\0\0" if name.startswith("maps/") else data)
    assert main(["reproduce", str(forged)]) == 2
    assert "does not match its SHA-256" in capsys.readouterr().err


def test_a_map_that_differs_fails_against_the_tolerance(analysed, tmp_path, monkeypatch, capsys):
    """A bundle consistent with itself (hashes redone) whose map was shifted: reproduce says FAIL."""
    import io

    from declip_desktop.common.hashing import sha256_bytes

    case_dir, src, _, _ = analysed
    bundle = tmp_path / "b.zip"
    assert main(["case", "bundle", str(case_dir), "--out", str(bundle), "--with-evidence"]) == 0
    shifted = tmp_path / "shifted.zip"
    with zipfile.ZipFile(bundle) as zin:
        manifest = json.loads(zin.read("manifest.json"))
        members = {n: zin.read(n) for n in zin.namelist() if n != "manifest.json"}
    buf = io.BytesIO()
    np.save(buf, np.clip(np.load(io.BytesIO(members["maps/1.npy"])) + 0.01, 0, 1).astype(np.float32))
    members["maps/1.npy"] = buf.getvalue()
    manifest["files"]["maps/1.npy"] = sha256_bytes(buf.getvalue())
    with zipfile.ZipFile(shifted, "w") as zout:
        zout.writestr("manifest.json", json.dumps(manifest))
        for name, data in members.items():
            zout.writestr(name, data)
    _fresh_home(tmp_path, monkeypatch)
    capsys.readouterr()
    assert main(["reproduce", str(shifted)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(line.strip().startswith("FAIL") and "max |Δ| 0.01" in line for line in lines)
    assert any(line.strip().startswith("pass") for line in lines)
