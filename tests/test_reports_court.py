"""Court-ready reports (issue 18): examiner fields and declaration, DEMO/DRAFT on every page, chain
of custody, the audit appendix and hash annex, table of contents and outline, compact layout.

One small case (two items: one reviewed, one not; a demo card on one) and one report per layout,
read back with pypdf.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pypdf
import pytest
from PIL import Image

from declip_desktop.cases import Case, CaseError
from declip_desktop.cases.case import DB_NAME
from declip_desktop.cases.examiner import DEFAULT_DECLARATION, get_examiner, set_examiner
from declip_desktop.cli import main
from declip_desktop.reports import build_report
from tests.test_reports import CARD, _map, _photo

DEMO_CARD = {**CARD, "name": "starter", "sha256": "d" * 64, "kind": "starter", "demo": True,
             "label": "demo model — not for casework"}
FIELDS = dict(name="Dana Reyes", role="Senior forensic examiner", organisation="Northfield Forensic Lab",
              requester="DI Sam Okafor", reference="NP-2026-88", question="Was photo B altered by inpainting?")


@pytest.fixture(scope="module", autouse=True)
def _qt_app(qapp):
    return qapp


@pytest.fixture(scope="module")
def court_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("court")
    src = root / "source folder"
    src.mkdir()
    Image.fromarray(_photo(160, 120, 1)).save(src / "A.jpg", quality=90)
    Image.fromarray(_photo(120, 160, 2)).save(src / "B.png")
    with Case.create(root / "case", number="2026-0141", title="Harbour", analyst="Dana Reyes") as case:
        a, b = case.import_paths([src / "A.jpg", src / "B.png"]).imported
        for ev, card, score in ((a, CARD, 0.2), (b, DEMO_CARD, 0.9)):
            case.store_result(ev.id, model_name=card["name"], model_sha256=card["sha256"],
                              parameters={"model_card": card}, score=score,
                              prob_map=_map(ev.height, ev.width, [(10, 40, 10, 60, 0.9)]), device="cpu",
                              seconds=0.1, started="2026-11-28T10:00:00Z", finished="2026-11-28T10:00:01Z")
        case.set_review(a.id, verdict="authentic", notes="no trace")
        assert main(["case", "set", str(case.path), *sum(([f"--{k if k != 'name' else 'examiner'}", v]
                                                        for k, v in FIELDS.items()), [])]) == 0
    return root / "case"


@pytest.fixture(scope="module")
def reports(court_case):
    with Case.open(court_case) as case:
        full = build_report(case)
        compact = build_report(case, layout="compact")
    return full, compact


def _pages(path: Path) -> list[str]:
    return [re.sub(r"\s+", " ", p.extract_text() or "") for p in pypdf.PdfReader(str(path)).pages]


def test_examiner_fields_are_audit_logged_replayed_and_printed_in_the_declaration(court_case, reports):
    with Case.open(court_case) as case:
        assert get_examiner(case).name == "Dana Reyes"
        entry = [e for e in case.audit_entries() if e.object == "setting:examiner"][-1]
        assert entry.details["new"]["reference"] == "NP-2026-88"
        assert case.verify().ok
    pages = _pages(reports[0].path)
    declaration = next(p for p in pages if "Examiner's declaration Examiner" in p)
    for value in FIELDS.values():
        assert value in declaration
    assert "I, Dana Reyes, Senior forensic examiner at Northfield Forensic Lab" in declaration
    assert "Date:" in declaration and "Signature:" in declaration
    assert "Question asked Was photo B altered by inpainting?" in pages[0]  # and on the cover


def test_a_hand_edited_examiner_setting_is_flagged_by_verify(court_case, tmp_path):
    import shutil

    copy = tmp_path / "case"
    shutil.copytree(court_case, copy)
    conn = sqlite3.connect(copy / DB_NAME)
    conn.execute("UPDATE settings SET value = json_set(value, '$.name', 'Someone Else') WHERE key = 'examiner'")
    conn.commit()
    conn.close()
    with Case.open(copy) as case:
        report = case.verify()
        assert not report.ok and any("examiner" in p.detail for p in report.problems)
        with pytest.raises(Exception, match="does not match its audit trail"):
            build_report(case)


def test_bad_examiner_input_is_refused_and_changes_nothing(court_case, tmp_path, capsys):
    with Case.open(court_case) as case:
        before = len(case.audit_entries())
        with pytest.raises(CaseError, match=r"\{lab\}.*not a field"):
            set_examiner(case, declaration="I, {name}, of {lab}")
        with pytest.raises(CaseError, match="control characters"):
            set_examiner(case, name="Dana\x07")
        set_examiner(case, name="Dana Reyes")  # unchanged: no new entry
        assert len(case.audit_entries()) == before and get_examiner(case).declaration == DEFAULT_DECLARATION
    bad = tmp_path / "decl.txt"
    bad.write_bytes(b"\xff\xfe not utf-8")
    assert main(["case", "set", str(court_case), "--declaration-file", str(bad)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_demo_and_draft_banner_on_every_page_and_none_when_final(reports, court_case, tmp_path):
    for built in reports:
        pages = _pages(built.path)
        assert all("DEMO MODEL — NOT FOR CASEWORK" in p and "DRAFT — 1 item(s) not reviewed" in p for p in pages)
    src = tmp_path / "c.png"
    Image.fromarray(_photo(64, 48, 3)).save(src)
    with Case.create(tmp_path / "final", number="F-1", title="final", analyst="a") as case:
        ev = case.import_paths([src]).imported[0]
        case.store_result(ev.id, model_name=CARD["name"], model_sha256=CARD["sha256"],
                          parameters={"model_card": CARD}, score=0.1, prob_map=_map(48, 64, []), device="cpu",
                          seconds=0.1, started="s", finished="f")
        case.set_review(ev.id, verdict="authentic")
        text = " ".join(_pages(build_report(case, layout="compact").path))
    assert "DEMO MODEL" not in text and "DRAFT" not in text


def test_chain_of_custody_is_on_each_items_page(reports, court_case):
    with Case.open(court_case) as case:
        evidence = case.evidence_list()
    full, compact = (_pages(b.path) for b in reports)
    first = {s.title: s.page for s in reports[1].stats.sections}["Evidence items"]  # 2: the summary is on the cover
    for k, ev in enumerate(evidence):
        for page in (full[3 + 2 * k], compact[first - 1 + k]):  # the details page; the compact item page
            flat = page.replace(" ", "")
            assert ev.original_path.replace(" ", "") in flat.replace("\u200b", "")
            assert ev.sha256 in flat and ev.md5 in flat
            assert ev.metadata["file_times"]["modified"].replace(" ", "") in flat
            assert f"{ev.imported_at}by{ev.imported_by}".replace(" ", "") in flat


def test_audit_table_keeps_tokens_whole_and_the_annex_holds_full_hashes(reports, court_case):
    with Case.open(court_case) as case:
        evidence = case.evidence_list()
        n_entries = len(case.audit_entries())
    reader = pypdf.PdfReader(str(reports[0].path))
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    appendix = text[text.index("Appendix A — Audit trail\nEntries".replace(" ", "\t")):]
    table, annex = appendix.split("Appendix\tB\t—\tHash\tannex\nEvery", 1)
    # Qt writes each table cell as its own text run: a cell that wrapped would come out in pieces.
    cells = [c.strip() for c in table.splitlines()]
    times = [c for c in cells if re.fullmatch(r"\d{4}-\d\d-\d\d\s\d\d:\d\d:\d\dZ", c)]
    actions = [c for c in cells if re.fullmatch(r"(case|evidence|analysis|review|setting|report)\.[a-z_]+", c)]
    shown = int(re.search(r"oldest\sfirst\s\((\d+)\sentries", table).group(1))
    assert len(times) == len(actions) == shown and 7 <= shown <= n_entries
    assert not re.search(r"[0-9a-f]{13,}", table)  # no hash printed whole (or in pieces) in the table
    annex_lines = [c.strip() for c in annex.splitlines()]
    for ev in evidence:  # every full hash on one line of the monospace annex
        assert ev.sha256 in annex_lines and ev.md5 in annex_lines
    from declip_desktop.cases.anchors import PDF_HEAD_KEY

    printed_count, printed_head = reader.metadata[PDF_HEAD_KEY].split(":")
    assert printed_head in annex_lines and f"had\t{printed_count}\tentries" in table


def test_table_of_contents_matches_the_outline(reports):
    for built in reports:
        reader = pypdf.PdfReader(str(built.path))
        outline = reader.outline
        top = [(o.title, reader.get_destination_page_number(o) + 1) for o in outline if not isinstance(o, list)]
        children = next(o for o in outline if isinstance(o, list))
        assert len(children) == 2  # one bookmark per evidence item
        cover = re.sub(r"\s+", " ", reader.pages[0].extract_text())
        ends = {t: top[i + 1][1] - 1 for i, (t, _) in enumerate(top[:-1])}
        toc = " ".join(f"{t}{f' (2, pages {p}–{ends[t]})' if t == 'Evidence items' else ''} {p}" for t, p in top)
        assert f"Contents {toc}" in cover
        for title, page in top:  # each bookmark lands on its section
            word = {"Cover and table of contents": "Contents", "Summary of results": "Summary",
                    "Evidence items": "Evidence 1 of 2"}.get(title, title)
            assert word in re.sub(r"\s+", " ", reader.pages[page - 1].extract_text()), title


def test_compact_layout_is_one_page_per_item(reports):
    full, compact = reports

    def item_pages(built):  # from the first item's page to the method section
        pages = {s.title: s.page for s in built.stats.sections}
        return pages["Method and limitations"] - pages["Evidence items"]

    assert (item_pages(full), item_pages(compact)) == (4, 2)
    pages = _pages(compact.path)
    # the compact cover also holds the summary, so the items start on page 2
    assert "Summary of results" in pages[0] and "A.jpg" in pages[0] and "B.png" in pages[0]
    assert "Evidence 1 of 2" in pages[1] and "Evidence 2 of 2" in pages[2] and "Method and limitations" in pages[3]
    with pytest.raises(Exception, match="unknown report layout 'tiny'"):
        with Case.open(full.path.parent.parent) as case:
            build_report(case, layout="tiny")


def test_pinned_view_pages_shift_the_toc_outline_and_summary_page_numbers(court_case, tmp_path):
    """Pinned views add pages after an item; every later page number must follow, in both layouts."""
    import shutil

    from declip_desktop.pins import pin

    copy = tmp_path / "case"
    shutil.copytree(court_case, copy)
    with Case.open(copy) as case:
        first = case.evidence_list()[0].id
        for name in ("ela", "noise_level", "noise_residual", "luminance_gradient"):  # two pages of pins
            pin(case, first, "view", name, f"look at {name}")
        for layout in ("full", "compact"):
            built = build_report(case, layout=layout)
            reader = pypdf.PdfReader(str(built.path))
            pages = [re.sub(r"\s+", " ", p.extract_text() or "") for p in reader.pages]
            items = [s for s in built.stats.sections if s.level == 1]
            assert "Evidence 1 of 2" in pages[items[0].page - 1] and "Evidence 2 of 2" in pages[items[1].page - 1]
            assert items[1].page - items[0].page == (2 if layout == "full" else 1) + 2
            summary = pages[{s.title: s.page for s in built.stats.sections}["Summary of results"] - 1]
            table = summary.rsplit("Summary of results", 1)[1] if layout == "compact" else summary.split("Summary", 1)[1]
            assert re.search(rf"B\.png .* {items[1].page}\b", table)  # the second item's row names its page
            method = next(s.page for s in built.stats.sections if s.title == "Method and limitations")
            assert "Method and limitations" in pages[method - 1] and len(pages) == built.stats.pages
