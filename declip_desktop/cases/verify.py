"""`Case.verify()`: re-check everything a court could ask about, reading only.

- SQLite's own integrity check and the audit chain (edits, insertions, deletions, truncation);
- the audit trail replayed into the state of every table, compared with the database
  (cases/replay.py): every row that differs, is missing or is unexplained is named;
- every evidence file, result map and registered report exists, is a regular file (a FIFO,
  device, folder or symlink in its place is named, never opened in a way that could hang)
  and still has its recorded SHA-256;
- no file in evidence/ or results/ that the database does not know;
- each registered report's audit head is still on the chain, its signature (if any) holds;
- each anchor given (`--anchor`) is still on the chain.

It never writes: the case is opened read-only by the CLI, and nothing here appends to the
audit log, recovers or requeues.
"""

from __future__ import annotations

import hashlib
import os
import stat
from datetime import datetime
from pathlib import Path
from typing import Any

from declip_desktop.cases import anchors, audit, reconcile, replay
from declip_desktop.cases.files import TMP_DIR
from declip_desktop.cases.records import Problem, VerifyReport

# Files the application itself may leave in results/: derived previews, not results.
_DERIVED_DIRS = {"thumbnails"}
#: An audit entry whose time is this much earlier than its predecessor's is a problem, not a
#: clock correction.
CLOCK_BACK_TOLERANCE_S = 300.0

_KIND_NAMES = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
               stat.S_IFBLK: "a block device", stat.S_IFDIR: "a folder", stat.S_IFSOCK: "a socket"}


def inspect_file(path: Path) -> tuple[str, str]:
    """('ok', sha256) | ('missing', '') | ('not_a_file', what it is) | ('unreadable', why).

    lstat first, then open with O_NOFOLLOW | O_NONBLOCK and re-check the open file: a FIFO or
    device can never block the read, a symlink is never followed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "missing", ""
    except OSError as exc:
        return "unreadable", exc.strerror or str(exc)
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return "not_a_file", f"a symbolic link (to {target})"
    if not stat.S_ISREG(st.st_mode):
        return "not_a_file", _KIND_NAMES.get(stat.S_IFMT(st.st_mode), "not a regular file")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        return "unreadable", exc.strerror or str(exc)
    try:
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode) or (fst.st_ino, fst.st_dev) != (st.st_ino, st.st_dev):
            return "not_a_file", "replaced while it was being checked"
        digest = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            digest.update(chunk)
        return "ok", digest.hexdigest()
    except OSError as exc:
        return "unreadable", exc.strerror or str(exc)
    finally:
        os.close(fd)


def _check_file(problems: list[Problem], root: Path, rel: str, want_sha: str, obj: str, label: str,
                noun: str, missing_kind: str, changed_kind: str, later: str) -> None:
    state, value = inspect_file(root / rel)
    if state == "missing":
        problems.append(Problem(missing_kind, obj, f"{label}: {noun} {rel} is missing from the case folder"))
    elif state == "not_a_file":
        problems.append(Problem("not_a_file", obj, f"{label}: {rel} is {value}, not the {noun} (not opened)"))
    elif state == "unreadable":
        problems.append(Problem("unreadable_file", obj, f"{label}: {rel} cannot be read ({value})"))
    elif value != want_sha:
        problems.append(Problem(changed_kind, obj, f"{label}: {rel} changed {later}: SHA-256 is now {value}, "
                                                   f"was {want_sha}"))


def _walk(folder: Path):  # noqa: ANN202 - yields (relative posix path, lstat mode)
    """Every entry under `folder`, without following symlinks (a symlinked folder is listed, not entered)."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in list(dirnames):
            p = Path(dirpath) / name
            if p.is_symlink():
                yield p, os.lstat(p).st_mode
        for name in filenames:
            p = Path(dirpath) / name
            try:
                yield p, os.lstat(p).st_mode
            except FileNotFoundError:
                continue  # removed while walking (a concurrent program's scratch file)


def _clock(conn: Any) -> tuple[list[Problem], list[Problem]]:
    problems, notices = [], []
    prev: tuple[int, datetime] | None = None
    for seq, ts in conn.execute("SELECT seq, ts FROM audit ORDER BY seq"):
        t = replay.parse_time(ts)
        if t is None:
            problems.append(Problem("audit_time", f"audit:{seq}", f"entry {seq} has no readable time ({ts!r})"))
            continue
        if prev is not None and t < prev[1]:
            back = (prev[1] - t).total_seconds()
            target = problems if back > CLOCK_BACK_TOLERANCE_S else notices
            target.append(Problem("audit_time", f"audit:{seq}",
                                  f"entry {seq} ({ts}) is {back:.0f} s earlier than entry {prev[0]} before it "
                                  + ("(entries reordered or backdated)" if back > CLOCK_BACK_TOLERANCE_S
                                     else "(the computer's clock was set back a little)")))
        prev = (seq, t)
    return problems, notices


def record_problems(conn: Any) -> list[Problem]:
    """The database checks alone (chain + replay), without hashing any file: fast enough to run
    before every report, so a report never prints values edited outside the application."""
    problems, _walked, _head = audit.verify_chain(conn)
    return problems + reconcile.compare(conn, replay.replay(conn))


