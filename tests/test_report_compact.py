"""The compact layout's length (issue 18: 13 items ≈ 16 pages), its audit summary, the full audit trail
attached to every report, and the analyst's tags on the item pages."""

from __future__ import annotations

import json
import re

import pypdf
import pytest
from PIL import Image

from declip_desktop.cases import Case
from declip_desktop.cases.examiner import set_examiner
from declip_desktop.cases.tags import change_marks
from declip_desktop.reports import build_report
from declip_desktop.reports.audit_summary import AUDIT_ATTACHMENT
from tests.test_reports import CARD, _map, _photo

ITEMS = 13


@pytest.fixture(scope="module", autouse=True)
def _qt_app(qapp):
    return qapp


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("compact")
    src = root / "src"
    src.mkdir()
    for i in range(ITEMS):
        Image.fromarray(_photo(96, 72, i)).save(src / f"item_{i:02d}.png")
    case = Case.create(root / "case", number="2026-0200", title="Thirteen photos", analyst="Dana Reyes",
                       description="Photos handed over by the requester on a USB stick.")
    evidence = case.import_paths(sorted(src.iterdir())).imported
    for k, ev in enumerate(evidence):
        case.store_result(ev.id, model_name=CARD["name"], model_sha256=CARD["sha256"],
                          parameters={"model_card": CARD}, score=0.1 + k / 20,
                          prob_map=_map(ev.height, ev.width, [(10, 30, 10, 40, 0.9)]), device="cpu",
                          seconds=0.1, started="2026-11-28T10:00:00Z", finished="2026-11-28T10:00:01Z")
        case.set_review(ev.id, verdict="inconclusive" if k % 3 else "authentic", notes=f"looked at {k}")
    set_examiner(case, name="Dana Reyes", role="Examiner", organisation="Northfield Forensic Lab",
                 requester="DI Sam Okafor", reference="NP-2026-88", question="Were any of these photos inpainted?")
    change_marks(case, evidence[4].id, add=["ask requester", "face"], bookmarked=True)
    compact = build_report(case, layout="compact")
    full = build_report(case, layout="full")
    yield case, evidence, compact, full
    case.close()


def _text(page) -> str:
    return re.sub(r"\s+", " ", page.extract_text() or "")


def test_thirteen_items_make_sixteen_compact_pages(built):
    case, evidence, compact, full = built
    reader = pypdf.PdfReader(str(compact.path))
    assert len(reader.pages) == compact.stats.pages == ITEMS + 3, [s for s in compact.stats.sections if not s.level]
    pages = {s.title: s.page for s in compact.stats.sections}
    assert pages["Summary of results"] == 1 and pages["Evidence items"] == 2
    assert pages["Method and limitations"] == ITEMS + 2
    assert pages["Examiner's declaration"] == pages["Appendix A — Audit trail"] == ITEMS + 3
    cover = _text(reader.pages[0])
    assert all(ev.original_name in cover for ev in evidence)  # every summary row on the cover
    assert "Appendix B" not in cover  # no hash annex: the compact pages print every hash in full
    method = _text(reader.pages[pages["Method and limitations"] - 1])
    # Methods this case did not use are not described (they pushed the method section onto two pages).
    assert "Stability under re-compression" not in method and "Agreement across models" not in method
    # The full layout keeps the one-line-per-entry table and the annex.
    assert {"Appendix A — Audit trail", "Appendix B — Hash annex"} <= {s.title for s in full.stats.sections}


def test_the_compact_audit_appendix_counts_entries_per_action_and_states_the_head(built):
    from declip_desktop.cases.anchors import PDF_HEAD_KEY

    case, evidence, compact, _ = built
    reader = pypdf.PdfReader(str(compact.path))
    last = _text(reader.pages[-1])
    count, head = reader.metadata[PDF_HEAD_KEY].split(":")
    # the head whole, in one run of text (not shortened, not split)
    assert f"the case's audit trail had {count} entries; the SHA-256 of the last one is {head}" in last
    assert head in [e.hash for e in case.audit_entries()]
    imported = re.search(r"evidence\.imported evidence imported \(hashed on import\) (\d+)", last)
    reviews = re.search(r"review\.changed verdict, notes or threshold changed (\d+)", last)
    assert imported and int(imported.group(1)) == ITEMS
    assert reviews and int(reviews.group(1)) == ITEMS
    assert AUDIT_ATTACHMENT in last and "declip case verify" in last


@pytest.mark.parametrize("which", ["compact", "full"])
def test_every_report_carries_the_full_audit_trail_as_an_attachment(built, which):
    case, evidence, compact, full = built
    report = compact if which == "compact" else full
    reader = pypdf.PdfReader(str(report.path))
    attached = reader.attachments
    assert list(attached) == [AUDIT_ATTACHMENT]
    doc = json.loads(attached[AUDIT_ATTACHMENT][0])
    by_seq = {e.seq: e for e in case.audit_entries()}
    assert doc["audit_count"] == len(doc["entries"]) and doc["entries"]
    for entry in doc["entries"]:  # whole and unshortened: the values and the chain hashes the case holds
        mine = by_seq[entry["seq"]]
        assert entry["hash"] == mine.hash and entry["prev_hash"] == mine.prev_hash
        assert entry["details"] == json.loads(json.dumps(mine.details))
    assert doc["entries"][-1]["hash"] == doc["audit_head"]
    assert any(ev.sha256 == e["details"].get("sha256") for ev in evidence for e in doc["entries"])


def test_tags_and_bookmark_are_on_the_item_pages(built):
    case, evidence, compact, full = built
    tagged = evidence[4]
    for report, per_item, offset in ((compact, 1, 0), (full, 2, 1)):
        first = {s.title: s.page for s in report.stats.sections}["Evidence items"]
        reader = pypdf.PdfReader(str(report.path))
        page = _text(reader.pages[first - 1 + 4 * per_item + offset])
        assert tagged.original_name in page and "★ bookmarked · ask requester, face" in page
        other = _text(reader.pages[first - 1 + 3 * per_item + offset])
        assert "bookmarked" not in other
