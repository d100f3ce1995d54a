"""Verify reads, never writes, never hangs; readers never wait for a writer; busy writers say who.

Read-only media are real read-only mounts (a tmpfs remounted ro): tests run as root, and
`chmod -R a-w` does not stop root."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from declip_desktop.cases import Case, CaseBusyError, CaseReadOnlyError, db, lockinfo
from tests.cases_util import noise_image

CLI = [sys.executable, "-m", "declip_desktop", "case"]


def _cli(*args, timeout=60):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})


def _make_case(root: Path, images: int = 2) -> Case:
    case = Case.create(root, number="RO-1", title="Read-only", analyst="Ana")
    src = root.parent / f"src-{root.name}"
    for i in range(images):
        noise_image(src / f"img{i}.png", seed=i)
    case.import_paths([src])
    case.store_result(1, model_name="m", model_sha256="a" * 64, parameters={}, score=0.7,
                      prob_map=np.zeros((40, 48), np.float32), device="cpu", seconds=0.1,
                      started="2026-01-01T00:00:00+00:00", finished="2026-01-01T00:00:01+00:00")
    return case


def _snapshot(root: Path) -> dict[str, str]:
    """Every file's SHA-256, except SQLite's shared-memory index (readers may map it)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.name.endswith("-shm"):
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@contextlib.contextmanager
def read_only_mount(tmp_path: Path, fill):  # noqa: ANN001 - fill(mountpoint) copies the case in
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only file system needs root (CI runs as root)")
    mnt = tmp_path / "ro"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mnt)], check=True)
    try:
        fill(mnt)
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_verify_status_and_export_work_on_a_read_only_mount(tmp_path):
    _make_case(tmp_path / "case").close()  # closed cleanly: no WAL left
    out = tmp_path / "out.csv"
    with read_only_mount(tmp_path, lambda m: shutil.copytree(tmp_path / "case", m / "case")) as mnt:
        case_dir = mnt / "case"
        before = _snapshot(case_dir)
        verify = _cli("verify", case_dir)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "OK: the database matches its audit trail" in verify.stdout
        status = _cli("status", case_dir, "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["counts"]["done"] == 1
        export = _cli("export", case_dir, "--out", out)
        assert export.returncode == 0, export.stderr
        assert "not recorded in the case's audit log" in export.stderr and "cannot be written" in export.stderr
        assert out.read_text().count("\n") == 3  # header + two items
        # a command that changes the case says why it cannot, and changes nothing
        imp = _cli("import", case_dir, tmp_path / "src-case")
        assert imp.returncode == 2 and "cannot be written" in imp.stderr and "Traceback" not in imp.stderr
        assert _snapshot(case_dir) == before


@pytest.mark.parametrize("keep_shm", [True, False], ids=["wal+shm", "wal-only"])
def test_a_pending_wal_on_read_only_media_is_read_not_ignored(tmp_path, keep_shm):
    case = _make_case(tmp_path / "case")
    case.set_review(1, verdict="manipulated", notes="in the WAL only")
    head, count = case.audit_head()

    def fill(mnt):
        # Copied while the case is still open: the last transactions live only in the WAL.
        shutil.copytree(tmp_path / "case", mnt / "case")
        if not keep_shm:
            (mnt / "case" / "case.sqlite-shm").unlink()
        assert (mnt / "case" / "case.sqlite-wal").stat().st_size > 0

    try:
        with read_only_mount(tmp_path, fill) as mnt:
            with Case.open(mnt / "case", read_only=True) as ro:
                assert ro.get_evidence(1).notes == "in the WAL only"
                # without SQLite's -shm index the WAL can only be read from a private copy
                assert bool(ro._store._scratch) is (not keep_shm)
                report = ro.verify()
                assert report.ok, report.problems
                assert (report.audit_head, report.audit_entries) == (head, count)
    finally:
        case.close()


def test_export_refuses_a_database_that_does_not_match_its_trail(tmp_path):
    import sqlite3

    _make_case(tmp_path / "case").close()
    conn = sqlite3.connect(tmp_path / "case" / "case.sqlite")
    conn.execute("UPDATE evidence SET verdict = 'authentic' WHERE id = 1")
    conn.commit()
    conn.close()
    result = _cli("export", tmp_path / "case", "--out", tmp_path / "out.csv")
    assert result.returncode == 2 and "does not match its audit trail" in result.stderr
    assert "verdict 'authentic' in the database" in result.stderr and not (tmp_path / "out.csv").exists()


def test_verify_and_status_never_recover_requeue_or_append(tmp_path):
    case = _make_case(tmp_path / "case")
    assert case.mark_analysing(2)  # a run that "stopped": opening for writing would requeue it
    (case.path / ".tmp" / "left-over.partial").write_bytes(b"scratch")  # and discard this
    head = case.audit_head()
    case.close()
    before = _snapshot(tmp_path / "case")
    assert _cli("verify", tmp_path / "case").returncode == 0
    assert _cli("status", tmp_path / "case").returncode == 0
    with Case.open(tmp_path / "case", read_only=True) as ro:
        assert ro.get_evidence(2).status == "analysing" and ro.audit_head() == head
        with pytest.raises(CaseReadOnlyError, match="opened read-only"):
            ro.set_review(1, verdict="authentic")
    after = _snapshot(tmp_path / "case")
    wal = "case.sqlite-wal"
    assert {k: v for k, v in after.items() if k != wal} == {k: v for k, v in before.items() if k != wal}
    assert after.get(wal) in (before.get(wal), hashlib.sha256(b"").hexdigest())  # created empty at most
    # `case recover` is the command that finishes the job, with its audit entry
    rec = _cli("recover", tmp_path / "case")
    assert rec.returncode == 0 and "1 interrupted analysis item(s) queued again" in rec.stdout


@pytest.mark.timeout(60)
def test_a_fifo_in_place_of_evidence_is_named_by_the_cli_never_a_hang(tmp_path):
    case = _make_case(tmp_path / "case")
    path = case.evidence_file(2)
    case.close()
    os.chmod(path, 0o644)
    path.unlink()
    os.mkfifo(path)
    result = _cli("verify", tmp_path / "case", timeout=30)
    assert result.returncode == 1
    assert "img1.png (evidence 2)" in result.stdout and "FIFO" in result.stdout


def test_a_device_in_place_of_evidence_is_named_not_read(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root (CI runs as root)")
    import stat as st

    with _make_case(tmp_path / "case") as case:
        path = case.evidence_file(1)
        os.chmod(path, 0o644)
        path.unlink()
        os.mknod(path, st.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero: reading it would never end
        problems = [p for p in case.verify().problems if p.kind == "not_a_file"]
    assert len(problems) == 1 and "img0.png (evidence 1)" in problems[0].detail
    assert "a character device" in problems[0].detail


def test_exit_code_2_when_the_case_cannot_be_verified(tmp_path):
    _make_case(tmp_path / "case").close()
    missing = _cli("verify", tmp_path / "case", "--anchor", tmp_path / "no-such-receipt.json")
    assert missing.returncode == 2 and "could not verify" in missing.stderr and "no-such-receipt" in missing.stderr
    os.mkfifo(tmp_path / "pipe.json")
    pipe = _cli("verify", tmp_path / "case", "--anchor", tmp_path / "pipe.json", timeout=30)
    assert pipe.returncode == 2 and "not a regular file" in pipe.stderr
    (tmp_path / "junk.json").write_text('{"hello": 1}')
    junk = _cli("verify", tmp_path / "case", "--anchor", tmp_path / "junk.json")
    assert junk.returncode == 2 and "not a DeCLIP anchor" in junk.stderr
    db_file = tmp_path / "case" / "case.sqlite"
    db_file.write_bytes(b"this is not a database" * 100)
    broken = _cli("verify", tmp_path / "case")
    assert broken.returncode == 2 and "could not verify" in broken.stderr and "Traceback" not in broken.stderr
    assert _cli("verify", tmp_path / "nothing-here").returncode == 2


# ------------------------------------------------------------------------------ readers and writers
_HOLDER = """
import sys, time
from declip_desktop.cases import Case
case = Case.open(sys.argv[1])
with case._store.operation("import", "alice"), case._store.write() as conn:
    conn.execute("UPDATE evidence SET notes = 'uncommitted' WHERE id = 1")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def held_case(tmp_path):
    """A case whose write lock another process holds (mid-transaction) for up to 60 s."""
    _make_case(tmp_path / "case").close()
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path / "case"), "60"], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.stdout.readline().strip() == "locked"
    try:
        yield tmp_path / "case"
    finally:
        proc.kill()
        proc.wait()


def test_readers_do_not_wait_while_another_process_holds_the_write_lock(held_case, tmp_path):
    for args in (("status", held_case), ("verify", held_case)):
        start = time.monotonic()
        result = _cli(*args)
        assert result.returncode == 0, result.stdout + result.stderr
        assert time.monotonic() - start < db.RETRY_TOTAL_S, f"{args[0]} waited for the writer"
        assert "uncommitted" not in result.stdout  # a snapshot of what was committed
    start = time.monotonic()
    export = _cli("export", held_case, "--out", tmp_path / "x.json")
    assert export.returncode == 0 and (tmp_path / "x.json").exists()
    assert "case busy: import by alice since" in export.stderr  # the file is written; its entry could not be
    assert time.monotonic() - start < db.RETRY_TOTAL_S


def test_a_writer_that_cannot_get_the_lock_says_who_holds_it(held_case, monkeypatch):
    monkeypatch.setattr(db, "RETRY_TOTAL_S", 1.0)
    monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 0.2)
    with Case.open(held_case) as case:
        start = time.monotonic()
        with pytest.raises(CaseBusyError) as info:
            case.set_review(1, verdict="authentic")
        assert time.monotonic() - start < 5
    message = str(info.value)
    assert "case busy: import by alice since" in message and "Nothing was changed" in message


def test_busy_message_when_the_holder_did_not_identify_itself(tmp_path):
    case = _make_case(tmp_path / "case")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    info = {"operation": "analysis", "actor": "bob", "since": "2026-12-01T20:14:00+01:00", "pid": int(dead.stdout),
            "host": os.uname().nodename}
    (case.path / lockinfo.HOLDER_FILE).write_text(json.dumps(info))
    assert "did not identify itself" in lockinfo.describe(case.path / lockinfo.HOLDER_FILE)
    info["pid"] = os.getpid()
    (case.path / lockinfo.HOLDER_FILE).write_text(json.dumps(info))
    assert lockinfo.describe(case.path / lockinfo.HOLDER_FILE).startswith("case busy: analysis by bob since 20:14")
    case.close()


_CHURN = """
import sys
from declip_desktop.cases import Case
case = Case.open(sys.argv[1])
print("go", flush=True)
for i in range(int(sys.argv[2])):
    case.set_review(1 + i % 2, notes=f"round {i}")
"""


def test_verify_sees_one_consistent_state_while_another_process_keeps_writing(tmp_path):
    _make_case(tmp_path / "case").close()
    proc = subprocess.Popen([sys.executable, "-c", _CHURN, str(tmp_path / "case"), "400"], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert proc.stdout.readline().strip() == "go"
        with Case.open(tmp_path / "case", read_only=True) as case:
            runs = 0
            while proc.poll() is None or runs < 3:
                report = case.verify()
                assert report.ok, report.problems  # never a half-old, half-new comparison
                runs += 1
    finally:
        proc.kill()
        proc.wait()
    assert runs >= 3
