"""PAdES-signed reports (issue 18 item 7): the analyst's Ed25519 key signs inside the PDF, pyHanko
validates it, `declip case verify` checks registered reports' signatures, and a changed byte or
bytes appended after signing break it."""

from __future__ import annotations

import os
import shutil

import pytest
from PIL import Image

from declip_desktop.cases import Case, signing
from declip_desktop.cases.pdf_signing import check_pdf
from declip_desktop.cli import main
from declip_desktop.reports import build_report
from tests.test_reports import CARD, _map, _photo


@pytest.fixture
def signed(tmp_path, isolated_home, qapp):
    src = tmp_path / "a.png"
    Image.fromarray(_photo(64, 48, 5)).save(src)
    signing.create_key("dana")
    with Case.create(tmp_path / "case", number="S-1", title="signed", analyst="Dana Reyes") as case:
        ev = case.import_paths([src]).imported[0]
        case.store_result(ev.id, model_name=CARD["name"], model_sha256=CARD["sha256"],
                          parameters={"model_card": CARD}, score=0.3, prob_map=_map(48, 64, []), device="cpu",
                          seconds=0.1, started="s", finished="f")
        built = build_report(case, out_path=tmp_path / "copy.pdf", signer=signing.load_key("dana"))
    return tmp_path / "case", built


def _flip(path, where):
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[where] ^= 0x01
    path.write_bytes(bytes(data))


def test_signed_report_validates_and_verify_names_the_key(signed, capsys):
    case_dir, built = signed
    [sig] = check_pdf(built.copy)
    assert sig.problem is None and "Dana Reyes" in sig.signer
    assert sig.fingerprint == signing.load_key("dana").fingerprint
    with Case.open(case_dir, read_only=True) as case:
        report = case.verify(anchors=[built.copy])
    assert report.ok, report.problems
    assert any("PDF signature by" in s and "recorded in this case" in s for s in report.signed_by)
    assert main(["case", "verify", str(case_dir)]) == 0


@pytest.mark.parametrize("where", ["first_page", "signature_bytes", "appended"])
def test_a_changed_byte_breaks_the_signature(signed, tmp_path, where):
    case_dir, built = signed
    bad = tmp_path / "bad.pdf"
    shutil.copyfile(built.copy, bad)
    data = bad.read_bytes()
    if where == "appended":
        bad.write_bytes(data + b"\n% appended after signing\n")
    else:
        at = data.index(b"/Contents <") + 40 if where == "signature_bytes" else data.index(b"stream") + 40
        _flip(bad, at)
    [sig] = check_pdf(bad)
    assert sig.problem is not None
    # The same change to the copy kept in the case: verify reports the report and its signature.
    kept = built.path
    os.chmod(kept, 0o644)
    shutil.copyfile(bad, kept)
    with Case.open(case_dir, read_only=True) as case:
        kinds = {p.kind for p in case.verify().problems}
    assert {"report_changed", "pdf_signature_invalid"} <= kinds
