"""Content Credentials: signed with a test certificate made here (valid, untrusted), trusted when its
root is given, invalid after the pixels change, none when stripped; a missing manifest proves nothing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from declip_desktop.forensics.alerts import find_alerts
from declip_desktop.forensics.metadata import read_metadata
from declip_desktop.forensics.provenance import MISSING_STATEMENT, read_c2pa
from tests.c2pa_files import MANIFEST, TRAINED, make_credentials, sign
from tests.forensics_files import jpeg_bytes, texture


@pytest.fixture(scope="module")
def credentials():
    return make_credentials()


@pytest.fixture(scope="module")
def signed(credentials, tmp_path_factory):
    parent = sign(credentials, jpeg_bytes(texture(64, 96, 1), 90),
                   {"claim_generator_info": [{"name": "camera-sim"}], "title": "parent.jpg",
                    "assertions": [{"label": "c2pa.actions", "data": {"actions": [{"action": "c2pa.created",
                     "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"}]}}]})
    data = sign(credentials, jpeg_bytes(texture(64, 96, 2), 90), MANIFEST, ingredient=parent)
    path = tmp_path_factory.mktemp("c2pa") / "signed.jpg"
    path.write_bytes(data)
    return path


def test_signed_with_a_test_certificate_is_valid_but_untrusted(signed):
    r = read_c2pa(signed, "JPEG")
    assert r["state"] == "valid" and r["signer_untrusted"] and r["failure_codes"] == []
    assert "not on a trust list" in r["statement"]
    assert r["active"]["signer"] == "Test signer" and r["active"]["claim_generator"].startswith("declip-tests 1.0")
    kinds = [(a["action"], a["digital_source_type"]) for a in r["actions"]]
    assert ("c2pa.created", TRAINED) in kinds
    assert r["actions"][0]["software_agent"] == "Test Generator"
    assert r["regions"] == [{"type": "rectangle", "unit": "pixel", "x": 10, "y": 12, "width": 30, "height": 20,
                             "description": "inpainted"}]
    (parent,) = r["ingredients"]
    assert parent["title"] == "parent.jpg" and parent["relationship"] == "parentOf"
    assert parent["claim_generator"].startswith("camera-sim")
    assert r["manifest_json"] and r["active"]["label"] in r["manifest_json"]
    codes = [a.code for a in find_alerts(read_metadata(signed), r)]
    assert "c2pa_generative" in codes and "c2pa_invalid" not in codes
    gen = next(a for a in find_alerts({}, r) if a.code == "generator_signature")
    assert gen.evidence[0]["tag"].startswith("C2PA")


def test_trusted_when_the_root_is_supplied(signed, credentials):
    assert read_c2pa(signed, "JPEG", trust_anchors_pem=credentials[2])["state"] == "trusted"


def test_pixels_altered_after_signing_is_invalid(signed, tmp_path):
    data = bytearray(signed.read_bytes())
    data[-200] ^= 0x5A  # inside the entropy-coded image data, far from the manifest (APP11)
    bad = tmp_path / "altered.jpg"
    bad.write_bytes(bytes(data))
    r = read_c2pa(bad, "JPEG")
    assert r["state"] == "invalid"
    assert "assertion.dataHash.mismatch" in r["failure_codes"]
    alert = next(a for a in find_alerts({}, r) if a.code == "c2pa_invalid")
    assert "assertion.dataHash.mismatch" in alert.evidence[0]["value"]


def test_stripped_manifest_is_none_and_proves_nothing(signed, tmp_path):
    stripped = tmp_path / "stripped.jpg"
    Image.open(signed).save(stripped, "JPEG", quality=90)  # re-encoding drops the APP11 segments
    r = read_c2pa(stripped, "JPEG")
    assert r["state"] == "none" and r["statement"] == MISSING_STATEMENT and "proves nothing" in r["statement"]
    assert not [a for a in find_alerts({}, r) if a.code.startswith("c2pa")]


def test_damaged_manifest_and_unsupported_format_never_raise(signed, tmp_path):
    data = bytearray(signed.read_bytes())
    start = data.index(b"jumb")  # corrupt the manifest store itself
    data[start + 40:start + 240] = bytes(200)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(bytes(data))
    r = read_c2pa(broken, "JPEG")
    assert r["state"] in ("invalid", "error")
    bmp = tmp_path / "x.bmp"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(bmp)
    assert read_c2pa(bmp, "BMP")["state"] == "none"


def test_case_trust_anchors_make_imports_trusted_and_bad_pem_is_refused(signed, credentials, tmp_path, capsys):
    from declip_desktop.cases import Case
    from declip_desktop.cli import main
    from declip_desktop.examination import load_examination

    case_dir = tmp_path / "case"
    assert main(["case", "create", str(case_dir), "--number", "1", "--title", "t", "--analyst", "Ana"]) == 0
    assert main(["case", "import", str(case_dir), str(signed)]) == 0
    with Case.open(case_dir) as case:
        assert load_examination(case, 1).c2pa["state"] == "valid"
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot*base64\n-----END CERTIFICATE-----\n")
    capsys.readouterr()
    assert main(["case", "examine", str(case_dir), "--trust-anchors", str(bad)]) == 2
    assert "not valid base64" in capsys.readouterr().err
    roots = tmp_path / "roots.pem"
    roots.write_text(credentials[2])
    assert main(["case", "examine", str(case_dir), "--trust-anchors", str(roots)]) == 0
    assert "1 trust anchor(s) kept" in capsys.readouterr().out
    with Case.open(case_dir) as case:
        assert load_examination(case, 1).c2pa["state"] == "trusted"
    fresh = tmp_path / "fresh.jpg"
    fresh.write_bytes(sign(credentials, jpeg_bytes(texture(48, 64, 7), 90), MANIFEST))
    assert main(["case", "import", str(case_dir), str(fresh)]) == 0
    with Case.open(case_dir) as case:
        assert load_examination(case, 2).c2pa["state"] == "trusted"  # the kept roots apply at import
