"""The tampering catalogue: named attacks on a finished case, each done with plain SQL and file
operations (what someone with write access to the folder can do), and whether `verify` catches it.

    python benchmarks/tampering.py [--keep DIR]

builds one finished case (four photos imported, one file rejected, two analyses and a failure,
three reviews, a setting, a signed PDF report; see tampering_case.py) plus a signed receipt kept
outside the case, then for each attack: copies the case, attacks the copy, runs
`Case.verify(anchors=[receipt])` and counts the attack as detected when verify reports a problem containing every expected
phrase (which names the item by its file name). It also prints how many are detected
without the receipt: attacks marked `needs_anchor` rewrite the whole history consistently,
and only a head kept outside the case can catch them (docs/INTEGRITY.md).

The tests (tests/test_cases_tampering.py) run the same catalogue; benchmarks/faults.py
imports it for the fault benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tampering_case import (  # noqa: E402 - the case, and the forger's tools
    Fixture,
    _photo,
    build_case,
    copy_fixture,
    edit_details,
    rehash_chain,
    renumber,
    writable,
)

from declip_desktop.cases import Case, signing  # noqa: E402


@dataclass(frozen=True)
class Attack:
    name: str
    description: str
    apply: Callable[[Fixture], None]
    expect: tuple[str, ...]  # every phrase must appear in one problem's text
    needs_anchor: bool = False  # only a head kept outside the case can catch it


@dataclass
class Outcome:
    attack: Attack
    detected: bool
    detected_without_anchor: bool
    problems: list[str]
    seconds: float


# ------------------------------------------------------------------------------ attacks
def _score(f: Fixture) -> None:
    f.sql("UPDATE analyses SET score = 0.01 WHERE id = ?", f.analyses["cat.jpg"])


def _verdict(f: Fixture) -> None:
    f.sql("UPDATE evidence SET verdict = 'authentic' WHERE id = ?", f.ids["cat.jpg"])


def _notes(f: Fixture) -> None:
    f.sql("UPDATE evidence SET notes = 'nothing found' WHERE id = ?", f.ids["cat.jpg"])


def _threshold(f: Fixture) -> None:
    f.sql("UPDATE evidence SET threshold = 0.99 WHERE id = ?", f.ids["cat.jpg"])


def _reviewer(f: Fixture) -> None:
    f.sql("UPDATE evidence SET reviewed_by = 'Bob' WHERE id = ?", f.ids["cat.jpg"])


def _status(f: Fixture) -> None:
    f.sql("UPDATE evidence SET status = 'skipped' WHERE id = ?", f.ids["dog.png"])


def _model(f: Fixture) -> None:
    f.sql("UPDATE analyses SET model_name = 'declip-rn50', model_sha256 = ? WHERE id = ?", "cd" * 32,
          f.analyses["dog.png"])


def _delete_evidence(f: Fixture) -> None:
    ev, mp = f.evidence_path("dog.png"), f.map_path("dog.png")
    f.sql("DELETE FROM analyses WHERE evidence_id = ?", f.ids["dog.png"])
    f.sql("DELETE FROM evidence WHERE id = ?", f.ids["dog.png"])
    ev.unlink()
    mp.unlink()


def _swap_report(f: Fixture) -> None:
    import hashlib

    writable(f.report).write_bytes(b"%PDF-1.4 a different report\n%%EOF\n")
    f.sql("UPDATE reports SET sha256 = ?, size = ?", hashlib.sha256(f.report.read_bytes()).hexdigest(),
          f.report.stat().st_size)


def _delete_report(f: Fixture) -> None:
    f.sql("DELETE FROM reports")
    writable(f.report).unlink()
    f.report.with_name(f.report.name + ".sig").unlink()


def _provenance_path(f: Fixture) -> None:
    f.sql("UPDATE evidence SET original_path = '/media/camera/DCIM/IMG_0001.JPG' WHERE id = ?", f.ids["cat.jpg"])


def _provenance_importer(f: Fixture) -> None:
    f.sql("UPDATE evidence SET imported_by = 'Bob' WHERE id = ?", f.ids["cat.jpg"])


def _provenance_time(f: Fixture) -> None:
    f.sql("UPDATE evidence SET imported_at = '2026-11-01T09:00:00.000+01:00' WHERE id = ?", f.ids["cat.jpg"])


def _case_number(f: Fixture) -> None:
    f.sql("UPDATE case_info SET number = '2026-9999'")


def _case_analyst(f: Fixture) -> None:
    f.sql("UPDATE case_info SET analyst = 'Bob'")


def _delete_rejections(f: Fixture) -> None:
    f.sql("DELETE FROM rejections")


def _tail_deleted(f: Fixture) -> None:
    """Delete the last entries (review onwards) and point `meta` at the new last entry."""
    conn = f.db()
    first = conn.execute("SELECT min(seq) FROM audit WHERE action = 'review.changed'").fetchone()[0]
    conn.execute("DELETE FROM audit WHERE seq >= ?", (first,))
    seq, digest = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", (digest,))
    conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_count'", (str(seq),))
    conn.close()


def _evidence_inserted(f: Fixture) -> None:
    import hashlib

    planted = f.root / "evidence" / "planted.png"
    _photo(planted, seed=77)
    sha = hashlib.sha256(planted.read_bytes()).hexdigest()
    planted = planted.rename(f.root / "evidence" / f"{sha}.png")
    f.sql("INSERT INTO evidence (sha256, md5, size, original_name, original_path, stored_name, format, width, "
          "height, mode, metadata, imported_by, imported_at, status, verdict, notes) VALUES (?, 'x', ?, "
          "'planted.png', '/tmp/planted.png', ?, 'PNG', 48, 40, 'RGB', '{}', 'Ana', "
          "'2026-12-01T20:00:00.000+01:00', 'queued', 'not reviewed', '')", sha, planted.stat().st_size,
          planted.name)


def _analysis_inserted(f: Fixture) -> None:
    f.sql("INSERT INTO analyses (evidence_id, model_name, model_sha256, parameters, score, software_version, "
          "created_by) VALUES (?, 'declip-vit', ?, '{}', 0.02, '0.1.0', 'Ana')", f.ids["bird.png"], "ab" * 32)


def _setting_edited(f: Fixture) -> None:
    f.sql("UPDATE settings SET value = '\"declip-rn50\"' WHERE key = 'model'")


def _setting_inserted(f: Fixture) -> None:
    f.sql("INSERT INTO settings (key, value) VALUES ('default_threshold', '0.9')")


def _tag_inserted(f: Fixture) -> None:
    """A tag planted by hand (cases.tags): 'cleared' on an item nobody tagged."""
    f.sql("INSERT INTO evidence_tags (evidence_id, tag, added_by, added_at) VALUES "
          "(?, 'cleared', 'ana', '2026-12-01T10:00:00.000+00:00')", f.ids["cat.jpg"])


def _payload_rehashed_no_meta(f: Fixture) -> None:
    """Edit the score in the entry and the row, rehash the chain, but leave `meta` alone."""
    conn = f.db()
    head = conn.execute("SELECT key, value FROM meta").fetchall()
    edit_details(conn, "object = ?", lambda d: d.update(score=0.01), f"analysis:{f.analyses['cat.jpg']}")
    conn.execute("UPDATE analyses SET score = 0.01 WHERE id = ?", (f.analyses["cat.jpg"],))
    rehash_chain(conn)
    conn.executemany("UPDATE meta SET value = ? WHERE key = ?", [(v, k) for k, v in head])
    conn.close()


def _payload_rehashed(f: Fixture) -> None:
    """Edit the score in the entry and the row, rehash the chain and fix `meta`: the chain is
    consistent; the report registered later still names the old head."""
    conn = f.db()
    edit_details(conn, "object = ?", lambda d: d.update(score=0.01), f"analysis:{f.analyses['cat.jpg']}")
    conn.execute("UPDATE analyses SET score = 0.01 WHERE id = ?", (f.analyses["cat.jpg"],))
    rehash_chain(conn)
    conn.close()


def _full_rewrite(f: Fixture) -> None:
    """Rewrite the history whole: score edited in row and entry, every trace of the report and
    its signature removed, entries renumbered and rehashed, `meta` fixed."""
    conn = f.db()
    edit_details(conn, "object = ?", lambda d: d.update(score=0.01), f"analysis:{f.analyses['cat.jpg']}")
    conn.execute("UPDATE analyses SET score = 0.01 WHERE id = ?", (f.analyses["cat.jpg"],))
    conn.execute("DELETE FROM audit WHERE action IN ('report.registered', 'report.signed', 'key.registered')")
    conn.execute("DELETE FROM reports")
    conn.execute("DELETE FROM signers")
    renumber(conn)
    rehash_chain(conn)
    conn.close()
    writable(f.report).unlink()
    f.report.with_name(f.report.name + ".sig").unlink()


def _backdated(f: Fixture) -> None:
    """Move the review a day into the past (rehashed, `meta` fixed): entries out of time order."""
    conn = f.db()
    conn.execute("UPDATE audit SET ts = '2026-11-30T10:00:00.000+01:00' WHERE action = 'review.changed'")
    rehash_chain(conn)
    conn.close()


def _timestamps_swapped(f: Fixture) -> None:
    conn = f.db()
    # the first entry and the review: times milliseconds apart could be equal
    (a, ta), (b, tb) = conn.execute("SELECT seq, ts FROM audit WHERE seq = 1 OR seq = (SELECT min(seq) FROM "
                                    "audit WHERE action = 'review.changed') ORDER BY seq").fetchall()
    conn.execute("UPDATE audit SET ts = ? WHERE seq = ?", (tb, a))
    conn.execute("UPDATE audit SET ts = ? WHERE seq = ?", (ta, b))
    conn.close()


def _maps_swapped(f: Fixture) -> None:
    """Swap the two result maps' files and their hashes in the rows."""
    a, b = f.map_path("cat.jpg"), f.map_path("dog.png")
    da, db_ = writable(a).read_bytes(), writable(b).read_bytes()
    a.write_bytes(db_)
    b.write_bytes(da)
    conn = f.db()
    (sa,), (sb,) = (conn.execute("SELECT map_sha256 FROM analyses WHERE id = ?", (f.analyses[n],)).fetchone()
                    for n in ("cat.jpg", "dog.png"))
    conn.execute("UPDATE analyses SET map_sha256 = ? WHERE id = ?", (sb, f.analyses["cat.jpg"]))
    conn.execute("UPDATE analyses SET map_sha256 = ? WHERE id = ?", (sa, f.analyses["dog.png"]))
    conn.close()


