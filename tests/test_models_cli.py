"""`declip models import|list`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests import factories
from declip_desktop.cli import main
from declip_desktop.common.paths import models_dir


def test_import_then_list(tmp_path, capsys):
    src = factories.make_tiny_vit_checkpoint(tmp_path / "ViT_layer20_conv-20_cocosd.pth")
    assert main(["models", "import", str(src), "--name", "mine"]) == 0
    out = capsys.readouterr()
    assert "installed mine" in out.out and "COCO-SD" in out.out
    assert (models_dir() / "mine.safetensors").is_file()

    assert main(["models", "list"]) == 0
    assert "mine" in capsys.readouterr().out

    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    mine = next(r for r in rows if r["name"] == "mine")
    assert mine["backbone"] == "ViT-L/14" and mine["training_set"] == "cocosd" and mine["bundled"] is False


def test_import_failure_is_one_error_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "notes.pth"
    bad.write_text("not a checkpoint at all")
    assert main(["models", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("error: ") and "notes.pth" in err


def test_fusion_import_asks_for_clip_weights_then_accepts_them(tmp_path, capsys):
    src = factories.make_tiny_fusion_checkpoint(tmp_path / "ViT_layer1+RN50_layer3_conv-4_ldm.pth")
    assert main(["models", "import", str(src)]) == 2
    assert "--clip-weights" in capsys.readouterr().err
    vit = factories.make_clip_weights(tmp_path / "ViT-L-14.pt", "ViT")
    rn = factories.make_clip_weights(tmp_path / "RN50.pt", "RN50")
    code = main(["models", "import", str(src), "--clip-weights", str(vit), "--clip-weights", str(rn), "--json"])
    assert code == 0
    card = json.loads(capsys.readouterr().out)
    assert card["backbone"] == "ViT-L/14,RN50" and len(card["backbone_sources"]) == 2


def test_list_with_nothing_installed_says_what_to_do(tmp_path, capsys, monkeypatch):
    from declip_desktop.common import paths

    monkeypatch.setattr(paths, "BUNDLED_MODELS_DIR", tmp_path / "no-bundled-models")
    assert main(["models", "list"]) == 0
    assert "declip models import" in capsys.readouterr().out
    assert main(["models", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_model_store_and_cli_module_import_without_torch():
    code = (
        "import sys, declip_desktop.modelstore.store, declip_desktop.cli.models; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.stdout.strip() == "False"
