"""PAdES signatures inside report PDFs (pyHanko), made with the analyst's Ed25519 key.

`sign_pdf` appends a PAdES (ETSI.CAdES.detached) signature to a PDF as an incremental update,
so any PDF reader that knows the format shows who signed it and whether it changed since.
The certificate in it is self-signed, made from the analyst's key when signing (subject: the
signer's name, the key name, its fingerprint): a case's trust in a key comes from the key being
recorded in the case (`declip key`, the audit trail), not from a certificate authority.

Ed25519 in PDF signatures is standard (ISO 32002) and pyHanko signs and validates it; readers
that predate it (older Acrobat versions among them) show the signature as of an unsupported
algorithm but still list it — `declip case verify` is the check that counts.

`check_pdf(path, known_keys)` validates every embedded signature: cryptographically intact,
covering the whole file (nothing appended after signing), and by which key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from declip_desktop.cases.errors import CaseError

FIELD_NAME = "DeCLIPReportSignature"
CERT_YEARS = 10


@dataclass(frozen=True)
class PdfSignature:
    """One embedded signature as found by `check_pdf`."""

    signer: str  # the certificate's subject, as a person reads it
    fingerprint: str  # SHA-256 of the raw Ed25519 public key ("" when not Ed25519)
    problem: str | None  # None: intact, valid and covering the whole file
    signed_at: str | None


def _certificate(signer: Any, person: str, organisation: str | None):  # noqa: ANN202 - asn1crypto objects
    from asn1crypto import keys as akeys
    from asn1crypto import x509 as ax509
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    key = signer._private
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, (person or signer.name)[:64]),
             x509.NameAttribute(NameOID.PSEUDONYM, f"declip key {signer.name}"[:64]),
             x509.NameAttribute(NameOID.SERIAL_NUMBER, signer.fingerprint[:64])]
    if organisation:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation[:64]))
    name = x509.Name(attrs)
    now = dt.datetime.now(dt.timezone.utc)
    usage = x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365 * CERT_YEARS))
            .add_extension(usage, critical=True).sign(key, None))
    der_key = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return (ax509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
            akeys.PrivateKeyInfo.load(der_key))


def sign_pdf(src: str | os.PathLike[str], dst: str | os.PathLike[str], signer: Any, *, person: str = "",
             organisation: str | None = None, reason: str = "", location: str | None = None) -> None:
    """Write `src` plus a PAdES signature by `signer` (a `cases.signing.Signer`) to the new file `dst`."""
    from asn1crypto import algos
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    cert, key = _certificate(signer, person, organisation)
    pdf_signer = signers.SimpleSigner(
        signing_cert=cert, signing_key=key, cert_registry=SimpleCertificateStore.from_certs([cert]),
        signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": "ed25519"}))
    meta = PdfSignatureMetadata(field_name=FIELD_NAME, reason=reason or None, location=location or None,
                                name=person or None, subfilter=fields.SigSeedSubFilter.PADES,
                                md_algorithm="sha512")  # Ed25519 signs with SHA-512 (RFC 8419)
    try:
        with open(src, "rb") as inf, open(dst, "xb") as out:
            writer = IncrementalPdfFileWriter(inf, strict=False)
            signers.PdfSigner(meta, signer=pdf_signer).sign_pdf(writer, output=out)
            out.flush()
            os.fsync(out.fileno())
    except FileExistsError:
        raise CaseError(f"{dst} already exists; a signed report never replaces a file.") from None
    except OSError as exc:
        Path(dst).unlink(missing_ok=True)
        raise CaseError(f"cannot write the signed report {dst}: {exc.strerror or exc}.") from None


def _fingerprint(cert: Any) -> str:
    info = cert.public_key
    if info.algorithm != "ed25519":
        return ""
    return hashlib.sha256(bytes(info["public_key"])).hexdigest()


def has_signatures(path: str | os.PathLike[str]) -> bool:
    """Cheap test before loading pyHanko: a PDF signature dictionary in the file's bytes."""
    try:
        with open(path, "rb") as fh:
            return b"/ETSI.CAdES.detached" in fh.read()
    except OSError:
        return False


def check_pdf(path: str | os.PathLike[str]) -> list[PdfSignature]:
    """Every embedded signature of `path`, validated (see the module docstring)."""
    from pyhanko.pdf_utils.misc import PdfReadError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    out: list[PdfSignature] = []
    try:
        with open(path, "rb") as fh:
            reader = PdfFileReader(fh, strict=False)
            embedded = list(reader.embedded_signatures)
            for sig in embedded:
                cert = sig.signer_cert
                who = cert.subject.human_friendly
                try:
                    # The certificate is self-signed: trust it as its own root; the key is what counts.
                    status = validate_pdf_signature(sig, ValidationContext(trust_roots=[cert]))
                except Exception as exc:  # noqa: BLE001 - pyHanko raises many kinds on damaged input
                    out.append(PdfSignature(who, _fingerprint(cert), f"the signature cannot be validated: {exc}", None))
                    continue
                problem = None
                if not status.intact:
                    problem = "the signed bytes changed after signing"
                elif not status.valid:
                    problem = "the signature does not match the signing key"
                elif status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
                    problem = "bytes were added to the file after it was signed"
                when = status.signer_reported_dt.isoformat() if status.signer_reported_dt else None
                out.append(PdfSignature(who, _fingerprint(cert), problem, when))
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        return [PdfSignature("unknown", "", f"the PDF cannot be read to check its signature: {exc}", None)]
    return out


__all__ = ["FIELD_NAME", "PdfSignature", "check_pdf", "has_signatures", "sign_pdf"]