def _map_files_swapped(f: Fixture) -> None:
    a, b = f.map_path("cat.jpg"), f.map_path("dog.png")
    da, db_ = writable(a).read_bytes(), writable(b).read_bytes()
    a.write_bytes(db_)
    b.write_bytes(da)


def _evidence_edited(f: Fixture) -> None:
    p = writable(f.evidence_path("cat.jpg"))
    data = bytearray(p.read_bytes())
    data[-10] ^= 0xFF
    p.write_bytes(bytes(data))


def _evidence_fifo(f: Fixture) -> None:
    p = writable(f.evidence_path("dog.png"))
    p.unlink()
    os.mkfifo(p)


def _evidence_symlink(f: Fixture) -> None:
    """Same bytes, but a link to a file outside the case (which can change at any time)."""
    p = writable(f.evidence_path("dog.png"))
    outside = f.root.parent / "outside.png"
    shutil.copyfile(p, outside)
    p.unlink()
    p.symlink_to(outside)


def _evidence_dir(f: Fixture) -> None:
    p = writable(f.evidence_path("dog.png"))
    p.unlink()
    p.mkdir()


def _file_planted(f: Fixture) -> None:
    _photo(f.root / "evidence" / "extra.png", seed=5)


def _signature_resigned(f: Fixture) -> None:
    """Replace the report's signature by one from another key (the forger's own)."""
    signing.create_key("mallory")
    other = signing.load_key("mallory")
    sig = f.report.with_name(f.report.name + ".sig")
    doc = json.loads(sig.read_text())
    payload = {k: v for k, v in doc.items() if k != "signature"}
    sig.write_text(json.dumps({**payload, "signature": other.sign(payload)}))


