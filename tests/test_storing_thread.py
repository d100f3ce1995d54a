"""Results stored on their own thread (analysis.storing) while the next batch is computed:
overlapped and bounded, with pause/stop/cancel as the one-thread runner had them, errors while
storing raised for the item that failed, a killed process leaving the queue truthful, and the
same results as the serial runner. A slow fake store exposes the races."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from declip_desktop.analysis import AnalysisSession, run_queue
from declip_desktop.cases import Case, CaseBusyError
from declip_desktop.common.outputs import DiskFullError
from tests.cases_util import FakeLocalizer, noise_image

ROOT = Path(__file__).resolve().parents[1]
SHA = "c" * 64


@pytest.fixture
def case(tmp_path):
    c = Case.create(tmp_path / "case", number="23", title="Storing", analyst="Ana")
    for i in range(5):
        noise_image(tmp_path / "src" / f"{i}.png", (40, 30), seed=i)
    c.import_paths([tmp_path / "src"])
    yield c
    c.close()


class Timeline:
    """What ran when, across the runner's and the storing thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.log: list[tuple[str, str, float]] = []

    def add(self, what: str, name: str) -> None:
        with self.lock:
            self.log.append((what, name, time.monotonic()))

    def names(self, what: str) -> list[str]:
        return [n for w, n, _ in self.log if w == what]


class SlowLocalizer(FakeLocalizer):
    def __init__(self, timeline: Timeline, forward_s: float = 0.0, **kw):
        super().__init__(name="fake", sha=SHA, **kw)
        self.timeline, self.forward_s = timeline, forward_s

    def predict(self, images):
        names = ",".join(Path(p).name for p in images)
        self.timeline.add("forward start", names)
        time.sleep(self.forward_s)
        out = super().predict(images)
        self.timeline.add("forward end", names)
        return out


def slow_store(case: Case, timeline: Timeline, seconds: float, before=None) -> None:
    """Make `case.store_result` take `seconds` (before the real store); `before(evidence_id)` first."""
    real = case.store_result

    def store(evidence_id, **kw):
        timeline.add("store start", str(evidence_id))
        if before is not None:
            before(evidence_id)
        time.sleep(seconds)
        result = real(evidence_id, **kw)
        timeline.add("store end", str(evidence_id))
        return result

    case.store_result = store


def once_forward_started(case, tl: Timeline, evidence_id: int, action):
    """An action to take once the forward of `evidence_id` began (so the next batch is already
    being computed speculatively when the action comes)."""
    name = case.evidence_file(case.get_evidence(evidence_id)).name
    deadline = time.monotonic() + 10
    while not any(name in n.split(",") for n in tl.names("forward start")):
        assert time.monotonic() < deadline, "the next forward never started"
        time.sleep(0.005)
    action()


def make_session(case, loc, **kw):
    model = SimpleNamespace(card=loc.card)
    return AnalysisSession(case, localizer_factory=lambda *a, **k: loc, model_resolver=lambda spec: model,
                           batch_size=loc.batch_size, **kw)


def statuses(case) -> list[str]:
    return [e.status for e in case.evidence_list()]


def successful(case) -> list[int]:
    return sorted(a.evidence_id for a in case.analyses() if a.error is None)


# ---------------------------------------------------------------- overlap, bound, order
def test_the_next_batch_is_computed_while_the_last_is_stored_and_never_two_ahead(case):
    tl = Timeline()
    loc = SlowLocalizer(tl, forward_s=0.25, batch_size=1)
    slow_store(case, tl, 0.25)
    summary = run_queue(case, loc)
    assert summary.done == 5 and successful(case) == [1, 2, 3, 4, 5]
    times = {(w, n): t for w, n, t in tl.log}
    names = [case.evidence_file(e).name for e in case.evidence_list()]
    # forward k+1 started before store k ended (overlap) ...
    overlapped = sum(times[("forward start", names[k + 1])] < times[("store end", str(k + 1))] for k in range(4))
    assert overlapped >= 3
    # ... but forward k+2 never before store k ended (at most one batch being stored)
    for k in range(3):
        assert times[("forward start", names[k + 2])] >= times[("store end", str(k + 1))]
    assert tl.names("store end") == ["1", "2", "3", "4", "5"]  # stored in order
    assert not [t for t in threading.enumerate() if t.name.startswith("declip-store")]


