"""Anchors: copies of the audit chain's head kept outside the case, and signatures.

A chain that lives only in the case can be rewritten whole by someone with write access
(every entry rehashed, `meta` updated). What catches that is a head recorded elsewhere:

- a receipt (`declip case anchor DIR --out FILE`): case id, entry count, head hash, time —
  mailed or printed; `verify --anchor FILE` checks the chain still has that hash at that
  position;
- every PDF report prints the head it was made at (and carries it in its metadata);
  verify checks each registered report's head is still on the chain, and `--anchor` also
  accepts a copy of a report (e.g. the one handed to a court);
- optional Ed25519 signatures (cases/signing.py) on receipts and reports, so a receipt or a
  report cannot itself be forged by whoever rewrote the case.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from declip_desktop.cases import audit, signing
from declip_desktop.cases.errors import CaseError
from declip_desktop.cases.records import Problem
from declip_desktop.common.hashing import sha256_file
from declip_desktop.common.version import software_id

RECEIPT_FORMAT = "declip-anchor/1"
SIGNATURE_FORMAT = "declip-report-signature/1"
SIGNATURE_SUFFIX = ".sig"
#: PDF document-information keys a report carries its anchor in (written by reports/build.py).
PDF_HEAD_KEY = "/DeclipAuditHead"  # "<count>:<sha256>"
PDF_CASE_KEY = "/DeclipCaseId"  # the case's uuid


class AnchorError(CaseError):
    """An anchor file could not be read, so nothing could be checked against it."""


@dataclass(frozen=True)
class Anchor:
    source: str  # the file it came from
    case_uuid: str | None
    count: int
    head: str
    made_at: str | None = None
    signer: str | None = None  # "NAME (fingerprint…)" when validly signed
    signature_problem: str | None = None
    fingerprint: str | None = None  # of the valid signature's key


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------ receipts
def make_receipt(case: Any, signer: signing.Signer | None = None) -> dict[str, Any]:
    with case.snapshot():  # the id and the head of one committed state
        info = case.info
        head, count = case.audit_head()
    receipt: dict[str, Any] = {"format": RECEIPT_FORMAT, "case_uuid": info.uuid, "case_number": info.number,
                               "audit_count": count, "audit_head": head, "made_at": now_utc(),
                               "made_with": software_id()}
    if signer is not None:
        receipt["signature"] = signer.sign(receipt)
    return receipt


def write_new_file(path: Path, text: str) -> None:
    """Create `path` with `text`; an existing file (or a symlink) is never replaced."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except FileExistsError:
        raise CaseError(f"{path} already exists; it was not replaced. Choose a new file name.") from None
    except OSError as exc:
        raise CaseError(f"cannot write {path}: {exc.strerror or exc}. Choose another location.") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _describe_signer(block: dict[str, Any]) -> str:
    return f"{block.get('name')} (key {signing.short(str(block.get('fingerprint', '')))})"


def load_anchor(path: str | os.PathLike[str]) -> Anchor:
    """A receipt, a report's signature file, or a PDF report made by DeCLIP Desktop."""
    p = Path(path)
    try:
        # O_NONBLOCK: a FIFO given as an anchor must not block the open; it is refused below.
        with open(p, "rb", opener=lambda f, fl: os.open(f, fl | getattr(os, "O_NONBLOCK", 0))) as fh:
            if not os.path.isfile(p):
                raise AnchorError(f"{p} is not a regular file; give a receipt, signature or report file.")
            data = fh.read(64 << 20)
    except OSError as exc:
        raise AnchorError(f"cannot read the anchor {p}: {exc.strerror or exc}.") from None
    if data.startswith(b"%PDF"):
        return _pdf_anchor(p)
    try:
        doc = json.loads(data.decode("utf-8"))
        if doc.get("format") not in (RECEIPT_FORMAT, SIGNATURE_FORMAT):
            raise ValueError(doc.get("format"))
        count, head = int(doc["audit_count"]), str(doc["audit_head"])
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        raise AnchorError(f"{p} is not a DeCLIP anchor receipt, report signature or PDF report.") from None
    signer = problem = fp = None
    if "signature" in doc:
        payload = {k: v for k, v in doc.items() if k != "signature"}
        problem = signing.check(payload, doc["signature"])
        if problem is None:
            signer, fp = _describe_signer(doc["signature"]), doc["signature"].get("fingerprint")
    return Anchor(str(p), doc.get("case_uuid"), count, head, doc.get("made_at") or doc.get("signed_at"),
                  signer, problem, fp)


def _pdf_anchor(p: Path) -> Anchor:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        meta = PdfReader(str(p)).metadata or {}
        text = str(meta.get(PDF_HEAD_KEY) or "")
        count, head = text.split(":", 1)
        return Anchor(str(p), str(meta.get(PDF_CASE_KEY) or "") or None, int(count), head.strip())
    except (PdfReadError, OSError, ValueError) as exc:
        raise AnchorError(f"{p}: a PDF without a DeCLIP audit anchor (made by an older version, or not a "
                          f"DeCLIP report): {exc}") from None