def _signature_edited(f: Fixture) -> None:
    sig = f.report.with_name(f.report.name + ".sig")
    doc = json.loads(sig.read_text())
    doc["audit_count"] = 1
    sig.write_text(json.dumps(doc))


def _signer_key_swapped(f: Fixture) -> None:
    f.sql("UPDATE signers SET name = 'Bob'")


def _metadata_edited(f: Fixture) -> None:
    f.sql("UPDATE evidence SET metadata = '{\"exif\": {\"Make\": \"Canon\"}}' WHERE id = ?", f.ids["cat.jpg"])


def _case_uuid(f: Fixture) -> None:
    f.sql("UPDATE case_info SET uuid = '00000000-0000-4000-8000-000000000000'")


def _schema_version(f: Fixture) -> None:
    f.sql("PRAGMA user_version = 2")


def _middle_entry_deleted(f: Fixture) -> None:
    """Delete the review entry, renumber and rehash the rest, fix `meta`: a clean-looking chain."""
    conn = f.db()
    conn.execute("DELETE FROM audit WHERE action = 'review.changed'")
    renumber(conn)
    rehash_chain(conn)
    conn.close()


def _earlier_review_deleted(f: Fixture) -> None:
    """Delete the first of two reviews of an item, renumber and rehash: the row still matches the
    second review, but that entry says it replaced a value the shortened trail never set."""
    conn = f.db()
    conn.execute("DELETE FROM audit WHERE action = 'review.changed' AND details LIKE '%\"draft\"%' "
                 "AND details NOT LIKE '%\"final\"%'")
    renumber(conn)
    rehash_chain(conn)
    conn.close()


