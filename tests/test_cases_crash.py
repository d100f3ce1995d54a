"""Crash safety: SIGKILL an import or an analysis at random moments, then check the case.

After every kill: the case opens, SQLite's integrity check passes, verify finds no lost
or half-written evidence or result, and running the same command again completes the
rest without duplicates."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from declip_desktop.cases import Case
from tests.cases_util import noise_image

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")]

CHILD = Path(__file__).with_name("cases_crash_child.py")
IMPORT_KILLS = 12
ANALYSE_KILLS = 8  # 12 + 8 = 20 kills


def _env(home: Path) -> dict:
    return {**os.environ, "PYTHONPATH": os.getcwd(), "DECLIP_HOME": str(home), "OMP_NUM_THREADS": "1"}


def _kill_at_random(args: list[str], env: dict, rng: random.Random, max_delay: float) -> bool:
    """Start the child, wait for "ready", SIGKILL it after a random delay. True if it was
    still running when killed (i.e. the kill landed in the middle of the work)."""
    proc = subprocess.Popen([sys.executable, str(CHILD), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    line = proc.stdout.readline()
    assert line.strip() == "ready", proc.stderr.read()
    time.sleep(rng.uniform(0.0, max_delay))
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()
    return running


def _check_after_kill(root: Path) -> Case:
    case = Case.open(root)  # recovery: finishes committed renames, drops scratch files, requeues
    assert case.integrity_check() == []
    report = case.verify()
    assert report.ok, report.problems
    assert case.status_counts()["analysing"] == 0
    leftovers = [p.name for p in (root / ".tmp").iterdir() if p.suffix != ".lock"]
    assert leftovers == []
    return case


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    src = tmp_path_factory.mktemp("crash-src")
    for i in range(120):
        noise_image(src / f"img{i:03d}.png", (64, 48), seed=i)
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    return src


def test_killed_imports_never_damage_the_case(tmp_path, source):
    rng = random.Random(1234)
    env = _env(tmp_path / "home")
    mid_import = 0
    for i in range(IMPORT_KILLS):
        root = tmp_path / f"case{i}"
        Case.create(root, number=str(i), title="crash", analyst="Ana").close()
        mid_import += _kill_at_random(["import", str(root), str(source)], env, rng, max_delay=0.5)
        case = _check_after_kill(root)
        partial = len(case.evidence_list())
        for ev in case.evidence_list():  # whatever was committed is whole
            assert case.evidence_file(ev).is_file()
        # the same import again (in this process: a fresh interpreter per kill is enough)
        assert len(case.import_paths([source]).imported) == 120 - partial
        case.close()
        case = _check_after_kill(root)
        evidence = case.evidence_list()
        assert len(evidence) == 120 and len({e.sha256 for e in evidence}) == 120
        assert len(list((root / "evidence").iterdir())) == 120
        assert len([r for r in case.rejections() if r.path.endswith("broken.jpg")]) >= 1
        case.close()
    # the random delays must actually have hit running imports, or the test proves nothing
    assert mid_import >= IMPORT_KILLS // 3


def _zygote_mode() -> list[str]:
    """The engine's Localizer with a tiny random DeCLIP when available; else the stand-in."""
    if importlib.util.find_spec("declip_desktop.engine.localizer") is None:
        return ["fake"]
    return ["model", "crash-tiny"]


def test_killed_analyses_never_damage_the_case(tmp_path, source):
    rng = random.Random(99)
    env = _env(tmp_path / "home")
    root = tmp_path / "case"
    with Case.create(root, number="A", title="crash", analyst="Ana") as case:
        case.import_paths(sorted(source.glob("img0[0-3]*.png")))  # 40 images
        total = len(case.evidence_list())
    zygote = subprocess.Popen([sys.executable, str(CHILD), "zygote", *_zygote_mode()], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert zygote.stdout.readline().strip() == "loaded", zygote.stderr.read()

        def run(kill_after: float | None) -> str:
            zygote.stdin.write(f"run {root}\n")
            zygote.stdin.flush()
            ready, pid = zygote.stdout.readline().split()
            assert ready == "ready"
            if kill_after is not None:
                time.sleep(kill_after)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            exit_line = zygote.stdout.readline().split()
            assert exit_line[:2] == ["exit", pid]
            return exit_line[2]

        mid_run = 0
        for _ in range(ANALYSE_KILLS):
            outcome = run(rng.uniform(0.0, 0.8))
            assert outcome in ("killed", "ok")
            mid_run += outcome == "killed"
            _check_after_kill(root).close()
        assert run(None) == "ok"  # the same command again finishes the rest
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=60)
    case = _check_after_kill(root)
    assert case.status_counts()["done"] == total
    ok_per_evidence = {}
    for a in case.analyses():
        assert a.error is None
        ok_per_evidence[a.evidence_id] = ok_per_evidence.get(a.evidence_id, 0) + 1
    assert ok_per_evidence == {e.id: 1 for e in case.evidence_list()}  # each image analysed exactly once
    for e in case.evidence_list():
        assert case.load_map(case.latest_analysis(e.id)).shape == (e.height, e.width)
    case.close()
    assert mid_run >= ANALYSE_KILLS // 3
