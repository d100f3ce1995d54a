"""Every JSON the command line prints is strict JSON (issue 14, item 6)."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import declip_desktop.cli as cli_package
from declip_desktop.cli import jsonout, main
from declip_desktop.modelstore.checkpoint_import import import_checkpoint
from tests.factories import _save_authors, vit_checkpoint_state


def strict_loads(text: str):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_no_cli_module_serializes_json_except_through_jsonout():
    """The attack is a new `print(json.dumps(...))` somewhere: it would write NaN again."""
    offenders = []
    for path in sorted(Path(cli_package.__file__).parent.glob("*.py")):
        if path.name == "jsonout.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("dumps", "dump") and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "json"):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_non_finite_numbers_become_null_and_numpy_values_plain():
    value = {"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": np.float32("nan"), "d": np.float64(0.25),
             "e": np.array([1.0, np.nan]), "f": True, "g": None, "h": 3, "i": "NaN"}
    text = jsonout.dumps(value)
    assert strict_loads(text) == {"a": None, "b": [None, None, 1.5], "c": None, "d": 0.25, "e": [1.0, None],
                                  "f": True, "g": None, "h": 3, "i": "NaN"}


def test_model_with_overflowing_output_gives_an_error_line_not_a_nan_score(tmp_path, capsys):
    # Finite weights (so the importer accepts them) whose last convolution overflows float32:
    # every logit is +Inf, which sigmoid would silently turn into a "certain" map of ones.
    state = vit_checkpoint_state("layer1", "conv-4", seed=4)
    last = max((k for k in state if k.startswith("fc.") and k.endswith(".weight")), key=lambda k: int(k.split(".")[1]))
    state[last] = torch.full_like(state[last], 3.0e38)
    src = _save_authors(tmp_path / "ViT_layer1_conv-4_ldm.pth", state, "layer1", "conv-4")
    card = import_checkpoint(src, name="overflow")
    img = tmp_path / "a.png"
    Image.fromarray(np.full((40, 50, 3), 128, np.uint8)).save(img)
    missing = tmp_path / "missing.png"
    code = main(["analyze", str(img), str(missing), "--model", card.name, "--threads", "1"])
    out, _ = capsys.readouterr()
    lines = [strict_loads(line) for line in out.splitlines() if line.strip()]
    assert code == 1
    by_path = {rec["path"]: rec for rec in lines}
    rec = by_path[str(img)]
    assert "score" not in rec and "map" not in rec
    assert rec["error"].startswith("the model produced invalid output: ") and "non-finite values" in rec["error"]
    count = int(rec["error"].split(": ")[1].split()[0])
    assert 0 < count <= 256 * 256
    assert "error" in by_path[str(missing)]


def test_terminal_json_used_by_case_commands_is_strict_too():
    from declip_desktop.common.text import terminal_json

    text = terminal_json({"score": math.nan, "name": "caf\u00e9\u202e", "n": np.float32(0.5)}, indent=2)
    assert strict_loads(text) == {"score": None, "name": "caf\u00e9\u202e", "n": 0.5}
    assert "\u202e" not in text  # still terminal-safe: the bidi control is escaped
