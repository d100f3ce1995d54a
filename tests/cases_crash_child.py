"""Child processes for tests/test_cases_crash.py, to be killed at random moments.

`import ROOT PATH…`: open the case, print "ready", import.

`zygote MODE`: load the analysis model once (torch start-up is the slow part), print
"loaded", then for every line "run ROOT" read from stdin fork a worker that opens the
case, prints "ready PID" and runs the queue. The zygote waits for each worker and
prints "exit PID killed|ok|failed", so the test knows whether its SIGKILL landed while
the worker was still busy. MODE is "model NAME" (tiny DeCLIP via the engine's
Localizer; installed first with tests/factories.py) or "fake" (tests/cases_util.py).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: `tests.` imports


def _import(root: str, paths: list[str]) -> None:
    from declip_desktop.cases import Case

    with Case.open(root, analyst="crash-test") as case:
        print("ready", flush=True)
        report = case.import_paths(paths)
        print(f"imported {len(report.imported)}", flush=True)


def _zygote(mode: list[str]) -> None:
    from declip_desktop.analysis import run_queue
    from declip_desktop.cases import Case

    if mode[0] == "model":
        from tests.factories import install_tiny_model

        from declip_desktop.modelstore.loading import load_localizer

        install_tiny_model(name=mode[1])
        localizer = load_localizer(mode[1], device="cpu", batch_size=2, threads=1)
    else:
        from tests.cases_util import FakeLocalizer

        localizer = FakeLocalizer(batch_size=2, delay=0.02)
    print("loaded", flush=True)
    for line in sys.stdin:
        root = line.split(maxsplit=1)[1].strip()
        pid = os.fork()
        if pid == 0:  # worker: a fresh case handle (never share SQLite connections across fork)
            code = 1
            try:
                with Case.open(root, analyst="crash-test") as case:
                    print(f"ready {os.getpid()}", flush=True)
                    summary = run_queue(case, localizer)
                    code = 0 if summary.failed == 0 else 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
            outcome = "killed"
        else:
            outcome = "ok" if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else "failed"
        print(f"exit {pid} {outcome}", flush=True)


def main() -> None:
    if sys.argv[1] == "import":
        _import(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "zygote":
        _zygote(sys.argv[2:])
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}")


if __name__ == "__main__":
    main()
