"""Preparation at install (issue 23 item 4): `declip models import` / `models prepare` convert a
model for this machine's back end once, so that no first analysis does; killed, tampered and
disk-full preparations never leave a cache that is used, and never cost the install."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from declip_desktop.cli import main
from declip_desktop.common.paths import models_dir
from declip_desktop.engine.backends import openvino_cpu, selection
from declip_desktop.modelstore.loading import load_localizer
from declip_desktop.modelstore.preparation import prepare_installed
from declip_desktop.modelstore.store import ModelStore
from tests.factories import make_tiny_vit_checkpoint

ROOT = Path(__file__).resolve().parents[1]
# Each conversion of the tiny model takes seconds on a quiet machine, minutes on a loaded one.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture()
def src(tmp_path, monkeypatch):
    # The machine's own choice (tests default to PyTorch, which has nothing to prepare).
    monkeypatch.setenv("DECLIP_CPU_BACKEND", "auto")
    return make_tiny_vit_checkpoint(tmp_path / "src" / "ViT_layer1_conv-12_ldm.pth", layer="layer1",
                                    decoder="conv-12", seed=11)


def _exact_dir(model):
    return openvino_cpu.cache_dir(openvino_cpu.cache_root(model), model.sha256, 224, openvino_cpu.IR_RECIPES["f32"])


def _listing(capsys) -> dict:
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    return {row["name"]: row for row in json.loads(capsys.readouterr().out)}


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}


def test_import_prepares_and_the_first_analysis_converts_nothing(src, capsys, monkeypatch):
    assert main(["models", "import", str(src), "--name", "tiny", "--prepare-modes", "exact"]) == 0
    err = capsys.readouterr().err
    assert "tiny: exact mode: prepared — converted for OpenVINO" in err, err
    model = ModelStore().get("tiny")
    manifest = json.loads((_exact_dir(model) / "manifest.json").read_text())
    assert manifest["weights_sha256"] == model.sha256
    row = _listing(capsys)["tiny"]
    fast_precision, _ = selection.openvino_precision(None, True)  # what this CPU's fast mode converts, if anything
    # Exact mode and fast mode's "int8dec" run the same converted backbone: preparing one prepares both.
    shares = fast_precision is not None and openvino_cpu.IR_RECIPES[fast_precision] == openvino_cpu.IR_RECIPES["f32"]
    assert row["prepared"] == {"exact": True, "fast": None if fast_precision is None else shares}
    assert row["preparation"]["exact"]["runs_on"].startswith("OpenVINO ")
    assert main(["models", "list"]) == 0
    assert "exact prepared" in capsys.readouterr().out

    def no_conversion(*_a, **_k):
        raise AssertionError("the first analysis converted the model")

    monkeypatch.setattr(openvino_cpu, "_convert", no_conversion)
    told: list[str] = []
    loc = load_localizer("tiny", device="cpu", threads=1, on_status=told.append)
    assert not any("Converting" in m for m in told), told
    assert loc.parameters["backend"].endswith("(f32)")
    import numpy as np

    assert loc.predict([np.full((40, 50, 3), 128, np.uint8)])[0].ok


def test_no_prepare_then_models_prepare_converts_once_and_then_only_checks(src, capsys):
    assert main(["models", "import", str(src), "--name", "tiny", "--no-prepare"]) == 0
    assert "not prepared (--no-prepare)" in capsys.readouterr().err
    model = ModelStore().get("tiny")
    assert not openvino_cpu.cache_root(model).exists()
    assert _listing(capsys)["tiny"]["prepared"]["exact"] is False

    assert main(["models", "prepare", "tiny", "--modes", "exact", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)[0]
    assert first["ok"] and first["modes"][0]["state"] == "prepared"
    stamp = (_exact_dir(model) / "model.bin").stat().st_mtime_ns
    assert main(["models", "prepare", "tiny", "--modes", "exact", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)[0]["modes"][0]
    assert again["state"] == "ready" and again["path"] == first["modes"][0]["path"]
    assert (_exact_dir(model) / "model.bin").stat().st_mtime_ns == stamp  # checked, not rewritten
    assert _listing(capsys)["tiny"]["prepared"]["exact"] is True


def test_wrong_modes_and_names_are_clear_errors_and_install_nothing(src, capsys):
    assert main(["models", "import", str(src), "--prepare-modes", "exact,turbo"]) == 2
    assert "'turbo'" in capsys.readouterr().err and not list(models_dir().glob("*.safetensors"))
    assert main(["models", "prepare", "no-such-model"]) == 1
    assert "no model named 'no-such-model'" in capsys.readouterr().err


KILL_AT_WRITE = r"""
import os, signal, sys
from declip_desktop.engine.backends import openvino_cpu, selection
from declip_desktop.modelstore.preparation import prepare_installed
def killed(path):  # the files are written, the manifest is not: SIGKILL as a crash would
    os.kill(os.getpid(), signal.SIGKILL)