def _stored_name_repointed(f: Fixture) -> None:
    """Point cat.jpg's row at dog.png's file (and hash): both rows now name the same bytes."""
    conn = f.db()
    name, sha = conn.execute("SELECT stored_name, sha256 FROM evidence WHERE id = ?", (f.ids["dog.png"],)).fetchone()
    conn.execute("DROP INDEX IF EXISTS idx_evidence_sha256")
    conn.execute("UPDATE evidence SET stored_name = ?, sha256 = ? WHERE id = ?", (name, sha, f.ids["cat.jpg"]))
    conn.close()


def _analysis_repointed(f: Fixture) -> None:
    f.sql("UPDATE analyses SET evidence_id = ? WHERE id = ?", f.ids["bird.png"], f.analyses["cat.jpg"])


def _signature_deleted(f: Fixture) -> None:
    f.report.with_name(f.report.name + ".sig").unlink()


def _signer_deleted(f: Fixture) -> None:
    f.sql("DELETE FROM signers")


def _rejection_edited(f: Fixture) -> None:
    f.sql("UPDATE rejections SET reason = 'duplicate'")


def _report_row_inserted(f: Fixture) -> None:
    f.sql("INSERT INTO reports (path, sha256, size, registered_by, registered_at) VALUES "
          "('reports/forged.pdf', ?, 10, 'Ana', '2026-12-01T21:00:00+01:00')", "00" * 32)


