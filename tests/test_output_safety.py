"""Output that cannot attack its reader (issue 15, item 8): CSV formulas, terminal control
characters in file names, and `declip … | head`."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.cases_util import noise_image
from declip_desktop.cases import Case
from declip_desktop.cli import PIPE_CLOSED, main
from declip_desktop.common.text import csv_safe, terminal_json, terminal_safe

FORMULA_NAME = "=HYPERLINK(\"evil.example\";\"open\").png"
ESCAPE_NAME = "\x1b]0;owned\x07\x1b[2Jfake\rOK: nothing changed\n.png"


def test_csv_safe_neutralises_every_trigger_and_leaves_numbers_alone():
    for bad in ("=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert csv_safe(bad) == "'" + bad
    assert csv_safe("photo.jpg") == "photo.jpg" and csv_safe(-0.5) == -0.5 and csv_safe(3) == 3


def test_terminal_safe_escapes_controls_bidi_and_line_breaks():
    assert terminal_safe("a\x1b[2Jb\nc\rd\te\x7f\x9b") == "a\\x1b[2Jb\\x0ac\\x0dd\\x09e\\x7f\\x9b"
    assert terminal_safe("gpj\u202e.exe") == "gpj\\u202e.exe"
    assert terminal_safe("Ελληνικά 中文.jpg") == "Ελληνικά 中文.jpg"
    text = terminal_json({"name": "x\x9b\u2028\u202ey"}, indent=1)
    assert json.loads(text) == {"name": "x\x9b\u2028\u202ey"} and "\x9b" not in text and "\u202e" not in text


@pytest.fixture
def hostile_case(tmp_path):
    src = tmp_path / "src"
    noise_image(src / FORMULA_NAME, seed=1)
    noise_image(src / ESCAPE_NAME, seed=2)
    case_dir = tmp_path / "case"
    with Case.create(case_dir, number="S-1", title="t", analyst="Ana") as case:
        case.import_paths([src])
        for ev in case.evidence_list():
            case.store_result(ev.id, model_name="m", model_sha256="a" * 64, parameters={}, score=0.25,
                              prob_map=np.zeros((ev.height, ev.width), np.float32), device="cpu", seconds=1.0,
                              started="2026-01-01T00:00:00+00:00", finished="2026-01-01T00:00:01+00:00")
            case.set_review(ev.id, notes="+cmd|' /C calc'!A0")
    return case_dir


def test_case_export_csv_cannot_run_formulas(hostile_case, tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert main(["case", "export", str(hostile_case), "--out", str(out)]) == 0
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    by_name = {r["original_name"].removeprefix("'"): r for r in rows}
    row = by_name[FORMULA_NAME]
    assert row["original_name"] == "'" + FORMULA_NAME and row["notes"] == "'+cmd|' /C calc'!A0"
    assert row["score"] == "0.25"  # numbers stay numbers
    for r in rows:
        for value in r.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_eval_csv_cannot_run_formulas(tmp_path, capsys):
    maps, masks = tmp_path / "maps", tmp_path / "masks"
    maps.mkdir()
    masks.mkdir()
    gt = np.zeros((20, 20), np.uint8)
    gt[5:10, 5:10] = 255
    from PIL import Image

    Image.fromarray(gt).save(masks / "=2+3.png")
    np.save(maps / "=2+3.npy", (gt > 0).astype(np.float32))
    out = tmp_path / "e.csv"
    assert main(["eval", "--maps", str(maps), "--masks", str(masks), "--csv", str(out), "--json"]) == 0
    with open(out, newline="", encoding="utf-8") as fh:
        row = next(csv.DictReader(fh))
    assert row["name"] == "'=2+3" and float(row["iou"]) == 100.0


def test_file_names_cannot_drive_the_terminal(hostile_case, tmp_path, capsys):
    assert main(["case", "status", str(hostile_case)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    assert "\\x1b]0;owned" in out and not any(line.startswith("OK: nothing changed") for line in out.splitlines())
    assert main(["case", "status", str(hostile_case), "--json"]) == 0
    raw = capsys.readouterr().out
    assert "\x1b" not in raw and ESCAPE_NAME in {e["name"] for e in json.loads(raw)["evidence"]}
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "\x1b[31mred\n.png").write_bytes(b"not an image")
    assert main(["case", "import", str(hostile_case), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[31mred\\x0a.png" in out


def _closed_pipe_run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run `declip ARGS` with stdout a pipe whose reader has already gone (like `| head` ending)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "QT_QPA_PLATFORM": "offscreen"}
    try:
        return subprocess.run([sys.executable, "-m", "declip_desktop", *args], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=cwd, timeout=120)
    finally:
        os.close(write_end)


def test_a_closed_pipe_ends_every_command_quietly(hostile_case, tmp_path):
    for args in (["--help"], ["case", "status", str(hostile_case)], ["case", "status", str(hostile_case), "--json"],
                 ["case", "verify", str(hostile_case)], ["models", "list"]):
        done = _closed_pipe_run(args, tmp_path)
        assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, (args, done.stderr)
        # argparse itself swallows a failed --help write and exits 0; every command exits 141.
        assert done.returncode == (0 if args == ["--help"] else PIPE_CLOSED), (args, done.returncode, done.stderr)