openvino_cpu._sha256_file = killed
prepare_installed("tiny", ["exact"])
"""


def test_killed_preparation_leaves_no_half_cache_the_next_use_rebuilds_and_a_tampered_file_is_remade(src, capsys):
    assert main(["models", "import", str(src), "--name", "tiny", "--no-prepare"]) == 0
    model = ModelStore().get("tiny")
    child = subprocess.run([sys.executable, "-c", KILL_AT_WRITE], env=_env(), capture_output=True, text=True,
                           timeout=900)
    assert child.returncode == -9, child.stderr[-2000:]
    recipe_dir = _exact_dir(model).parent
    abandoned = list(recipe_dir.glob(".building-*"))
    assert len(abandoned) == 1 and (abandoned[0] / "model.bin").is_file()  # killed mid-write
    assert not _exact_dir(model).exists()
    assert _listing(capsys)["tiny"]["prepared"]["exact"] is False

    told: list[str] = []
    loc = load_localizer("tiny", device="cpu", threads=1, on_status=told.append)
    assert any("Converting the model for OpenVINO" in m for m in told), told  # as today, with its message
    assert loc.parameters["backend"].endswith("(f32)")
    openvino_cpu.check_cached(_exact_dir(model), model.sha256, 224, openvino_cpu.IR_RECIPES["f32"])

    # One weight of the converted file changed by hand: preparing again notices and remakes it.
    old = time.time() - 7200
    os.utime(abandoned[0], (old, old))  # a crash's leftover from two hours ago is swept at the next write
    blob = bytearray((_exact_dir(model) / "model.bin").read_bytes())
    blob[len(blob) // 2] ^= 0x40
    (_exact_dir(model) / "model.bin").write_bytes(bytes(blob))
    steps: list[str] = []
    report = prepare_installed("tiny", ["exact"], progress=lambda _d, _t, m: steps.append(m))
    assert report.outcomes[0].state == "prepared", report.message
    assert any("failed its check" in m and "SHA-256" in m for m in steps), steps
    openvino_cpu.check_cached(_exact_dir(model), model.sha256, 224, openvino_cpu.IR_RECIPES["f32"])
    assert not abandoned[0].exists()


def test_disk_full_keeps_the_model_and_says_the_first_use_converts(src, monkeypatch, capsys):
    import openvino as ov

    assert main(["models", "import", str(src), "--name", "tiny", "--no-prepare"]) == 0

    def disk_full(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ov, "save_model", disk_full)
    capsys.readouterr()
    assert main(["models", "prepare", "tiny", "--modes", "exact", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)[0]
    exact = report["modes"][0]
    assert not report["ok"] and exact["state"] == "failed" and exact["path"] is None
    assert "No space left on device" in exact["message"] and "converts it at its first use" in exact["message"]
    model = ModelStore().get("tiny")  # still installed, intact
    assert {name: ok for name, ok, _ in ModelStore().verify()}["tiny"] is True
    assert not any(p.is_file() for p in openvino_cpu.cache_root(model).rglob("*"))


TMPFS = r"""
set -e
mount -t tmpfs -o size=1700k tmpfs "$DECLIP_HOME/models"
set +e
"$PY" -m declip_desktop models import "$SRC" --name tiny --prepare-modes exact
echo "import-rc=$?"
"$PY" -m declip_desktop models verify
echo "verify-rc=$?"
"$PY" -c "$FIRST_ANALYSIS"
find "$DECLIP_HOME/models" -type f | sort
"""


FIRST_ANALYSIS = r"""
import numpy as np
from declip_desktop.modelstore.loading import load_localizer
loc = load_localizer("tiny", device="cpu", threads=1, on_status=print)
print("first-analysis-ok", loc.predict([np.full((32, 48, 3), 100, np.uint8)])[0].ok)
"""


def test_a_really_full_disk_tmpfs_keeps_the_model_and_reports(src, tmp_path):
    """The model folder on a 1.7 MB tmpfs: the 1.2 MB weights fit, their 1.2 MB conversion does not;
    the first analysis then converts in memory and runs."""
    home = Path(os.environ["DECLIP_HOME"])
    (home / "models").mkdir(parents=True)
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {tmp_path}"],
                           capture_output=True, text=True)
    if probe.returncode:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {probe.stderr.strip()}")
    out = subprocess.run(["unshare", "-rm", "sh", "-c", TMPFS], capture_output=True, text=True, timeout=900,
                         env={**_env(), "PY": sys.executable, "SRC": str(src), "FIRST_ANALYSIS": FIRST_ANALYSIS})
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    assert "import-rc=0" in text and "verify-rc=0" in text, text[-3000:]
    assert "No space left on device" in text and "converts it at its first use" in text, text[-3000:]
    assert "first-analysis-ok True" in text and "could not be saved" in text, text[-3000:]
    files = [line for line in out.stdout.splitlines() if line.startswith(str(home))]
    assert sorted(Path(f).name for f in files) == ["default.json", "tiny.json", "tiny.safetensors"], files


def test_cancel_before_writing_keeps_nothing(src, capsys):
    assert main(["models", "import", str(src), "--name", "tiny", "--no-prepare"]) == 0
    model = ModelStore().get("tiny")
    seen: list[str] = []
    report = prepare_installed("tiny", ["exact"], progress=lambda _d, _t, m: seen.append(m),
                               should_stop=lambda: any("Converting" in m for m in seen))
    assert report.cancelled and report.outcomes[0].state == "cancelled", report.message
    root = openvino_cpu.cache_root(model)
    assert not root.exists() or not any(p.is_file() for p in root.rglob("*"))
    assert prepare_installed("tiny", should_stop=lambda: True).outcomes[0].state == "cancelled"


def test_nothing_to_prepare_with_pytorch_or_for_the_starter(src, monkeypatch):
    monkeypatch.setenv("DECLIP_CPU_BACKEND", "torch")
    report = prepare_installed("starter")
    assert report.ok and [o.state for o in report.outcomes] == ["not needed", "not needed"]
    from declip_desktop.engine.backends.prepare import ModeOutcome
    from declip_desktop.modelstore.preparation import PreparationReport

    failed = PreparationReport("tiny", [ModeOutcome("exact", "failed", "disk full")])
    assert not failed.ok and "`declip models prepare tiny` prepares what is missing" in failed.message
    assert main(["models", "import", str(src), "--name", "tiny"]) == 0
    assert all(o.state == "not needed" for o in prepare_installed("tiny").outcomes)
    assert not openvino_cpu.cache_root(ModelStore().get("tiny")).exists()


def test_the_entry_points_import_neither_torch_nor_openvino():
    code = ("import sys, declip_desktop.engine.backends.prepare, declip_desktop.cli.models_prepare\n"
            "print(sorted(m for m in ('torch', 'openvino') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_env())
    assert out.stdout.strip() == "[]"