def verify_case(case: Any, anchor_files: list[anchors.Anchor] | None = None) -> VerifyReport:
    conn = case._store.conn
    root: Path = case.path
    problems: list[Problem] = []
    notices: list[Problem] = []

    for line in case.integrity_check():
        problems.append(Problem("database_integrity", "case.sqlite", f"SQLite integrity check: {line}"))

    chain_problems, walked, head = audit.verify_chain(conn)
    problems.extend(chain_problems)
    clock_problems, clock_notices = _clock(conn)
    problems.extend(clock_problems)
    notices.extend(clock_notices)

    expected = replay.replay(conn)
    problems.extend(reconcile.compare(conn, expected))
    notices.extend(reconcile.legacy_notices(expected))

    known_evidence: set[str] = set()
    evidence_checked = 0
    for ev_id, stored_name, sha, name in conn.execute(
            "SELECT id, stored_name, sha256, original_name FROM evidence ORDER BY id"):
        evidence_checked += 1
        known_evidence.add(stored_name)
        _check_file(problems, root, f"evidence/{stored_name}", sha, f"evidence:{ev_id}",
                    expected.evidence_label(ev_id, name), "evidence file", "evidence_missing", "evidence_changed",
                    "after import")

    known_maps: set[str] = set()
    maps_checked = 0
    for a_id, ev_id, map_file, map_sha in conn.execute(
            "SELECT id, evidence_id, map_file, map_sha256 FROM analyses WHERE map_file IS NOT NULL ORDER BY id"):
        maps_checked += 1
        known_maps.add(map_file)
        _check_file(problems, root, map_file, map_sha, f"analysis:{a_id}",
                    f"{expected.name_of(ev_id)} (evidence {ev_id}, analysis {a_id})", "result map", "map_missing",
                    "map_changed", "after it was stored")

    reports_checked = 0
    tables = reconcile.tables(conn)
    for rep_id, path, sha in (conn.execute("SELECT id, path, sha256 FROM reports ORDER BY id")
                              if "reports" in tables else []):
        reports_checked += 1
        # `root / path` is `path` itself when a report was registered outside the case (absolute).
        _check_file(problems, root, path, sha, f"report:{rep_id}",
                    f"report {path} (report {rep_id})", "registered report", "report_missing", "report_changed",
                    "after it was registered")

    case_uuid = (conn.execute("SELECT uuid FROM case_info WHERE id = 1").fetchone() or [""])[0] or ""
    signed_by: list[str] = []
    known_keys = ({r[0]: r[1] for r in conn.execute("SELECT fingerprint, name FROM signers")}
                  if "signers" in tables else {})
    if "reports" in tables:
        rep_problems, rep_notices, signed_by = anchors.check_reports(conn, root, case_uuid, known_keys)
        problems.extend(rep_problems)
        notices.extend(rep_notices)

    for anchor in anchor_files or []:
        problems.extend(anchors.check_anchor(conn, anchor, case_uuid))
        if anchor.signer:
            known = ", a key recorded in this case" if anchor.fingerprint in known_keys else \
                " (a key this case does not record)"
            signed_by.append(f"anchor {anchor.source}: signed by {anchor.signer}{known}")

    for folder, known, skip in (("evidence", known_evidence, set()), ("results", known_maps, _DERIVED_DIRS)):
        base = root / folder
        if base.is_symlink() or (os.path.lexists(base) and not base.is_dir()):
            problems.append(Problem("not_a_file", folder, f"{folder}/ is not a plain folder of the case "
                                                          "(a symbolic link or a file); not entered"))
            continue
        if not base.is_dir():
            continue
        for p, mode in _walk(base):
            rel_parts = p.relative_to(base).parts
            if rel_parts[0] in skip:
                continue
            rel = p.relative_to(root).as_posix()
            name = p.relative_to(base).as_posix() if folder == "evidence" else rel
            if name in known:
                continue
            what = "file" if stat.S_ISREG(mode) else _KIND_NAMES.get(stat.S_IFMT(mode), "symbolic link"
                                                                       if stat.S_ISLNK(mode) else "entry")
            problems.append(Problem("unknown_file", rel, f"{what} in {folder}/ that the case database does not list"))

    # Staged files for committed rows mean a program stopped mid-import and the case was not
    # opened for writing since; any command that changes the case finishes the job.
    tmp = root / TMP_DIR
    if tmp.is_dir() and not tmp.is_symlink():
        for p in sorted(tmp.glob("*.staged")):
            name = p.name[: p.name.rindex("~")] if "~" in p.name else ""
            if name in known_evidence or any(m.endswith("/" + name) for m in known_maps):
                problems.append(Problem("interrupted", str(p.relative_to(root)),
                                        "an interrupted import or analysis left this file; run "
                                        "`declip case recover` (or open the case in DeCLIP Desktop) to finish it, "
                                        "then verify again"))

    return VerifyReport(ok=not problems, problems=problems, evidence_checked=evidence_checked,
                        maps_checked=maps_checked, reports_checked=reports_checked, audit_entries=walked,
                        audit_head=head, notices=notices, signed_by=signed_by,
                        anchors_checked=len(anchor_files or []))
