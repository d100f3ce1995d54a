"""The fault and attack catalogue of issue 15, run end to end against the real command line.

Each check does one thing an adversary or an accident does to a case (fill the disk, kill the
process, hold the lock, mount it read-only, feed hostile files, aim an output at the evidence,
…) and then checks that the program said what happened and that nothing was lost: the case
still verifies, every file the database references is whole, no half-written file is left,
the evidence and the originals are byte-identical. It prints one line per check and

    N of M attacks detected / faults survived, nothing lost

(or "… LOST in K" when a check found damage). Sections run in order; `--only` picks some.

    PYTHONPATH=. python benchmarks/faults.py [--only disk-full kills …] [--keep DIR]

Disk-full checks mount a small tmpfs (needs root); elsewhere they inject ENOSPC instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fault_checks as fc  # noqa: E402 - the checks themselves, next to this script
import fault_checks_more as fm  # noqa: E402
from fault_checks import Check, Outcome  # noqa: E402


def tampering_section() -> list[tuple[str, Check]]:
    """>>> TAMPERING PLUG-IN POINT (issue 15 items 1-4) <<<

    The tampering catalogue (benchmarks/tampering.py, written with `case verify`'s trail
    replay) plugs in here and only here: each attack edits a copy of one finished case with
    plain SQL/file operations and counts as detected when `verify` (with the receipt kept
    outside the case) names it. The pristine case is built once, on the first attack."""
    import tampering
    from tampering_case import build_case

    state: dict[str, object] = {}

    def make(attack) -> Check:  # noqa: ANN001 - a tampering.Attack
        def check(work: Path) -> Outcome:
            if "pristine" not in state:
                os.environ["DECLIP_HOME"] = str(work.parent / "tampering-home")  # its signing keys
                state["pristine"] = build_case(work.parent / "tampering-pristine")
            done = tampering.run_attack(attack, state["pristine"], work)
            said = done.problems[0] if done.problems else "verify reported nothing"
            alone = "" if done.detected_without_anchor or not done.detected else " (needs the receipt)"
            return Outcome(done.detected, f"{attack.description}{alone}: {said[:100]}")

        return check

    return [(f"tamper: {a.name}", make(a)) for a in tampering.ATTACKS]


def sections() -> dict[str, list[tuple[str, Check]]]:
    return {
        "tampering": tampering_section(),
        "disk-full": fc.disk_full_checks(),
        "kills": fm.kill_checks(),
        "locks": fm.lock_checks(),
        "read-only": fm.read_only_checks(),
        "hostile-files": fm.hostile_file_checks(),
        "destinations": fm.destination_checks(),
        "output": fm.output_checks(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", metavar="SECTION", help="run only these sections")
    ap.add_argument("--keep", type=Path, help="keep the scratch folders here (default: deleted)")
    args = ap.parse_args()
    all_sections = sections()
    chosen = args.only or list(all_sections)
    unknown = sorted(set(chosen) - set(all_sections))
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(all_sections)}")
    total = passed = lost = 0
    t0 = time.perf_counter()
    scratch_root = args.keep or Path(tempfile.mkdtemp(prefix="declip-faults-"))
    scratch_root.mkdir(parents=True, exist_ok=True)
    for name in chosen:
        checks = all_sections[name]
        print(f"== {name}: {len(checks)} check(s)")
        for label, check in checks:
            work = scratch_root / f"{name}-{total:03d}"
            work.mkdir()
            started = time.perf_counter()
            try:
                out = check(work)
            except Exception as exc:  # noqa: BLE001 - a crash of the check is a failed check, not the end
                out = Outcome(False, f"check crashed: {type(exc).__name__}: {exc}")
                traceback.print_exc(limit=3, file=sys.stderr)
            total += 1
            passed += out.ok
            lost += out.lost
            mark = "ok  " if out.ok else "FAIL"
            print(f"  {mark} {label:<58} {time.perf_counter() - started:5.1f} s  {out.detail}", flush=True)
    fc.cleanup_mounts()
    if not args.keep:
        subprocess.run(["rm", "-rf", str(scratch_root)], check=False)
    print()
    print(f"{passed} of {total} attacks detected / faults survived, "
          + ("nothing lost" if not lost else f"LOST in {lost}"))
    print(f"({time.perf_counter() - t0:.0f} s on {platform.node()}, {platform.platform()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}; root: {os.geteuid() == 0})")
    print(json.dumps({"detected_or_survived": passed, "total": total, "lost": lost}))
    return 0 if passed == total and not lost else 1


if __name__ == "__main__":
    sys.exit(main())
