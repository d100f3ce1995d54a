"""Annotation labels and notes as an adversary writes them: controls that would forge lines,
reorder text (bidi overrides) or hide it are refused; unicode is kept; the CLI's text and JSON
output never carry them raw to the terminal."""

from __future__ import annotations

import json
import sqlite3

import pytest

from declip_desktop.cases import Case
from declip_desktop.cases.annotations import AnnotationError, add_annotation, annotations
from declip_desktop.cli import main
from tests.annotation_util import analysed_case


@pytest.fixture
def case_dir(tmp_path):
    return analysed_case(tmp_path)


@pytest.mark.parametrize("label", ["right\u202eexe.jpg", "a\u2066b", "del\x7f", "c1\x85x", "line\u2028break",
                                   "two\nlines", "tab\there", "esc\x1b[31m"])
def test_labels_with_hidden_or_reordering_characters_are_refused(case_dir, label):
    with Case.open(case_dir) as case:
        before = len(case.audit_entries())
        with pytest.raises(AnnotationError, match=r"control characters \(U\+"):
            add_annotation(case, 1, "box", {"box": [0, 0, 5, 5]}, label)
        assert annotations(case) == [] and len(case.audit_entries()) == before


def test_notes_keep_line_breaks_but_not_bidi_controls(case_dir):
    with Case.open(case_dir) as case:
        made = add_annotation(case, 1, "box", {"box": [0, 0, 5, 5]}, "Ciel cloné ☁ 名前", "first\r\nsecond\tcol")
        assert made.label == "Ciel cloné ☁ 名前" and made.note == "first\nsecond\tcol"
        with pytest.raises(AnnotationError, match="U\\+202E"):
            add_annotation(case, 1, "box", {"box": [0, 0, 5, 5]}, "x", "note \u202e reversed")


def test_cli_json_and_text_never_print_raw_controls(case_dir, capsys):
    with Case.open(case_dir) as case:
        add_annotation(case, 1, "box", {"box": [0, 0, 5, 5]}, "ok", "first line\nsecond line")
    con = sqlite3.connect(case_dir / "case.sqlite")  # as a hand edit or an older version could leave it
    with con:
        con.execute("UPDATE annotations SET label = ? WHERE id = 1", ("x\u202ey\x9b",))
    con.close()
    assert main(["case", "annotate", str(case_dir), "1", "--json"]) == 0
    out = capsys.readouterr().out
    assert "\u202e" not in out and "\x9b" not in out
    record = json.loads(out)[0]
    assert record["label"] == "x\u202ey\x9b" and record["note"] == "first line\nsecond line"
    assert main(["case", "annotate", str(case_dir), "1"]) == 0
    text = capsys.readouterr().out
    assert "\u202e" not in text and "label 'x\\u202ey\\x9b'" in text
    assert "      note: first line\n            second line\n" in text


def test_an_unknown_evidence_id_says_what_to_do(case_dir, capsys):
    assert main(["case", "annotate", str(case_dir), "99", "--box", "0,0,5,5", "--label", "x"]) == 2
    assert "no evidence with ID 99 in this case; nothing was annotated or listed. `declip case status DIR`" in \
        capsys.readouterr().err
