"""Examinations stored in the case: computed at import, audit-logged with their hash, refused when
edited by hand, never blocking an import; classical views cached per evidence."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from declip_desktop.cases import Case
from declip_desktop.common.images import load_rgb
from declip_desktop.examination import (
    ExaminationChanged,
    ExaminationError,
    cached_view,
    examine_evidence,
    import_and_examine,
    load_examination,
    verify_examinations,
)
from tests.forensics_files import png_with_text, texture
from tests.test_forensics_metadata import HOSTILE


@pytest.fixture
def case(tmp_path):
    c = Case.create(tmp_path / "case", number="2026-0017", title="Toolbox", analyst="Ana Pop")
    yield c
    c.close()


def _sd_png(tmp_path):
    p = tmp_path / "in" / "sd.png"
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(png_with_text(texture(64, 80, 1), {"parameters": "cat\nSteps: 20, Sampler: Euler a, Seed: 1"}))
    return p


def test_import_examines_stores_and_logs(case, tmp_path):
    report, errors = import_and_examine(case, [_sd_png(tmp_path)], analyst="Ana Pop")
    (ev,) = report.imported
    assert errors == {ev.id: None}
    exam = load_examination(case, ev.id)
    assert exam.record["evidence_sha256"] == ev.sha256 and exam.record["software_version"]
    assert exam.metadata["png_text"]["parameters"].startswith("cat")
    assert any(a["code"] == "generator_signature" for a in exam.alerts)
    assert exam.c2pa["state"] == "none"
    entry = [e for e in case.audit_entries([ev.id]) if e.action == "forensics.examined"][-1]
    assert entry.details["sha256"] == exam.sha256 and entry.details["c2pa_state"] == "none"
    assert "generator_signature" in entry.details["alerts"] and entry.actor == "Ana Pop"
    assert not os.access(exam.path, os.W_OK) or os.geteuid() == 0  # stored read-only
    assert case.verify().ok and verify_examinations(case) == []


def test_hand_edited_or_deleted_examination_is_refused(case, tmp_path):
    report, _ = import_and_examine(case, [_sd_png(tmp_path)])
    ev = report.imported[0]
    exam = load_examination(case, ev.id)
    os.chmod(exam.path, 0o644)
    record = json.loads(exam.path.read_text())
    record["alerts"] = []  # hide the alert
    exam.path.write_text(json.dumps(record))
    with pytest.raises(ExaminationChanged, match="changed after it was stored"):
        load_examination(case, ev.id)
    assert verify_examinations(case) == [(exam.path.relative_to(case.path).as_posix(), "changed after it was stored")]
    again = examine_evidence(case, ev.id)  # re-examining restores a verified record…
    assert load_examination(case, ev.id).sha256 == again.sha256 == exam.sha256
    (kept,) = exam.path.parent.glob(exam.path.name + ".altered-*")  # …and keeps the altered one for review
    assert json.loads(kept.read_text())["alerts"] == []
    assert [why for _, why in verify_examinations(case)] == [
        "an examination file that was changed after it was stored, set aside for review when the item was "
        "examined again"]
    os.chmod(exam.path, 0o644)
    exam.path.unlink()
    with pytest.raises(ExaminationChanged, match="missing"):
        load_examination(case, ev.id)


def test_changed_evidence_is_not_examined(case, tmp_path):
    report, _ = import_and_examine(case, [_sd_png(tmp_path)])
    ev = report.imported[0]
    f = case.evidence_file(ev)
    os.chmod(f, 0o644)
    f.write_bytes(f.read_bytes() + b"tail")
    with pytest.raises(ExaminationError, match="no longer matches its import hash"):
        examine_evidence(case, ev.id)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the corrupt EXIF it skips
def test_hostile_files_import_and_examine_without_crashing(case, tmp_path):
    folder = tmp_path / "hostile"
    folder.mkdir()
    for name, make in HOSTILE.items():
        (folder / name).write_bytes(make())
    report, errors = import_and_examine(case, [folder])
    assert len(report.imported) == len(HOSTILE) and all(v is None for v in errors.values())
    by_name = {e.original_name: e.id for e in report.imported}
    codes = [a["code"] for a in load_examination(case, by_name["xmp_entities.jpg"]).alerts]
    assert "metadata_unreadable" in codes


def test_views_are_cached_per_evidence_and_damage_is_recomputed(case, tmp_path):
    report, _ = import_and_examine(case, [_sd_png(tmp_path)])
    ev = report.imported[0]
    calls = []

    def loader(path):
        calls.append(path)
        return load_rgb(path)

    first = cached_view(case, ev.id, "ela", rgb_loader=loader, quality=80)
    second = cached_view(case, ev.id, "ela", rgb_loader=loader, quality=80)
    assert len(calls) == 1 and second.parameters == {"quality": 80} and second.extras == first.extras
    assert np.abs(first.data - second.data).max() <= 0.5 / 65535 + 1e-7  # kept as 16-bit levels
    cached_view(case, ev.id, "ela", rgb_loader=loader, quality=70)  # other parameters: another entry
    assert len(calls) == 2
    cached = sorted((case.path / "forensics" / str(ev.id) / "views").glob("ela-*.png"))
    assert len(cached) == 2
    for p in cached:
        p.write_bytes(p.read_bytes()[:-20])  # a truncated cache entry
    again = cached_view(case, ev.id, "ela", rgb_loader=loader, quality=80)
    assert len(calls) == 3 and np.abs(again.data - first.data).max() <= 0.5 / 65535 + 1e-7
    for sidecar in cached[0].parent.glob("ela-*.json"):
        sidecar.write_text("{not json")  # a damaged sidecar is recomputed too
    cached_view(case, ev.id, "ela", rgb_loader=loader, quality=80)
    assert len(calls) == 4
    assert not list(cached[0].parent.glob(".*.partial"))
    assert case.verify().ok  # the cache is derived data: verify does not object to it


def test_cli_import_examines_and_examine_shows_verifies_and_writes_views(tmp_path, capsys):
    from declip_desktop.cli import main

    case_dir = tmp_path / "c"
    assert main(["case", "create", str(case_dir), "--number", "17", "--title", "t", "--analyst", "Ana"]) == 0
    capsys.readouterr()
    assert main(["case", "import", str(case_dir), str(_sd_png(tmp_path)), "--json"]) == 0
    imported = json.loads(capsys.readouterr().out)["imported"]
    assert imported[0]["examination_error"] is None
    assert main(["case", "examine", str(case_dir), "--json"]) == 0
    (shown,) = json.loads(capsys.readouterr().out)
    assert any(a["code"] == "generator_signature" for a in shown["alerts"]) and shown["c2pa"]["state"] == "none"
    out_png = tmp_path / "ela.png"
    assert main(["case", "examine", str(case_dir), "--id", "1", "--view", "ela", "--quality", "80",
                 "--out", str(out_png)]) == 0
    assert out_png.stat().st_size > 0 and "How to read it" in capsys.readouterr().out
    assert main(["case", "examine", str(case_dir), "--view", "nope", "--id", "1", "--out", str(out_png)]) == 2
    assert "unknown view 'nope'" in capsys.readouterr().err
    assert main(["case", "examine", str(case_dir), "--verify"]) == 0
    exam = next((case_dir / "forensics" / "1").glob("examination-*.json"))
    os.chmod(exam, 0o644)
    exam.write_text("{}")
    assert main(["case", "examine", str(case_dir), "--verify"]) == 1
    assert "changed after it was stored" in capsys.readouterr().out


def test_alert_summaries_for_badges(case, tmp_path):
    report, _ = import_and_examine(case, [_sd_png(tmp_path)])
    from declip_desktop.examination import alert_summaries

    summary = alert_summaries(case)[report.imported[0].id]
    assert summary["warnings"] >= 1 and "generator_signature" in summary["codes"] and summary["c2pa_state"] == "none"


def test_unlogged_examination_file_is_reported_and_never_used(case, tmp_path):
    report, _ = import_and_examine(case, [_sd_png(tmp_path)])
    ev = report.imported[0]
    planted = case.path / "forensics" / str(ev.id) / "examination-0000000000000000.json"
    planted.write_text(json.dumps({"alerts": [], "metadata": {}, "c2pa": {}}))
    assert verify_examinations(case) == [(planted.relative_to(case.path).as_posix(),
                                          "not in the audit log (placed by hand, or left by an interrupted "
                                          "examination); it is never used")]
    assert load_examination(case, ev.id).alerts  # the logged record, not the planted one
    assert load_examination(case, ev.id).record["tools"]["exifread"]


def test_full_disk_during_examination_loses_nothing_and_is_reported(tmp_path):
    """The case lives on a 3 MiB tmpfs; once the import has filled it, the examination fails cleanly."""
    import subprocess

    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], check=True)
    try:
        c = Case.create(mnt / "case", number="1", title="full", analyst="Ana")
        try:
            report = c.import_paths([_sd_png(tmp_path)])
            (ev,) = report.imported
            filler = mnt / "filler"
            with open(filler, "wb", buffering=0) as f:  # take every free block
                try:
                    while True:
                        f.write(b"\0" * 65536)
                except OSError:
                    pass
            errors = examine_many_on(c, [ev.id])
            assert errors[ev.id] and "No space left" in errors[ev.id]
            folder = c.path / "forensics" / str(ev.id)
            assert not list(folder.glob(".*.partial")) and not list(folder.glob("*.json"))
            filler.unlink()
            assert load_examination(c, ev.id) is None
            examine_evidence(c, ev.id)  # with space again it works
            assert load_examination(c, ev.id).alerts
            assert c.verify().ok and verify_examinations(c) == []
        finally:
            c.close()
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def examine_many_on(case, ids):
    from declip_desktop.examination import examine_many

    return examine_many(case, ids)
