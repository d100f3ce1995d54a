"""Child process for tests/test_cases_crash.py: import or analyse, to be killed at a random moment.

Prints "ready" once the case is open (and the model loaded), so the parent times its
SIGKILL from the start of the real work rather than from interpreter start-up."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    mode, root = sys.argv[1], sys.argv[2]
    from declip_desktop.cases import Case

    if mode == "import":
        with Case.open(root, analyst="crash-test") as case:
            print("ready", flush=True)
            report = case.import_paths(sys.argv[3:])
            print(f"imported {len(report.imported)}", flush=True)
        return
    from declip_desktop.analysis import run_queue

    if mode == "analyse-model":
        from declip_desktop.engine.localizer import Localizer

        localizer = Localizer(sys.argv[3], device="cpu", batch_size=2, threads=1)
    else:  # "analyse-fake": the runner and the case store without the engine
        from cases_util import FakeLocalizer

        localizer = FakeLocalizer(batch_size=2, delay=0.02)
    with Case.open(root, analyst="crash-test") as case:
        print("ready", flush=True)
        summary = run_queue(case, localizer)
        print(f"analysed {summary.done}", flush=True)


if __name__ == "__main__":
    main()
