"""Sections of benchmarks/faults.py beyond disk full: kills, locks, read-only mounts, hostile
files, refused destinations and output safety (helpers in fault_checks.py)."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from fault_checks import (
    HUGE_WEBP,
    Check,
    Outcome,
    cli,
    digests,
    env_for,
    intact,
    make_case,
    mount_tmpfs,
    photos,
    said,
    start_cli,
)


# ---------------------------------------------------------------------- kills
def _evidence_rows(case_dir: Path) -> int:
    try:
        con = sqlite3.connect(f"{(case_dir / 'case.sqlite').as_uri()}?mode=ro", uri=True, timeout=0.2)
        try:
            return con.execute("SELECT count(*) FROM evidence").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _kill_import(after_rows: int) -> Check:
    def check(work: Path) -> Outcome:
        case_dir = work / "case"
        cli(work, "case", "create", case_dir, "--number", "1", "--title", "t", "--analyst", "a")
        src = photos(work / "src", 300, size=(256, 192))
        proc = start_cli(work, "case", "import", case_dir, work / "src")
        while proc.poll() is None and _evidence_rows(case_dir) < after_rows:
            time.sleep(0.02)
        still_running = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rows = _evidence_rows(case_dir)
        cli(work, "case", "recover", case_dir)  # finishes or discards what the kill left (read-only commands never do)
        good, why = intact(work, case_dir, digests(src))
        when = f"mid-import ({rows} of 300 committed)" if still_running else "after it finished"
        return Outcome(good, f"killed {when}; {why}", lost=not good)

    return check


def _kill_analysis(work: Path) -> Outcome:
    case_dir = work / "case"
    cli(work, "case", "create", case_dir, "--number", "1", "--title", "t", "--analyst", "a")
    src = photos(work / "src", 8, size=(400, 300))
    cli(work, "case", "import", case_dir, work / "src")
    proc = start_cli(work, "case", "analyze", case_dir, "--model", "starter", "--batch-size", "1")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:  # kill once some results are stored
        done = cli(work, "case", "status", case_dir, "--json")
        if done.returncode == 0 and json.loads(done.stdout)["counts"].get("done", 0) >= 2:
            break
        time.sleep(0.3)
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cli(work, "case", "recover", case_dir)  # re-queues what the killed run left 'analysing'
    status = json.loads(cli(work, "case", "status", case_dir, "--json").stdout)
    good, why = intact(work, case_dir, digests(src))
    stuck = status["counts"].get("analysing", 0)
    return Outcome(good and not stuck, f"killed {'mid-run' if running else 'late'}; counts {status['counts']}; {why}",
                   lost=not good)


def kill_checks() -> list[tuple[str, Check]]:
    return [(f"kill -9 an import once {n}+ files are committed", _kill_import(n)) for n in (1, 100, 200)] + [
        ("kill -9 an analysis run after 2 results", _kill_analysis)]


# ---------------------------------------------------------------------- locks
def _hold_write_lock(case_dir: Path) -> subprocess.Popen:
    code = ("import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(case_dir / 'case.sqlite')!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE'); print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()
    return proc


def _reader_while_locked(*args: str) -> Check:
    """A reader must take about as long with another process holding the write lock as without."""

    def check(work: Path) -> Outcome:
        case_dir, originals = make_case(work, 2)

        def run(out_name: str) -> subprocess.CompletedProcess:
            extra = [str(work / out_name) if a == "OUT" else a for a in args[2:]]
            return cli(work, *args[:2], case_dir, *extra, timeout=30)

        t0 = time.monotonic()
        run("unlocked.json")
        free = time.monotonic() - t0
        holder = _hold_write_lock(case_dir)
        t0 = time.monotonic()
        try:
            done = run("locked.json")
            ok, detail = said(done, 0, "")
        except subprocess.TimeoutExpired:
            ok, detail = False, "still waiting after 30 s"
        finally:
            holder.kill()
            holder.wait()
        locked = time.monotonic() - t0
        good, why = intact(work, case_dir, originals)
        fast = locked <= 1.5 * free + 2.0  # no waiting for the writer (the machine's load aside)
        return Outcome(ok and fast and good, f"{locked:.1f} s locked, {free:.1f} s unlocked; {detail}", lost=not good)

    return check


def _writer_while_locked(work: Path) -> Outcome:
    case_dir, originals = make_case(work, 1)
    photos(work / "more", 2, start=50)
    holder = _hold_write_lock(case_dir)
    t0 = time.monotonic()
    try:
        done = cli(work, "case", "import", case_dir, work / "more", timeout=25)
        ok, detail = said(done, 2, "busy")
    except subprocess.TimeoutExpired:
        ok, detail = False, "still waiting after 25 s"
    finally:
        holder.kill()
        holder.wait()
    seconds = time.monotonic() - t0
    good, why = intact(work, case_dir, originals)
    return Outcome(ok and seconds < 15 and good, f"{seconds:.1f} s; {detail}", lost=not good)


def lock_checks() -> list[tuple[str, Check]]:
    return [("status while another process holds the write lock", _reader_while_locked("case", "status")),
            ("verify while another process holds the write lock", _reader_while_locked("case", "verify")),
            ("export while another process holds the write lock",
             _reader_while_locked("case", "export", "--out", "OUT")),
            ("import while locked says who holds the case", _writer_while_locked)]


# ---------------------------------------------------------------------- read-only
def _read_only(*args: str) -> Check:
    def check(work: Path) -> Outcome:
        mount = work / "ro"
        if not mount_tmpfs(mount, "16m"):
            return Outcome(False, "could not mount a tmpfs (run as root)")
        case_dir, originals = make_case(work, 2, folder=mount / "case")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        extra = [str(work / "out.csv") if a == "OUT" else a for a in args[2:]]
        try:
            done = cli(work, *args[:2], case_dir, *extra, timeout=30)
            ok, detail = said(done, 0, "")
        except subprocess.TimeoutExpired:
            ok, detail = False, "hung for 30 s"
        subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=True)
        good, why = intact(work, case_dir, originals)
        return Outcome(ok and good, detail, lost=not good)

    return check


def read_only_checks() -> list[tuple[str, Check]]:
    return [("verify a case on a read-only mount", _read_only("case", "verify")),
            ("status of a case on a read-only mount", _read_only("case", "status")),
            ("export a case on a read-only mount", _read_only("case", "export", "--out", "OUT"))]


# ---------------------------------------------------------------------- hostile files
def _png_chunk(kind: bytes, body: bytes) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(buf, "PNG")
    data = buf.getvalue()
    chunk = struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    at = data.index(b"IDAT") - 4
    return data[:at] + chunk + data[at:]


def _hostile_import(work: Path) -> Outcome:
    src = work / "src"
    photos(src, 193, size=(16, 12))
    inflates = zlib.compress(b"A" * 3_000_000, 9)
    hostile = {"ztxt.png": _png_chunk(b"zTXt", b"C\0\0" + inflates),
               "itxt.png": _png_chunk(b"iTXt", b"C\0\x01\x00en\0\0" + inflates),
               "iccp.png": _png_chunk(b"iCCP", b"icc\0\0" + inflates),
               "truncated.jpg": (src / "p000.jpg").read_bytes()[:-200],
               "huge.webp": HUGE_WEBP}
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)  # a 10-gigapixel header: a bomb
    hostile["bomb.png"] = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
                           + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF))
    for name, data in hostile.items():
        (src / name).write_bytes(data)
    case_dir = work / "case"
    cli(work, "case", "create", case_dir, "--number", "1", "--title", "t", "--analyst", "a")
    done = cli(work, "case", "import", case_dir, src, "--json")
    out = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {"imported": [], "rejected": []}
    rejected = {Path(r["path"]).name for r in out["rejected"]}
    want = set(hostile) - {"huge.webp"}  # the WebP is valid and within the pixel budget
    ok = done.returncode == 1 and rejected == want and len(out["imported"]) == 194
    good, why = intact(work, case_dir, digests(sorted(src.glob("p*"))))
    return Outcome(ok and good, f"{len(out['imported'])} imported, rejected {sorted(rejected)}", lost=not good)


def _webp_memory(work: Path) -> Outcome:
    (work / "huge.webp").write_bytes(HUGE_WEBP)
    case_dir = work / "case"
    cli(work, "case", "create", case_dir, "--number", "1", "--title", "t", "--analyst", "a")
    code = ("import resource, subprocess, sys\n"
            "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n")
    done = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "declip_desktop", "case", "import",
                           str(case_dir), str(work / "huge.webp")], capture_output=True, text=True,
                          env=env_for(work), cwd=work)
    if done.returncode != 0:
        return Outcome(False, done.stderr.strip()[-110:])
    peak = int(done.stdout.strip())
    return Outcome(peak < 1600, f"import peak RSS {peak} MB (budget 1600 MB; 3094 MB before)")


def _fifo(work: Path) -> Outcome:
    src = photos(work / "src", 2)
    os.mkfifo(work / "src" / "pipe.jpg")
    case_dir = work / "case"
    cli(work, "case", "create", case_dir, "--number", "1", "--title", "t", "--analyst", "a")
    try:
        ok, detail = said(cli(work, "case", "import", case_dir, work / "src", timeout=30), 1, "not a regular file")
    except subprocess.TimeoutExpired:
        return Outcome(False, "the import hung on a FIFO")
    good, why = intact(work, case_dir, digests(src))
    return Outcome(ok and good, detail, lost=not good)


def hostile_file_checks() -> list[tuple[str, Check]]:
    return [("200 files with hostile PNG chunks, truncated JPEG, bomb, huge WebP", _hostile_import),
            ("importing a 38-byte WebP declaring 16383x12000", _webp_memory),
            ("a FIFO among the files to import", _fifo)]


# ---------------------------------------------------------------------- destinations
def _refused(build) -> Check:  # noqa: ANN001 - build(work, case_dir) -> (args, victim path)
    def check(work: Path) -> Outcome:
        case_dir, originals = make_case(work, 2)
        args, victim = build(work, case_dir)
        before = digests([victim]) if victim.is_file() else {}
        ok, detail = said(cli(work, *args), 2, "error:")
        after = digests([victim]) if victim.is_file() else {}
        good, why = intact(work, case_dir, originals)
        return Outcome(ok and before == after and good, detail, lost=before != after or not good)

    return check


def _photo_in(work: Path) -> Path:
    return photos(work / "P", 2)[1]  # P/p001.png: its png16 map would be P/p001.png itself


def destination_checks() -> list[tuple[str, Check]]:
    def link(work: Path, case_dir: Path) -> Path:
        target = next((case_dir / "evidence").iterdir())
        (work / "out.json").symlink_to(target)
        return work / "out.json"

    return [
        ("case report --out CASE/case.sqlite", _refused(lambda w, c: (
            ["case", "report", c, "--out", c / "case.sqlite", "--force"], c / "case.sqlite"))),
        ("analyze P/x.png --maps-dir P --map-format png16", _refused(lambda w, c: (
            ["analyze", _photo_in(w), "--maps-dir", w / "P", "--map-format", "png16", "--force"], w / "P" / "p001.png"))),
        ("case export --out a symlink to an evidence file", _refused(lambda w, c: (
            ["case", "export", c, "--out", link(w, c), "--force"], next((c / "evidence").iterdir())))),
        ("case export-images --out CASE/results", _refused(lambda w, c: (
            ["case", "export-images", c, "--out", c / "results"], c / "case.sqlite"))),
        ("case report --out over an imported original", _refused(lambda w, c: (
            ["case", "report", c, "--out", w / "src" / "p001.png", "--force"], w / "src" / "p001.png"))),
    ]


# ---------------------------------------------------------------------- output
def _csv_formulas(work: Path) -> Outcome:
    src = work / "src"
    photos(src, 1)
    os.rename(src / "p000.jpg", src / "=1+2.jpg")
    case_dir = work / "case"
    cli(work, "case", "create", case_dir, "--number", "1", "--title", "t", "--analyst", "a")
    cli(work, "case", "import", case_dir, src)
    cli(work, "case", "export", case_dir, "--out", work / "r.csv")
    with open(work / "r.csv", newline="", encoding="utf-8") as fh:
        cells = [v for row in csv.reader(fh) for v in row]
    bad = [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    return Outcome(not bad and "'=1+2.jpg" in cells, f"{len(cells)} cells, {len(bad)} formula-like")


def _terminal(work: Path) -> Outcome:
    src = work / "src"
    photos(src, 1)
    os.rename(src / "p000.jpg", src / "\x1b[2J\x1b]0;x\x07\nOK: nothing changed.jpg")
    case_dir = work / "case"
    cli(work, "case", "create", case_dir, "--number", "1", "--title", "t", "--analyst", "a")
    cli(work, "case", "import", case_dir, src)
    out = cli(work, "case", "status", case_dir).stdout
    forged = any(line.startswith("OK: nothing changed") for line in out.splitlines())
    return Outcome("\x1b" not in out and not forged, "escape sequences shown as \\x1b…, no forged line")


def _closed_pipe(work: Path) -> Outcome:
    case_dir, _ = make_case(work, 2)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "declip_desktop", "case", "status", str(case_dir), "--json"],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, env=env_for(work), cwd=work)
    finally:
        os.close(write_end)
    quiet = "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
    return Outcome(quiet and done.returncode == 141, f"exit {done.returncode}, stderr {done.stderr.strip()[:60]!r}")


def output_checks() -> list[tuple[str, Check]]:
    return [("CSV export of a file named =1+2.jpg", _csv_formulas),
            ("status of a file named with ESC sequences and a newline", _terminal),
            ("case status | (reader gone)", _closed_pipe)]