def hash_at(conn: sqlite3.Connection, seq: int) -> str | None:
    if seq == 0:
        return audit.GENESIS
    row = conn.execute("SELECT hash FROM audit WHERE seq = ?", (int(seq),)).fetchone()
    return None if row is None else row[0]


def check_anchor(conn: sqlite3.Connection, anchor: Anchor, case_uuid: str) -> list[Problem]:
    where = f"anchor:{Path(anchor.source).name}"
    problems = []
    if anchor.signature_problem:
        problems.append(Problem("signature_invalid", where, f"{anchor.source}: {anchor.signature_problem}"))
    if anchor.case_uuid and anchor.case_uuid != case_uuid:
        problems.append(Problem("anchor_mismatch", where, f"{anchor.source} belongs to case {anchor.case_uuid}, "
                                                          f"not to this case ({case_uuid})"))
        return problems
    found = hash_at(conn, anchor.count)
    if found != anchor.head:
        state = "is missing" if found is None else f"has hash {found[:16]}…"
        problems.append(Problem("anchor_mismatch", where,
                                f"history rewritten: {anchor.source} (made {anchor.made_at or 'at an unknown time'}) "
                                f"records entry {anchor.count} with hash {anchor.head[:16]}…, but that entry {state} "
                                "in the case now"))
    return problems


# ------------------------------------------------------------------------------ keys and reports
def record_signer(conn: sqlite3.Connection, pub: signing.PublicKey, actor: str) -> None:
    """Record a public key in the case (inside the caller's write transaction), once."""
    if conn.execute("SELECT 1 FROM signers WHERE fingerprint = ?", (pub.fingerprint,)).fetchone():
        return
    at = audit.now_iso()
    conn.execute("INSERT INTO signers (fingerprint, name, public_key, registered_by, registered_at) "
                 "VALUES (?, ?, ?, ?, ?)", (pub.fingerprint, pub.name, pub.public_key, actor, at))
    audit.append(conn, actor, "key.registered", f"key:{pub.fingerprint[:16]}",
                 {"fingerprint": pub.fingerprint, "name": pub.name, "public_key": pub.public_key,
                  "registered_at": at})


def register_key(case: Any, pub: signing.PublicKey, analyst: str | None = None) -> bool:
    """Record an analyst's public key in the case (no private key needed). False if it was known."""
    with case._write() as conn:
        if conn.execute("SELECT 1 FROM signers WHERE fingerprint = ?", (pub.fingerprint,)).fetchone():
            return False
        record_signer(conn, pub, case._actor(analyst, conn))
    return True


def sign_report(case: Any, report_path: str | os.PathLike[str], signer: signing.Signer,
                analyst: str | None = None) -> Path:
    """Write `<report>.sig` for a registered report, record the key and the signing in the case."""
    p = Path(report_path).expanduser().absolute()
    try:
        stored = str(p.relative_to(case.path))
    except ValueError:
        stored = str(p)
    row = case._store.one("SELECT id, sha256, size FROM reports WHERE path = ? ORDER BY id DESC LIMIT 1", (stored,))
    if row is None:
        raise CaseError(f"{p} is not a report registered in this case; only registered reports are signed.")
    if sha256_file(p) != row["sha256"]:
        raise CaseError(f"{p} changed after it was registered; it was not signed. Run `declip case verify`.")
    entry = case._store.one("SELECT details FROM audit WHERE action = 'report.registered' AND object = ? "
                            "ORDER BY seq DESC LIMIT 1", (f"report:{stored}",))
    details = json.loads(entry["details"]) if entry else {}
    payload = {"format": SIGNATURE_FORMAT, "file": p.name, "sha256": row["sha256"], "size": row["size"],
               "case_uuid": case.info.uuid,
               "audit_count": details.get("printed_count", details.get("audit_count_before", 0)),
               "audit_head": details.get("printed_head", details.get("audit_head_before", audit.GENESIS)),
               "signed_at": now_utc()}
    doc = {**payload, "signature": signer.sign(payload)}
    sig_path = p.with_name(p.name + SIGNATURE_SUFFIX)
    text = json.dumps(doc, indent=2) + "\n"
    write_new_file(sig_path, text)
    try:
        with case._write() as conn:
            actor = case._actor(analyst, conn)
            record_signer(conn, signer.public, actor)
            audit.append(conn, actor, "report.signed", f"report:{stored}",
                         {"path": stored, "signature_file": sig_path.name, "fingerprint": signer.fingerprint,
                          "signature_sha256": sha256_file(sig_path)})
    except BaseException:
        sig_path.unlink(missing_ok=True)  # not recorded: leave no unexplained signature behind
        raise
    return sig_path