ATTACKS: list[Attack] = [
    Attack("score_edited", "analysis score set from 0.982 to 0.01", _score,
           ("cat.jpg (evidence ", ", analysis ", "score 0.010 in the database, 0.982")),
    Attack("verdict_changed", "verdict changed to 'authentic'", _verdict,
           ("cat.jpg (evidence ", "verdict 'authentic' in the database, 'manipulated'")),
    Attack("notes_edited", "review notes rewritten", _notes, ("cat.jpg", "notes 'nothing found' in the database")),
    Attack("threshold_edited", "review threshold changed", _threshold, ("cat.jpg", "threshold 0.990 in the database")),
    Attack("reviewer_edited", "reviewer changed", _reviewer, ("cat.jpg", "reviewer 'Bob' in the database")),
    Attack("status_edited", "evidence status set to skipped", _status, ("dog.png", "status 'skipped'")),
    Attack("model_swapped", "analysis attributed to another model", _model, ("dog.png", "model SHA-256")),
    Attack("evidence_deleted", "evidence row, file and map deleted", _delete_evidence,
           ("dog.png (evidence ", "missing from the database")),
    Attack("report_swapped", "report file and its hash in the database replaced", _swap_report,
           ("report reports/2026-0141-report.pdf", "SHA-256")),
    Attack("report_deleted", "report row, file and signature deleted", _delete_report,
           ("report reports/2026-0141-report.pdf", "missing from the database")),
    Attack("provenance_path", "original path edited", _provenance_path, ("cat.jpg", "original path")),
    Attack("provenance_importer", "importer edited", _provenance_importer, ("cat.jpg", "importer 'Bob'")),
    Attack("provenance_time", "import time edited", _provenance_time, ("cat.jpg", "import time")),
    Attack("metadata_edited", "image metadata (EXIF) rewritten", _metadata_edited, ("cat.jpg", "image metadata")),
    Attack("case_number_edited", "case number edited", _case_number, ("case number '2026-9999' in the database",)),
    Attack("case_analyst_edited", "case analyst edited", _case_analyst, ("analyst 'Bob' in the database",)),
    Attack("rejections_deleted", "rejection records deleted", _delete_rejections,
           ("rejected file", "broken.png", "missing from the database")),
    Attack("rejection_edited", "rejection reason edited", _rejection_edited, ("broken.png", "reason 'duplicate'")),
    Attack("tail_deleted_meta_fixed", "last audit entries deleted, meta fixed by hand", _tail_deleted,
           ("cat.jpg", "verdict 'manipulated' in the database, 'not reviewed'")),
    Attack("evidence_row_inserted", "evidence row and file added outside the application", _evidence_inserted,
           ("planted.png", "never imported")),
    Attack("analysis_row_inserted", "analysis row added outside the application", _analysis_inserted,
           ("bird.png", "no audit entry stored")),
    Attack("report_row_inserted", "report row added outside the application", _report_row_inserted,
           ("reports/forged.pdf", "not in the audit trail")),
    Attack("setting_edited", "case setting edited", _setting_edited, ("setting model", "'declip-rn50'")),
    Attack("setting_inserted", "case setting added", _setting_inserted, ("default_threshold", "never set")),
    Attack("payload_rehashed_no_meta", "entry payload edited and chain rehashed, head in meta not updated",
           _payload_rehashed_no_meta, ("history altered",)),
    Attack("payload_rehashed", "entry payload edited, chain rehashed, meta fixed (report still names old head)",
           _payload_rehashed, ("2026-0141-report.pdf", "no longer on the chain")),
    Attack("history_rewritten", "whole history rewritten consistently, report and its traces removed",
           _full_rewrite, ("history rewritten", "receipt.json"), needs_anchor=True),
    Attack("entry_backdated", "review entry backdated a day, chain rehashed, meta fixed", _backdated,
           ("earlier than entry",)),
    Attack("timestamps_swapped", "two entries' times swapped", _timestamps_swapped, ("history altered",)),
    Attack("maps_swapped", "result maps swapped between items, hashes in rows swapped too", _maps_swapped,
           ("cat.jpg", "map SHA-256")),
    Attack("map_files_swapped", "result map files swapped between items", _map_files_swapped,
           ("cat.jpg", "changed after it was stored")),
    Attack("evidence_edited", "evidence file bytes changed", _evidence_edited, ("cat.jpg", "changed after import")),
    Attack("evidence_fifo", "FIFO in place of an evidence file", _evidence_fifo, ("dog.png", "FIFO")),
    Attack("evidence_symlink", "symlink (same bytes) in place of an evidence file", _evidence_symlink,
           ("dog.png", "symbolic link")),
    Attack("evidence_dir", "folder in place of an evidence file", _evidence_dir, ("dog.png", "a folder")),
    Attack("file_planted", "unlisted file added to evidence/", _file_planted, ("evidence/extra.png",)),
    Attack("signature_resigned", "report re-signed with another key", _signature_resigned,
           ("2026-0141-report.pdf", "another key")),
    Attack("signature_edited", "signed content edited", _signature_edited,
           ("2026-0141-report.pdf", "does not match the signed content")),
    Attack("case_id_edited", "case id (uuid) edited", _case_uuid, ("case id", "in the database")),
    Attack("schema_version_edited", "case format version edited", _schema_version, ("case format 2 in the database",)),
    Attack("middle_entry_deleted", "review entry deleted, rest renumbered and rehashed, meta fixed",
           _middle_entry_deleted, ("cat.jpg", "verdict 'manipulated' in the database, 'not reviewed'")),
    Attack("earlier_review_deleted", "the first of two reviews deleted, chain rebuilt, meta fixed",
           _earlier_review_deleted, ("dog.png", "changed notes from 'draft'", "entries were removed")),
    Attack("evidence_repointed", "an item's row pointed at another item's file and hash", _stored_name_repointed,
           ("cat.jpg", "stored file name")),
    Attack("analysis_repointed", "a result moved to another item", _analysis_repointed,
           ("cat.jpg", "evidence id")),
    Attack("signature_deleted", "report signature file deleted", _signature_deleted,
           ("2026-0141-report.pdf", "signature", "missing")),
    Attack("signer_deleted", "recorded public key deleted", _signer_deleted, ("key ana", "missing from the database")),
    Attack("signer_renamed", "recorded signer's name edited", _signer_key_swapped, ("key", "name 'Bob'")),
    Attack("tag_inserted", "analyst's tag added by hand", _tag_inserted, ("cat.jpg", "tag 'cleared'", "never set")),
]


