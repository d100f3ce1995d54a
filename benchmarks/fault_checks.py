"""The checks that benchmarks/faults.py runs: one function per fault or attack.

Every check gets a fresh scratch folder, drives the real `python -m declip_desktop` (or the
case store for set-up), and returns an Outcome: `ok` when the program detected the attack or
survived the fault as promised (clear message, right exit code), `lost` when anything was
damaged (a case that no longer verifies, a referenced file missing, an original changed).
"""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
#: The 38-byte lossless WebP declaring 16383×12000 (see benchmarks/decode_budget.py).
HUGE_WEBP = bytes.fromhex("524946461e000000574542505650384c110000002ffeffb70b0750da2217b4ff8188e87f0000")
_MOUNTS: list[Path] = []


@dataclass
class Outcome:
    ok: bool  # detected / survived
    detail: str
    lost: bool = False  # damage found: evidence, a referenced file or the case itself


Check = Callable[[Path], Outcome]


# ---------------------------------------------------------------------- helpers
def env_for(work: Path) -> dict[str, str]:
    home = work / "home"
    home.mkdir(exist_ok=True)
    return {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen", "DECLIP_HOME": str(home),
            "OMP_NUM_THREADS": "1"}


def cli(work: Path, *args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "declip_desktop", *map(str, args)], capture_output=True,
                          text=True, env=env_for(work), cwd=work, timeout=timeout, **kw)


def start_cli(work: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "declip_desktop", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env_for(work), cwd=work)


def photos(folder: Path, n: int, size=(96, 72), start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        arr = np.random.default_rng(i).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        path = folder / f"p{i:03d}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(arr).save(path)
        out.append(path)
    return out


def digests(paths) -> dict[str, str]:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def make_case(work: Path, n: int = 3, size=(96, 72), folder: Path | None = None) -> tuple[Path, dict[str, str]]:
    """A case with `n` imported, analysed photos; returns (case folder, hashes of the originals)."""
    from declip_desktop.cases import Case

    src = photos(work / "src", n, size)
    case_dir = folder or work / "case"
    with Case.create(case_dir, number="F-1", title="faults", analyst="bench") as case:
        case.import_paths(src)
        for ev in case.evidence_list():
            case.store_result(ev.id, model_name="m", model_sha256="a" * 64, parameters={}, score=0.5,
                              prob_map=np.random.default_rng(ev.id).random((ev.height, ev.width), np.float32),
                              device="cpu", seconds=1.0, started="2026-01-01T00:00:00+00:00",
                              finished="2026-01-01T00:00:01+00:00")
    return case_dir, digests(src)


def intact(work: Path, case_dir: Path, originals: dict[str, str]) -> tuple[bool, str]:
    """Nothing lost: the originals unchanged, `case verify` clean, no half-written file left."""
    changed = [p for p, h in originals.items() if not Path(p).is_file() or digests([p])[p] != h]
    if changed:
        return False, f"original changed: {changed[0]}"
    done = cli(work, "case", "verify", case_dir)
    if done.returncode != 0:
        return False, "verify: " + (done.stdout + done.stderr).strip().splitlines()[-1][:120]
    junk = [p.name for p in (case_dir / ".tmp").iterdir() if p.name.endswith((".partial", ".staged", ".writing"))]
    if junk:
        return False, f"left in .tmp: {junk[0]}"
    return True, "verify clean"


def mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode == 0:
        _MOUNTS.append(path)
    return done.returncode == 0


def cleanup_mounts() -> None:
    while _MOUNTS:
        subprocess.run(["umount", "-l", str(_MOUNTS.pop())], capture_output=True, check=False)


def fill(disk: Path, leave: int) -> Path:
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)  # unbuffered: nothing left to flush
    try:
        while os.write(fd, b"\0" * 65536):
            continue
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def said(done: subprocess.CompletedProcess, code: int, words: str) -> tuple[bool, str]:
    text = (done.stderr or "") + (done.stdout or "")
    last = text.strip().splitlines()[-1][:110] if text.strip() else ""
    ok = done.returncode == code and words in text and "Traceback" not in text
    return ok, f"exit {done.returncode}: {last}"


# ---------------------------------------------------------------------- disk full
def _disk(work: Path) -> Path | None:
    return work / "disk" if mount_tmpfs(work / "disk", "6m") else None


def _no_disk() -> Outcome:
    return Outcome(False, "could not mount a tmpfs (run as root)")


