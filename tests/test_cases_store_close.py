"""Closing a case while another thread still uses it: a clear error on that thread, never a crash.

Wave-2 CI died with a segfault when the window closed its case while a pool thread was
still reading it (sqlite3 freed the statement under the running query).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import weakref

import pytest

from declip_desktop.cases import Case, CaseError

# Run in a child: a regression is a segfault, which would take the whole test session down.
RACE = textwrap.dedent("""
    import sys, threading, time
    from declip_desktop.cases import Case, CaseError
    root = sys.argv[1]
    with Case.open(root, analyst="Ana") as case:
        with case._store.write() as conn:
            conn.execute("CREATE TABLE filler(x)")
            conn.executemany("INSERT INTO filler VALUES (?)", [(i,) for i in range(100_000)])
    outcomes = {"closed": 0, "finished": 0}
    for round_ in range(40):
        case = Case.open(root, analyst="Ana")
        def reader():
            try:
                for _ in range(30):
                    case._store.query("SELECT sum(a.x * a.x) FROM filler a")
                    case.evidence_list()
            except CaseError:
                outcomes["closed"] += 1
            else:
                outcomes["finished"] += 1
        thread = threading.Thread(target=reader)
        thread.start()
        time.sleep(0.004 * (round_ % 6))
        case.close()
        thread.join()
    print(outcomes["closed"], outcomes["finished"])
""")


@pytest.mark.timeout(180)
def test_closing_while_another_thread_queries_never_crashes(tmp_path):
    Case.create(tmp_path / "case", number="1", title="Race", analyst="Ana").close()
    done = subprocess.run([sys.executable, "-c", RACE, str(tmp_path / "case")],
                          capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, f"rc {done.returncode}\n{done.stderr[-3000:]}"
    closed, finished = map(int, done.stdout.split())
    assert closed + finished == 40
    assert closed > 0, "no round closed the case mid-query: the race was not exercised"


def test_an_idle_thread_connection_is_closed_by_close_and_its_next_use_says_closed(tmp_path):
    case = Case.create(tmp_path / "case", number="2", title="Idle", analyst="Ana")
    opened, resume = threading.Event(), threading.Event()
    seen: dict = {}

    def idle_reader():
        seen["conn"] = weakref.ref(case._store.conn)
        case.evidence_list()
        opened.set()
        resume.wait(30)
        try:
            case.evidence_list()
        except CaseError as exc:
            seen["error"] = str(exc)

    thread = threading.Thread(target=idle_reader)
    thread.start()
    assert opened.wait(30)
    case.close()
    # Freed (and so closed) before close() returned, though its thread is still alive.
    assert seen["conn"]() is None
    resume.set()
    thread.join(30)
    assert "the case is closed" in seen["error"]


def test_connections_of_finished_threads_and_of_the_closer_are_closed(tmp_path):
    case = Case.create(tmp_path / "case", number="3", title="Done", analyst="Ana")
    holder: dict = {}
    thread = threading.Thread(target=lambda: holder.setdefault("conn", case._store.conn))
    thread.start()
    thread.join()
    mine = case._store.conn
    case.close()
    for conn in (holder["conn"], mine):  # still referenced here, so closed explicitly, not freed
        with pytest.raises(Exception, match="closed database"):
            conn.execute("SELECT 1")
    with pytest.raises(CaseError, match="the case is closed"):
        case._store.query("SELECT 1")
