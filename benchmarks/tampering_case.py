"""The finished case the tampering catalogue attacks (benchmarks/tampering.py), and the forger's
tools: rechaining the audit log after editing it, the way someone who knows the format would.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from declip_desktop.cases import Case, audit  # noqa: E402
from declip_desktop.cases import anchors as case_anchors  # noqa: E402
from declip_desktop.cases import signing  # noqa: E402

PHOTOS = {"cat.jpg": 0.982, "dog.png": 0.41, "bird.png": None, "tree.png": "failed"}
MAP_SHAPE = (40, 48)


@dataclass
class Fixture:
    root: Path  # the case folder (a copy, for one attack)
    ids: dict[str, int]  # evidence id by file name
    analyses: dict[str, int]  # analysis id by file name (successful ones)
    report: Path  # the registered PDF report (inside the case)
    receipt: Path  # a signed anchor receipt, kept outside the case
    extra: dict = field(default_factory=dict)

    def db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.root / "case.sqlite", isolation_level=None)
        conn.execute("PRAGMA foreign_keys = OFF")  # a forger does not honour our constraints
        return conn

    def sql(self, statement: str, *params) -> None:
        conn = self.db()
        try:
            conn.execute(statement, params)
        finally:
            conn.close()

    def evidence_path(self, name: str) -> Path:
        conn = self.db()
        try:
            stored = conn.execute("SELECT stored_name FROM evidence WHERE id = ?", (self.ids[name],)).fetchone()[0]
        finally:
            conn.close()
        return self.root / "evidence" / stored

    def map_path(self, name: str) -> Path:
        conn = self.db()
        try:
            rel = conn.execute("SELECT map_file FROM analyses WHERE id = ?", (self.analyses[name],)).fetchone()[0]
        finally:
            conn.close()
        return self.root / rel


# ------------------------------------------------------------------------------ the case
def _photo(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, quality=95) if path.suffix == ".jpg" else Image.fromarray(arr).save(path)
    return path


def _pdf(path: Path, head: str, count: int, case_uuid: str) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.add_metadata({"/Title": "Test report", case_anchors.PDF_HEAD_KEY: f"{count}:{head}",
                         case_anchors.PDF_CASE_KEY: case_uuid})
    with open(path, "wb") as fh:
        writer.write(fh)


def build_case(workdir: Path) -> Fixture:
    """A finished case in workdir/case and a signed receipt in workdir/receipt.json.

    Needs DECLIP_HOME set to a scratch folder (the analyst's key is made there)."""
    src = workdir / "photos"
    src.mkdir(parents=True)
    for i, name in enumerate(PHOTOS):
        _photo(src / name, seed=i)
    broken = src / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # a PNG signature and nothing else
    key = signing.create_key("ana")
    signer = signing.load_key("ana")
    ids: dict[str, int] = {}
    analyses: dict[str, int] = {}
    with Case.create(workdir / "case", number="2026-0141", title="Tampering", analyst="Ana") as case:
        report = case.import_paths([src])
        assert len(report.imported) == 4 and len(report.rejected) == 1, report
        ids = {e.original_name: e.id for e in report.imported}
        for i, (name, score) in enumerate(PHOTOS.items()):
            if score is None:
                continue
            kw = dict(model_name="declip-vit", model_sha256="ab" * 32, parameters={"fast": False},
                      started="2026-12-01T20:25:10+01:00", finished="2026-12-01T20:25:11+01:00")
            if score == "failed":
                case.store_failure(ids[name], error="decoder exploded", device="cpu", **kw)
                continue
            prob = np.full(MAP_SHAPE, i / 10, np.float32)
            prob[0, 0] = float(score)
            a = case.store_result(ids[name], score=float(score), prob_map=prob, device="cpu", seconds=0.4, **kw)
            analyses[name] = a.id
        case.set_review(ids["cat.jpg"], verdict="manipulated", threshold=0.6, notes="sky replaced")
        case.set_review(ids["dog.png"], notes="draft")  # two reviews of one item: the second replaces
        case.set_review(ids["dog.png"], notes="final")  # "draft", which its entry records as the old value
        case.set_setting("model", "declip-vit")
        head, count = case.audit_head()
        pdf = case.path / "reports" / "2026-0141-report.pdf"
        _pdf(pdf, head, count, case.info.uuid)
        os.chmod(pdf, 0o444)
        case.register_report(pdf, printed_head=(head, count))
        case_anchors.sign_report(case, pdf, signer)
        receipt = case_anchors.make_receipt(case, signer)
    receipt_path = workdir / "receipt.json"
    receipt_path.write_text(json.dumps(receipt, indent=2))
    return Fixture(workdir / "case", ids, analyses, pdf, receipt_path, {"key": key})


def copy_fixture(pristine: Fixture, dest: Path) -> Fixture:
    shutil.copytree(pristine.root, dest / "case", symlinks=True)
    shutil.copy(pristine.receipt, dest / "receipt.json")
    return Fixture(dest / "case", dict(pristine.ids), dict(pristine.analyses),
                   dest / "case" / pristine.report.relative_to(pristine.root), dest / "receipt.json",
                   dict(pristine.extra))


# ------------------------------------------------------------------------------ forger's tools
def writable(path: Path) -> Path:
    os.chmod(path, 0o644)
    return path


def rehash_chain(conn: sqlite3.Connection) -> None:
    """Recompute every entry's hash (and prev_hash) in seq order and fix `meta`: what a forger
    who knows the format does after editing entries."""
    prev = audit.GENESIS
    rows = conn.execute("SELECT seq, ts, actor, os_user, action, object, evidence_id, details FROM audit "
                        "ORDER BY seq").fetchall()
    for seq, ts, actor, user, action, obj, eid, details in rows:
        digest = audit.entry_hash(seq, ts, actor, user or "", action, obj, eid, details, prev)
        conn.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
        prev = digest
    conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", (prev,))
    conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_count'", (str(len(rows)),))


def renumber(conn: sqlite3.Connection) -> None:
    rows = [r[0] for r in conn.execute("SELECT seq FROM audit ORDER BY seq")]
    for new, old in enumerate(rows, start=1):
        conn.execute("UPDATE audit SET seq = ? WHERE seq = ?", (-new, old))
    conn.execute("UPDATE audit SET seq = -seq")


def edit_details(conn: sqlite3.Connection, where: str, change: Callable[[dict], None], *params) -> None:
    for seq, details in conn.execute(f"SELECT seq, details FROM audit WHERE {where}", params).fetchall():
        d = json.loads(details)
        change(d)
        conn.execute("UPDATE audit SET details = ? WHERE seq = ?", (audit.canonical(d), seq))