# ------------------------------------------------------------------------------ running
def _detected(problems: list[str], expect: tuple[str, ...]) -> bool:
    return any(all(phrase in p for phrase in expect) for p in problems)


def run_attack(attack: Attack, pristine: Fixture, workdir: Path) -> Outcome:
    f = copy_fixture(pristine, workdir)
    attack.apply(f)
    start = time.perf_counter()
    with Case.open(f.root, read_only=True) as case:
        with_anchor = case.verify(anchors=[f.receipt])
        without = case.verify()
    seconds = time.perf_counter() - start
    texts = [f"[{p.kind}] {p.object}: {p.detail}" for p in with_anchor.problems]
    plain = [f"[{p.kind}] {p.object}: {p.detail}" for p in without.problems]
    return Outcome(attack, not with_anchor.ok and _detected(texts, attack.expect),
                   not without.ok and _detected(plain, attack.expect), texts, seconds)


def run_all(workdir: Path) -> list[Outcome]:
    pristine = build_case(workdir / "pristine")
    outcomes = []
    for i, attack in enumerate(ATTACKS):
        target = workdir / f"{i:02d}-{attack.name}"
        target.mkdir()
        outcomes.append(run_attack(attack, pristine, target))
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="keep the attacked cases in this (new) folder")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every problem verify reported")
    args = parser.parse_args(argv)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="declip-tamper-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ["DECLIP_HOME"] = str(workdir / "home")  # keys made here, never in the user's folder
    try:
        outcomes = run_all(workdir)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    for o in outcomes:
        mark = "detected" if o.detected else "MISSED  "
        alone = "" if o.detected_without_anchor else "  (needs the receipt)" if o.detected else ""
        print(f"{mark}  {o.attack.name:<26} {o.attack.description}{alone}")
        if args.verbose or not o.detected:
            for p in o.problems:
                print(f"            {p}")
    detected = sum(o.detected for o in outcomes)
    alone = sum(o.detected_without_anchor for o in outcomes)
    print(f"{detected} of {len(outcomes)} attacks detected (with the receipt kept outside the case); "
          f"{alone} of {len(outcomes)} without it. verify took {max(o.seconds for o in outcomes) * 1000:.0f} ms "
          "at most per attacked case (both runs).")
    return 0 if detected == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