def check_reports(conn: sqlite3.Connection, root: Path, case_uuid: str, known_keys: dict[str, str]
                  ) -> tuple[list[Problem], list[Problem], list[str]]:
    """Each registered report's head is on the chain; its PDF anchor and signature agree.

    Returns (problems, notices, signers described)."""
    problems: list[Problem] = []
    notices: list[Problem] = []
    signed: list[str] = []
    signed_entries: dict[str, dict] = {}
    registrations: dict[str, dict] = {}
    for action, obj, details in conn.execute(
            "SELECT action, object, details FROM audit WHERE action IN ('report.registered', 'report.signed') "
            "ORDER BY seq"):
        try:
            d = json.loads(details)
        except ValueError:
            continue
        (registrations if action == "report.registered" else signed_entries)[obj] = d
    for rep_id, path, sha in conn.execute("SELECT id, path, sha256 FROM reports ORDER BY id"):
        full = Path(path) if Path(path).is_absolute() else root / path
        label = f"report {path} (report {rep_id})"
        d = registrations.get(f"report:{path}", {})
        count = d.get("printed_count", d.get("audit_count_before"))
        head = d.get("printed_head", d.get("audit_head_before"))
        if count is not None and head is not None and hash_at(conn, int(count)) != head:
            problems.append(Problem("anchor_mismatch", f"report:{rep_id}",
                                    f"{label}: made when the trail had {count} entries ending in {str(head)[:16]}…, "
                                    "but that entry is no longer on the chain (history rewritten)"))
        if full.suffix.lower() == ".pdf" and _is_regular(full):
            try:
                pdf = _pdf_anchor(full)
            except AnchorError:
                pdf = None  # reports made before anchors were printed; the registration still anchors it
            if pdf is not None and (pdf.count, pdf.head) != (count, head):
                problems.append(Problem("anchor_mismatch", f"report:{rep_id}",
                                        f"{label}: the PDF prints entry {pdf.count} ({pdf.head[:16]}…) but was "
                                        f"registered as made at entry {count}"))
            _check_embedded_signatures(full, label, f"report:{rep_id}", known_keys, problems, notices, signed)
        sig_path = full.with_name(full.name + SIGNATURE_SUFFIX)
        if f"report:{path}" in signed_entries or os.path.lexists(sig_path):
            problems_sig, who = _check_report_signature(sig_path, sha, case_uuid, label, f"report:{rep_id}",
                                                        signed_entries.get(f"report:{path}"), known_keys)
            problems.extend(problems_sig)
            if who:
                signed.append(f"{label}: signed by {who}")
                if who.endswith("(a key this case does not record)"):
                    notices.append(Problem("signature_unknown_key", f"report:{rep_id}", f"{label}: signed by {who}"))
    return problems, notices, signed


def _check_embedded_signatures(full: Path, label: str, obj: str, known_keys: dict[str, str],
                               problems: list[Problem], notices: list[Problem], signed: list[str]) -> None:
    """The report's PAdES signatures (cases.pdf_signing): intact, whole-file, and by which key."""
    from declip_desktop.cases import pdf_signing

    if not pdf_signing.has_signatures(full):
        return
    for sig in pdf_signing.check_pdf(full):
        if sig.problem:
            problems.append(Problem("pdf_signature_invalid", obj, f"{label}: its PDF signature ({sig.signer}) "
                                                                  f"fails: {sig.problem}"))
            continue
        who = f"{label}: PDF signature by {sig.signer}, key {signing.short(sig.fingerprint)}"
        if sig.fingerprint in known_keys:
            signed.append(who + ", a key recorded in this case")
        else:
            signed.append(who + " (a key this case does not record)")
            notices.append(Problem("signature_unknown_key", obj, f"{label}: PDF signed by {sig.signer} with a key "
                                                                 "this case does not record"))


def _is_regular(path: Path) -> bool:
    try:
        return os.path.isfile(path) and not os.path.islink(path)
    except OSError:
        return False


def _check_report_signature(sig_path: Path, sha: str, case_uuid: str, label: str, obj: str,
                            entry: dict | None, known_keys: dict[str, str]) -> tuple[list[Problem], str | None]:
    if not _is_regular(sig_path):
        return [Problem("signature_missing", obj, f"{label}: signed according to the trail, but "
                                                  f"{sig_path.name} is missing or not a regular file")], None
    try:
        doc = json.loads(sig_path.read_text(encoding="utf-8"))
        payload = {k: v for k, v in doc.items() if k != "signature"}
        block = doc.get("signature")
    except (OSError, ValueError, AttributeError):
        return [Problem("signature_invalid", obj, f"{label}: {sig_path.name} is not a readable signature")], None
    problem = signing.check(payload, block)
    if problem is None and payload.get("sha256") != sha:
        problem = "the signature is for a file with another SHA-256 than the registered report"
    if problem is None and payload.get("case_uuid") != case_uuid:
        problem = "the signature is for another case"
    if problem is None and entry is not None and entry.get("fingerprint") != block.get("fingerprint"):
        problem = "the signature was replaced: another key than the one the trail records signed it"
    if problem is None and entry is None:
        problem = "a signature file the audit trail does not record (added outside the application)"
    if problem:
        return [Problem("signature_invalid", obj, f"{label}: {problem}")], None
    fp = block["fingerprint"]
    who = _describe_signer(block)
    if fp in known_keys:
        who += ", a key recorded in this case"
    else:
        who += " (a key this case does not record)"
    return [], who