def full_import(work: Path) -> Outcome:
    disk = _disk(work)
    if disk is None:
        return _no_disk()
    case_dir = disk / "case"
    cli(work, "case", "create", case_dir, "--number", "1", "--title", "t", "--analyst", "a")
    src = photos(work / "src", 20, size=(300, 260))
    filler = fill(disk, 2_000_000)
    ok, detail = said(cli(work, "case", "import", case_dir, work / "src"), 2, "disk full at")
    filler.unlink()
    good, why = intact(work, case_dir, digests(src))
    return Outcome(ok and good, detail if ok else detail + "; " + why, lost=not good)


def full_report(work: Path) -> Outcome:
    disk = _disk(work)
    if disk is None:
        return _no_disk()
    case_dir, originals = make_case(work, 2, size=(500, 400), folder=disk / "case")
    filler = fill(disk, 300_000)
    ok, detail = said(cli(work, "case", "report", case_dir), 2, "disk full at")
    filler.unlink()
    kept = list((case_dir / "reports").iterdir())
    good, why = intact(work, case_dir, originals)
    return Outcome(ok and not kept and good, detail + ("" if not kept else "; a report was kept"), lost=not good)


def full_export(work: Path) -> Outcome:
    disk = _disk(work)
    if disk is None:
        return _no_disk()
    case_dir, originals = make_case(work, 3)
    fill(disk, 0)
    ok, detail = said(cli(work, "case", "export", case_dir, "--out", disk / "r.json"), 2, "disk full at")
    partial = [p.name for p in disk.iterdir() if p.name != "filler"]
    good, why = intact(work, case_dir, originals)
    return Outcome(ok and not partial and good, detail + (f"; left {partial}" if partial else ""), lost=not good)


def full_maps(work: Path) -> Outcome:
    disk = _disk(work)
    if disk is None:
        return _no_disk()
    src = photos(work / "src", 2, size=(900, 700))
    originals = digests(src)
    fill(disk, 200_000)
    ok, detail = said(cli(work, "analyze", *src, "--model", "starter", "--maps-dir", disk / "maps", "--threads", "1"),
                      2, "disk full at")
    partial = [p.name for p in (disk / "maps").iterdir()] if (disk / "maps").exists() else []
    same = digests(src) == originals
    return Outcome(ok and same and all(not n.endswith(".part") for n in partial), detail, lost=not same)


def full_case_analysis(work: Path) -> Outcome:
    disk = _disk(work)
    if disk is None:
        return _no_disk()
    case_dir = disk / "case"
    cli(work, "case", "create", case_dir, "--number", "1", "--title", "t", "--analyst", "a")
    src = photos(work / "src", 2, size=(900, 700))
    cli(work, "case", "import", case_dir, work / "src")
    filler = fill(disk, 250_000)
    ok, detail = said(cli(work, "case", "analyze", case_dir, "--model", "starter", "--batch-size", "1"),
                      2, "disk full at")
    filler.unlink()
    con = sqlite3.connect(case_dir / "case.sqlite")
    logged = con.execute("SELECT count(*) FROM audit WHERE action = 'analysis.stopped' "
                         "AND details LIKE '%disk full at%'").fetchone()[0]
    con.close()
    good, why = intact(work, case_dir, digests(src))
    return Outcome(ok and logged > 0 and good, detail + ("" if logged else "; no reason in the audit log"),
                   lost=not good)


def full_model_weights(work: Path) -> Outcome:
    import torch

    from declip_desktop.common.outputs import DiskFullError
    from declip_desktop.modelstore.weights_file import write_safetensors

    disk = _disk(work)
    if disk is None:
        return _no_disk()
    fill(disk, 100_000)
    try:
        write_safetensors(disk / "m.safetensors", {"w": torch.zeros(2_000_000)})
    except DiskFullError as exc:
        left = [p.name for p in disk.iterdir() if p.name != "filler"]
        return Outcome(not left, str(exc)[:110] + (f"; left {left}" if left else ""))
    return Outcome(False, "the weights were written onto a full disk?")


def disk_full_checks() -> list[tuple[str, Check]]:
    return [("import onto a full disk", full_import), ("report onto a full disk", full_report),
            ("export onto a full disk", full_export), ("analyze --maps-dir onto a full disk", full_maps),
            ("case analyze with the case's disk full", full_case_analysis),
            ("model weights onto a full disk", full_model_weights)]


__all__ = ["Check", "Outcome", "cleanup_mounts", "cli", "disk_full_checks", "intact", "make_case", "photos"]