def test_progress_is_never_reported_from_two_threads_at_once(case):
    tl = Timeline()
    loc = SlowLocalizer(tl, forward_s=0.05, batch_size=1)
    slow_store(case, tl, 0.05)
    inside = threading.Lock()
    overlaps = []

    def on_progress(event):
        if not inside.acquire(blocking=False):
            overlaps.append(event)
            return
        try:
            time.sleep(0.02)
        finally:
            inside.release()

    assert run_queue(case, loc, on_progress=on_progress).done == 5
    assert overlaps == []


# ---------------------------------------------------------------- pause, stop, cancel
def test_a_pause_asked_while_storing_holds_nothing_computed_and_resumes_to_the_end(case):
    tl = Timeline()
    loc = SlowLocalizer(tl, forward_s=0.05, batch_size=1)
    s = make_session(case, loc)
    slow_store(case, tl, 0.4, before=lambda eid: eid == 1 and once_forward_started(case, tl, 2, s.pause))
    events, result = [], {}
    thread = threading.Thread(target=lambda: result.setdefault("summary", s.run(on_progress=events.append)))
    thread.start()
    deadline = time.monotonic() + 20
    while not tl.names("store end") and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.6)  # long enough for the speculative forward of item 2 to end and be dealt with
    # paused: item 1 stored, item 2 (computed while 1 was stored) put back, nothing 'analysing'
    assert successful(case) == [1] and statuses(case) == ["done", "queued", "queued", "queued", "queued"]
    assert thread.is_alive()
    assert [e.status for e in events if e.evidence_id == 2] == ["analysing", "queued"]
    assert not [e for e in case.audit_entries() if e.action == "analysis.requeued"]  # nothing happened to it
    s.resume()
    thread.join(30)
    assert result["summary"].done == 5 and successful(case) == [1, 2, 3, 4, 5]
    assert len(case.analyses()) == 5  # item 2 stored once


def test_a_stop_asked_while_storing_runs_no_batch_more(case):
    tl = Timeline()
    loc = SlowLocalizer(tl, forward_s=0.05, batch_size=2)
    s = make_session(case, loc)
    slow_store(case, tl, 0.3, before=lambda eid: eid == 1 and once_forward_started(case, tl, 3, s.stop))
    summary = s.run()
    assert summary.stopped and summary.done == 2 and summary.remaining == 3  # the batch under way, no more
    assert successful(case) == [1, 2] and statuses(case) == ["done", "done", "queued", "queued", "queued"]


def test_a_stop_asked_during_a_forward_finishes_and_stores_that_batch(case):
    tl = Timeline()
    s_holder = {}

    class StopInForward(SlowLocalizer):
        def predict(self, images):
            if self.calls == 1:  # the second batch: stop while it runs, once the first is stored
                deadline = time.monotonic() + 10
                while "2" not in tl.names("store end") and time.monotonic() < deadline:
                    time.sleep(0.005)
                s_holder["s"].stop()
            return super().predict(images)

    loc = StopInForward(tl, forward_s=0.1, batch_size=2)
    s = s_holder["s"] = make_session(case, loc)
    slow_store(case, tl, 0.0)
    summary = s.run()
    assert summary.stopped and summary.done == 4 and successful(case) == [1, 2, 3, 4]
    assert statuses(case)[-1] == "queued"


def test_cancel_while_storing_takes_the_rest_out_of_the_queue(case):
    tl = Timeline()
    loc = SlowLocalizer(tl, forward_s=0.05, batch_size=1)
    s = make_session(case, loc)
    slow_store(case, tl, 0.3, before=lambda eid: eid == 2 and once_forward_started(case, tl, 3, s.cancel))
    summary = s.run()
    assert summary.cancelled and summary.done == 2
    assert statuses(case) == ["done", "done", "skipped", "skipped", "skipped"]


