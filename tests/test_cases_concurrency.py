"""A GUI thread, an analysis worker thread and a CLI process on one case at the same time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from declip_desktop.analysis import run_queue
from declip_desktop.cases import Case
from tests.cases_util import FakeLocalizer, noise_image

CLI_WRITER = textwrap.dedent("""
    import sys
    from declip_desktop.cases import Case
    root, src = sys.argv[1], sys.argv[2]
    with Case.open(root, analyst="CLI") as case:
        for i in range(150):
            case.log_event("cli.note", "case", {"i": i})
            case.status_counts()
        report = case.import_paths([src])
        print(len(report.imported), len(report.rejected))
""")


@pytest.mark.timeout(120)
def test_gui_thread_worker_thread_and_cli_process_share_a_case(tmp_path):
    case = Case.create(tmp_path / "case", number="5", title="Busy", analyst="Ana")
    first = tmp_path / "first"
    for i in range(12):
        noise_image(first / f"{i}.png", (32, 24), seed=i)
    second = tmp_path / "second"
    for i in range(12):
        noise_image(second / f"{i}.png", (32, 24), seed=100 + i)
    case.import_paths([first])
    errors: list[BaseException] = []
    stop = threading.Event()

    def gui() -> None:  # what the GUI thread does while a run is going: read lists, review, settings
        try:
            n = 0
            while not stop.is_set() or n < 100:
                evidence = case.evidence_list()
                ev = evidence[n % len(evidence)]
                case.set_review(ev.id, threshold=round(0.3 + (n % 5) / 10, 2), notes=f"look {n}")
                case.set_setting("opacity", n % 10 / 10)
                case.audit_entries(evidence_ids=[ev.id])
                n += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    summaries = []

    def worker() -> None:
        try:
            while not stop.is_set():
                summaries.append(run_queue(case, FakeLocalizer(batch_size=1)))
                cli_done = proc.poll() is not None  # read before the queue: its import is committed
                if cli_done and case.status_counts()["queued"] == 0:
                    break
                time.sleep(0.05)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-c", CLI_WRITER, str(case.path), str(second)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    threads = [threading.Thread(target=gui), threading.Thread(target=worker)]
    for t in threads:
        t.start()
    out, err = proc.communicate(timeout=100)
    threads[1].join(timeout=100)
    stop.set()
    threads[0].join(timeout=60)
    assert proc.returncode == 0, err
    assert "locked" not in err
    assert out.split() == ["12", "0"]
    assert errors == []
    assert sum(s.done for s in summaries) == 24
    assert case.status_counts()["done"] == 24
    assert len(case.analyses()) == 24  # nothing analysed twice
    entries = case.audit_entries()
    assert sum(e.action == "cli.note" for e in entries) == 150
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    report = case.verify()
    assert report.ok, report.problems
    case.close()
