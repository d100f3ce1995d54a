"""Content Credentials: signed with a test certificate made here (valid, untrusted), trusted when its
root is given, invalid after the pixels change, none when stripped; a missing manifest proves nothing."""

from __future__ import annotations

import datetime
import io

import c2pa
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

from declip_desktop.forensics.alerts import find_alerts
from declip_desktop.forensics.metadata import read_metadata
from declip_desktop.forensics.provenance import MISSING_STATEMENT, read_c2pa
from forensics_files import jpeg_bytes, texture

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DeCLIP test suite")])


def _usage(**on: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{n: on.get(n, False) for n in names})


@pytest.fixture(scope="module")
def credentials():
    """A throw-away root CA and an ES256 signer it issued (c2pa refuses a bare self-signed end-entity
    certificate, so the test makes the smallest chain it accepts: root + signer)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("Test root")).issuer_name(_name("Test root"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(_usage(digital_signature=True, key_cert_sign=True, crl_sign=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("Test signer")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    chain = cert.public_bytes(pem) + ca.public_bytes(pem)
    private = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return chain, private, ca.public_bytes(pem).decode()


def _sign(credentials, image: bytes, manifest: dict, ingredient: bytes | None = None) -> bytes:
    chain, private, _ = credentials
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, private, None))
    with c2pa.Builder(manifest) as builder:
        if ingredient is not None:
            builder.add_ingredient({"title": "parent.jpg", "relationship": "parentOf"}, "image/jpeg",
                                   io.BytesIO(ingredient))
        out = io.BytesIO()
        builder.sign(signer, "image/jpeg", io.BytesIO(image), out)
    return out.getvalue()


MANIFEST = {
    "claim_generator_info": [{"name": "declip-tests", "version": "1.0"}],
    "title": "generated.jpg",
    "assertions": [{"label": "c2pa.actions", "data": {"actions": [
        {"action": "c2pa.created", "digitalSourceType": TRAINED, "softwareAgent": {"name": "Test Generator"}},
        {"action": "c2pa.edited", "changes": [{"description": "inpainted", "region": [{"type": "spatial",
         "shape": {"type": "rectangle", "unit": "pixel", "origin": {"x": 10, "y": 12}, "width": 30, "height": 20}}]}]},
    ]}}],
}


@pytest.fixture(scope="module")
def signed(credentials, tmp_path_factory):
    parent = _sign(credentials, jpeg_bytes(texture(64, 96, 1), 90),
                   {"claim_generator_info": [{"name": "camera-sim"}], "title": "parent.jpg",
                    "assertions": [{"label": "c2pa.actions", "data": {"actions": [{"action": "c2pa.created",
                     "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"}]}}]})
    data = _sign(credentials, jpeg_bytes(texture(64, 96, 2), 90), MANIFEST, ingredient=parent)
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