def test_a_runner_without_the_non_blocking_question_stores_before_asking(case):
    """Any other `should_stop` (e.g. one counting results) sees every computed result stored."""
    tl = Timeline()
    loc = SlowLocalizer(tl, forward_s=0.05, batch_size=1)
    slow_store(case, tl, 0.2)
    events = []
    summary = run_queue(case, loc, on_progress=events.append,
                        should_stop=lambda: sum(e.status == "done" for e in events) >= 2)
    assert summary.stopped and summary.done == 2 and len(tl.names("forward start")) == 2


# ---------------------------------------------------------------- errors while storing
def _enospc_on(call: int):
    import declip_desktop.cases.analyses as analyses
    from declip_desktop.cases.files import write_durable

    calls = [0]

    def write(path, data):
        calls[0] += 1
        if calls[0] == call:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        write_durable(path, data)

    return analyses, write


def test_a_full_disk_while_storing_keeps_earlier_results_names_it_and_requeues_the_rest(case, monkeypatch):
    analyses, write = _enospc_on(3)
    monkeypatch.setattr(analyses, "write_durable", write)
    tl = Timeline()
    loc = SlowLocalizer(tl, forward_s=0.1, batch_size=2)
    with pytest.raises(DiskFullError, match="disk full at"):
        make_session(case, loc).run()
    assert successful(case) == [1, 2] and all(case.load_map(a).size for a in case.analyses())
    assert "analysing" not in statuses(case)  # item 3 and the batch computed meanwhile: queued again
    stopped = [e for e in case.audit_entries() if e.action == "analysis.stopped"]
    assert len(stopped) == 1 and stopped[0].evidence_id == 3 and "disk full at" in stopped[0].details["reason"]
    monkeypatch.undo()
    assert make_session(case, SlowLocalizer(tl, batch_size=2)).run().done == 3
    assert successful(case) == [1, 2, 3, 4, 5]


def test_a_real_full_disk_while_storing(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(disk)], capture_output=True,
                      timeout=20).returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here; the ENOSPC injection test covers this")
    try:
        with Case.create(disk / "case", number="23", title="Full", analyst="Ana") as c:
            for i in range(6):
                noise_image(tmp_path / "src" / f"{i}.png", (40, 30), seed=i)
            c.import_paths([tmp_path / "src"])

            class Big(SlowLocalizer):  # ~1 MB of noise per map as 16-bit PNG
                def predict(self, images):
                    out = super().predict(images)
                    for k, p in enumerate(out):
                        p.prob_map = np.random.default_rng(k + self.calls).random((700, 700), np.float32)
                    return out

            with pytest.raises(DiskFullError, match="disk full at"):
                run_queue(c, Big(Timeline(), batch_size=2), stop_requested=lambda: False)
            done = successful(c)
            assert 1 <= len(done) < 6 and done == list(range(1, len(done) + 1))
            for a in c.analyses():
                assert c.load_map(a).shape == (700, 700)  # what was stored is whole and hash-checked
            assert [s for s in statuses(c) if s not in ("done", "queued")] == []
            assert [p for p in (disk / "case" / ".tmp").iterdir() if not p.name.endswith(".lock")] == []
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False, capture_output=True, timeout=20)


