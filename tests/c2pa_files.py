"""Signing test images with Content Credentials: a throw-away root CA and signer made in the test."""

from __future__ import annotations

import datetime
import io

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DeCLIP test suite")])


def _usage(**on: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{n: on.get(n, False) for n in names})


def make_credentials():
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


def sign(credentials, image: bytes, manifest: dict, ingredient: bytes | None = None) -> bytes:
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
