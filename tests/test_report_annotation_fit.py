"""The details page of an item with many annotations and a calibrated reading (which lengthens
the chain-of-custody block): the annotation table stops above the verdict, never over it."""

from __future__ import annotations

import re

import pypdf

from declip_desktop.cases import Case
from declip_desktop.cases import calibration as cal
from declip_desktop.cases.annotations import add_annotation
from tests.annotation_util import analysed_case


def _y_of(page, needle: str) -> float:
    found: list[float] = []

    def visit(text, cm, tm, font, size):  # noqa: ANN001
        if needle in " ".join(text.split()):
            found.append(tm[5] * cm[3] + cm[5])

    page.extract_text(visitor_text=visit)
    assert found, needle
    return found[0]


def test_many_annotations_stop_above_the_verdict(tmp_path, qapp):
    from declip_desktop.reports import build_report

    d = analysed_case(tmp_path, count=3)
    with Case.open(d, analyst="Ana") as case:
        cal.calibrate(case, [1, 2], resamples=100)
        for i in range(20):
            add_annotation(case, 3, "box", {"box": [i * 4, i * 3, 8, 8]}, f"region {i} " + "W" * 40)
        built = build_report(case, tmp_path / "r.pdf")
    pages = pypdf.PdfReader(str(built.path)).pages
    details = next(p for p in pages if "Analyst's annotations" in " ".join((p.extract_text() or "").split()))
    text = " ".join(details.extract_text().split())
    assert "Calibrated" in text and "more annotation(s)" in text
    more, verdict = _y_of(details, "more annotation(s)"), _y_of(details, "Analyst's verdict")
    assert more - verdict > 10  # PDF points, y grows upwards: the count line sits above the verdict block


def test_the_compact_page_states_the_reading_and_the_annotation_count(tmp_path, qapp):
    from declip_desktop.reports import build_report

    d = analysed_case(tmp_path, count=3)
    with Case.open(d, analyst="Ana") as case:
        cal.calibrate(case, [1, 2], resamples=100)
        for i in range(6):
            add_annotation(case, 3, "box", {"box": [i * 4, i * 3, 8, 8]}, "W" * 60 if i == 0 else f"r{i}")
        built = build_report(case, tmp_path / "c.pdf", layout="compact")
    text = " ".join(" ".join((p.extract_text() or "").split()) for p in pypdf.PdfReader(str(built.path)).pages)
    assert re.search(r"Calibrated above \d of 2 references; \d+ region\(s\) at 0\.\d{4}", text)  # short reading
    assert "6 (the first 3; all in the full layout): A1 " + "W" * 23 + "…" in text