def test_a_locked_database_while_storing_stops_the_run_with_the_usual_message(case, monkeypatch):
    import declip_desktop.cases.db as db

    monkeypatch.setattr(db, "RETRY_TOTAL_S", 0.3)
    tl = Timeline()
    holder = {}

    def take_the_lock():
        conn = db.connect(case.path / "case.sqlite")
        conn.execute("BEGIN IMMEDIATE")  # another program writing, for longer than a writer waits
        holder["conn"] = conn

    def lock_the_database(evidence_id):
        if evidence_id == 2 and "conn" not in holder:  # once item 3 is claimed and computing
            once_forward_started(case, tl, 3, take_the_lock)

    slow_store(case, tl, 0.0, before=lock_the_database)
    try:
        with pytest.raises(CaseBusyError, match="Nothing was changed"):
            run_queue(case, SlowLocalizer(tl, forward_s=0.05, batch_size=1), stop_requested=lambda: False)
    finally:
        holder["conn"].execute("ROLLBACK")
        holder["conn"].close()
    assert successful(case) == [1]
    # The database was locked, so the claims could not be put back either: the next run does it.
    assert statuses(case) == ["done", "analysing", "analysing", "queued", "queued"]
    assert run_queue(case, SlowLocalizer(tl, batch_size=1)).done == 4 and successful(case) == [1, 2, 3, 4, 5]


# ---------------------------------------------------------------- killed mid-store
KILLED_RUN = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    import declip_desktop.cases.analyses as analyses
    from declip_desktop.analysis import run_queue
    from declip_desktop.cases import Case
    from tests.test_storing_thread import SlowLocalizer, Timeline

    marker, mode = Path(sys.argv[2]), sys.argv[4]
    real_write = analyses.write_durable

    def write(path, data):  # the map half written, then slow: the kill lands mid-store
        real_write(path, data)
        marker.write_text(str(int(marker.read_text() or 0) + 1) if marker.exists() else "1")
        time.sleep(0.4)

    analyses.write_durable = write
    case = Case.open(Path(sys.argv[1]))
    run_queue(case, SlowLocalizer(Timeline(), forward_s=0.2, batch_size=2), stop_requested=lambda: False)
""")


@pytest.mark.parametrize("kill_after", [1, 3])
def test_a_process_killed_mid_store_leaves_the_queue_truthful(case, tmp_path, kill_after):
    marker = tmp_path / "stores"
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN)
    path = case.path
    case.close()
    proc = subprocess.Popen([sys.executable, str(script), str(path), str(marker), str(ROOT), "x"],
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        while not (marker.exists() and marker.read_text() and int(marker.read_text()) >= kill_after):
            assert proc.poll() is None, "the run ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    with Case.open(path) as c:  # opening finishes or discards what the killed store left
        done = successful(c)
        assert len(done) in (kill_after - 1, kill_after) and done == list(range(1, len(done) + 1))
        for a in c.analyses():
            assert c.load_map(a).size  # every stored row has its whole, hash-checked map
        assert sorted(statuses(c)) == sorted(["done"] * len(done) + ["queued"] * (5 - len(done)))
        assert c.verify().ok
        assert run_queue(c, FakeLocalizer(name="fake", sha=SHA, batch_size=2)).done == 5 - len(done)
        assert successful(c) == [1, 2, 3, 4, 5] and len(c.analyses()) == 5  # nothing twice


# ---------------------------------------------------------------- same results as the serial runner
def test_the_pipelined_runner_stores_what_the_serial_runner_stores(tmp_path):
    from declip_desktop.modelstore.loading import load_localizer
    from tests.factories import install_tiny_model

    install_tiny_model(name="tiny-storing")
    loc = load_localizer("tiny-storing", device="cpu", batch_size=2, threads=1)
    for i in range(5):
        noise_image(tmp_path / "src" / f"{i}.png", (64 + 8 * i, 48), seed=i)
    stored = {}
    for mode in ("serial", "pipelined"):
        with Case.create(tmp_path / mode, number="23", title=mode, analyst="Ana") as c:
            c.import_paths([tmp_path / "src"])
            summary = run_queue(c, loc, store_thread=mode == "pipelined")
            assert summary.done == 5
            stored[mode] = [(a.evidence_id, a.map_sha256, a.score, a.parameters, a.model_sha256, a.device,
                             a.error) for a in c.analyses()]
            assert [e.status for e in c.evidence_list()] == ["done"] * 5
    assert stored["serial"] == stored["pipelined"]
