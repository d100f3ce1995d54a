"""`declip case …` end to end (in-process through the real argument parser)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from declip_desktop.cases import Case
from declip_desktop.cli import main
from tests.cases_util import noise_image


@pytest.fixture
def case_dir(tmp_path, capsys):
    d = tmp_path / "case"
    assert main(["case", "create", str(d), "--number", "2026-7", "--title", "Tip line", "--analyst", "Ana",
                 "--description", "three photos"]) == 0
    capsys.readouterr()
    return d


def test_create_twice_is_an_error_with_advice(case_dir, capsys):
    assert main(["case", "create", str(case_dir), "--number", "1", "--title", "t", "--analyst", "a"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "already holds a case" in err


def test_not_a_case_folder(tmp_path, capsys):
    assert main(["case", "status", str(tmp_path)]) == 2
    assert "not a case folder" in capsys.readouterr().err


def test_import_status_export(tmp_path, case_dir, capsys):
    src = tmp_path / "src"
    for i in range(3):
        noise_image(src / f"p{i}.jpg", seed=i, quality=90)
    (src / "readme.txt").write_text("hello")
    assert main(["case", "import", str(case_dir), str(src), "--analyst", "Bo", "--json"]) == 1  # one rejected
    out = json.loads(capsys.readouterr().out)
    assert len(out["imported"]) == 3 and out["rejected"][0]["reason"].startswith("not an image")
    assert main(["case", "import", str(case_dir), str(src / "p0.jpg")]) == 0
    assert "duplicates 1" in capsys.readouterr().out

    with Case.open(case_dir) as case:  # what the GUI/runner would have done meanwhile
        case.store_result(1, model_name="declip-ldm", model_sha256="d" * 64, parameters={"fast": False},
                          score=0.9, prob_map=np.zeros((40, 48), np.float32), device="cpu", seconds=2.0,
                          started="2026-01-01T00:00:00+00:00", finished="2026-01-01T00:00:02+00:00")
        case.set_review(1, threshold=0.4, verdict="manipulated")
        assert [e.actor for e in case.audit_entries() if e.action == "evidence.imported"] == ["Bo"] * 3

    assert main(["case", "status", str(case_dir), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["case"]["number"] == "2026-7" and status["counts"]["queued"] == 2 and status["counts"]["done"] == 1
    assert status["rejected"] == 1 and status["audit"]["entries"] > 5
    assert main(["case", "status", str(case_dir)]) == 0
    out = capsys.readouterr().out
    assert "Tip line" in out
    assert "Model: none yet (the first analysis pins the default model); default threshold 0.5 (standard)" in out

    csv_path = case_dir / "exports" / "results.csv"
    assert main(["case", "export", str(case_dir), "--out", str(csv_path)]) == 0
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 3
    first = rows[0]
    assert (first["verdict"], first["threshold"], first["model_name"], first["model_sha256"]) == (
        "manipulated", "0.4", "declip-ldm", "d" * 64)
    assert len(first["sha256"]) == 64 and len(first["md5"]) == 32 and len(first["map_sha256"]) == 64
    json_path = tmp_path / "out" / "results.json"
    assert main(["case", "export", str(case_dir), "--out", str(json_path)]) == 0
    doc = json.loads(json_path.read_text())
    assert doc["case"]["title"] == "Tip line" and len(doc["evidence"]) == 3
    assert main(["case", "export", str(case_dir), "--out", str(tmp_path / "x.xlsx")]) == 2
    capsys.readouterr()
    with Case.open(case_dir) as case:
        exports = [e for e in case.audit_entries() if e.action == "case.exported"]
        assert len(exports) == 2 and all(len(e.details["sha256"]) == 64 for e in exports)
    assert main(["case", "verify", str(case_dir)]) == 0
    assert "OK" in capsys.readouterr().out


def test_analyze_with_a_tiny_model_resumes_and_records_the_model(tmp_path, case_dir, capsys):
    from tests.factories import install_tiny_model

    card = install_tiny_model(name="cli-tiny")
    src = tmp_path / "src"
    for i in range(3):
        noise_image(src / f"p{i}.png", (40, 30), seed=i)
    assert main(["case", "import", str(case_dir), str(src)]) == 0
    assert main(["case", "analyze", str(case_dir), "--model", "cli-tiny", "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert "Analysed 3" in out
    # Not a terminal: one progress line per item, naming the file, as it finishes.
    lines = [line for line in err.splitlines() if line.startswith("[")]
    assert [line[:5] for line in lines] == ["[1/3]", "[2/3]", "[3/3]"]
    assert sorted(line.split()[1] for line in lines) == ["p0.png:", "p1.png:", "p2.png:"]
    assert all(": done, score 0." in line for line in lines)
    assert main(["case", "analyze", str(case_dir)]) == 0  # the case remembers the model; nothing left
    out, err = capsys.readouterr()
    assert "Analysed 0" in out
    assert f"Model: cli-tiny (SHA-256 {card.sha256[:12]}…), the model this case is pinned to" in err
    with Case.open(case_dir) as case:
        assert case.get_setting("model") == {"name": "cli-tiny", "sha256": card.sha256}
        for ev in case.evidence_list():
            a = case.latest_analysis(ev.id)
            assert a.model_sha256 == card.sha256 and a.error is None
            assert a.parameters["model_card"]["sha256"] == card.sha256
            assert a.parameters["model_card"]["name"] == "cli-tiny"
            assert case.load_map(a).shape == (30, 40)
        assert case.verify().ok


def test_analyze_refuses_a_model_reinstalled_from_another_file_under_the_pinned_name(tmp_path, case_dir, capsys):
    from declip_desktop.modelstore.store import ModelStore
    from tests.factories import install_tiny_model

    first = install_tiny_model(name="pinned")
    noise_image(tmp_path / "src" / "a.png", (40, 30), seed=1)
    assert main(["case", "import", str(case_dir), str(tmp_path / "src")]) == 0
    assert main(["case", "analyze", str(case_dir), "--model", "pinned", "--device", "cpu"]) == 0
    ModelStore().remove("pinned")
    second = install_tiny_model(name="pinned", seed=7)  # same name, other weights
    assert second.sha256 != first.sha256
    noise_image(tmp_path / "src2" / "b.png", (40, 30), seed=2)
    assert main(["case", "import", str(case_dir), str(tmp_path / "src2")]) == 0
    capsys.readouterr()
    assert main(["case", "analyze", str(case_dir), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert f"pinned (SHA-256 {first.sha256[:12]}…)" in err and "another file" in err and "--model NAME" in err
    with Case.open(case_dir) as case:
        assert [e.status for e in case.evidence_list()] == ["done", "queued"]  # nothing ran
        assert case.get_setting("model") == {"name": "pinned", "sha256": first.sha256}
    # Choosing the new file explicitly re-pins the case (audit-logged) and analyses.
    assert main(["case", "analyze", str(case_dir), "--model", "pinned", "--device", "cpu"]) == 0
    with Case.open(case_dir) as case:
        assert case.get_setting("model")["sha256"] == second.sha256
        assert [e.details["new"]["sha256"] for e in case.audit_entries() if e.action == "setting.changed"] == [
            first.sha256, second.sha256]


def test_case_threshold_is_shown_set_and_refused_out_of_range(case_dir, capsys):
    assert main(["case", "threshold", str(case_dir)]) == 0
    assert "0.5 (nobody set one" in capsys.readouterr().out
    assert main(["case", "threshold", str(case_dir), "0.35", "--analyst", "Bo"]) == 0
    assert "0.35 (set for this case)" in capsys.readouterr().out
    assert main(["case", "threshold", str(case_dir), "1.5"]) == 2
    assert "outside 0…1" in capsys.readouterr().err
    assert main(["case", "threshold", str(case_dir), "nan"]) == 2
    capsys.readouterr()
    assert main(["case", "status", str(case_dir)]) == 0
    assert "default threshold 0.35\n" in capsys.readouterr().out
    with Case.open(case_dir) as case:
        assert case.get_setting("threshold") == 0.35
        change = [e for e in case.audit_entries() if e.action == "setting.changed"][-1]
        assert change.actor == "Bo" and change.details["new"] == 0.35
