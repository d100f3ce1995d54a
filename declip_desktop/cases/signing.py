"""Analysts' Ed25519 keys: create, load, sign, check (the `cryptography` package).

A key pair lives in the user's data folder (`declip_home()/keys/`): `NAME.key` holds the
private key (PKCS#8 PEM, encrypted with the passphrase if one is given, mode 0600) and
`NAME.pub.json` the public half with its fingerprint. A signature block names the signer
and carries the public key, so a file signed on one machine can be checked on another;
the case records the public keys of those who signed its files (table `signers`), which
is what lets verify say "signed by a key this case knows".

What a signature proves: that whoever held the private key (and its passphrase) signed
exactly these bytes. It does not prove who that person is unless the fingerprint was
exchanged out of band (read it out over the phone, print it in a statement).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from declip_desktop.cases.audit import canonical
from declip_desktop.cases.errors import CaseError
from declip_desktop.common.paths import declip_home

KEYS_DIR = "keys"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class SigningError(CaseError):
    """A key could not be created, loaded or used (wrong passphrase, no key, bad file)."""


def keys_dir() -> Path:
    return declip_home() / KEYS_DIR


def fingerprint(public_raw: bytes) -> str:
    """SHA-256 of the raw 32-byte public key, hex: what analysts compare out of band."""
    return hashlib.sha256(public_raw).hexdigest()


def short(fp: str) -> str:
    """The first 64 bits of a fingerprint in groups of four, for messages."""
    return " ".join(fp[i:i + 4] for i in range(0, 16, 4))


@dataclass(frozen=True)
class PublicKey:
    name: str
    fingerprint: str
    public_key: str  # base64 of the raw 32-byte Ed25519 public key


@dataclass(frozen=True)
class Signer:
    """A loaded private key, ready to sign."""

    name: str
    fingerprint: str
    public_key: str
    _private: Any

    def sign(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A signature block over the canonical JSON of `payload`."""
        sig = self._private.sign(canonical(payload).encode("utf-8"))
        return {"algorithm": "Ed25519", "name": self.name, "fingerprint": self.fingerprint,
                "public_key": self.public_key, "signature": base64.b64encode(sig).decode("ascii")}

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.name, self.fingerprint, self.public_key)


def _paths(name: str) -> tuple[Path, Path]:
    if not _NAME.match(name):
        raise SigningError(f"{name!r} is not a usable key name: use letters, digits, '.', '_' or '-' "
                           "(up to 64 characters, starting with a letter or digit).")
    return keys_dir() / f"{name}.key", keys_dir() / f"{name}.pub.json"


def create_key(name: str, passphrase: bytes | None = None) -> PublicKey:
    """Make a new key pair. Refuses to replace an existing key of that name."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key_path, pub_path = _paths(name)
    private = Ed25519PrivateKey.generate()
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pub = PublicKey(name, fingerprint(raw), base64.b64encode(raw).decode("ascii"))
    try:
        key_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningError(f"a key named {name} already exists ({key_path}). Choose another name; an existing "
                           "key is never replaced.") from None
    except OSError as exc:
        raise SigningError(f"cannot write {key_path}: {exc.strerror or exc}.") from exc
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    pub_path.write_text(json.dumps({"name": name, "fingerprint": pub.fingerprint, "public_key": pub.public_key,
                                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                    "encrypted": bool(passphrase)}, indent=2) + "\n", encoding="utf-8")
    return pub


def list_keys() -> list[PublicKey]:
    out = []
    folder = keys_dir()
    for pub_path in sorted(folder.glob("*.pub.json")) if folder.is_dir() else []:
        try:
            d = json.loads(pub_path.read_text(encoding="utf-8"))
            out.append(PublicKey(d["name"], d["fingerprint"], d["public_key"]))
        except (OSError, ValueError, KeyError):
            continue  # a damaged public file: `key list` shows the others; load_key names the problem
    return out


def key_is_encrypted(name: str) -> bool:
    key_path, _ = _paths(name)
    try:
        return b"ENCRYPTED" in key_path.read_bytes()[:64]
    except OSError as exc:
        raise SigningError(f"no key named {name} ({key_path}: {exc.strerror or exc}). "
                           "Create one with `declip key create NAME`.") from None


def load_key(name: str | None = None, passphrase: bytes | None = None) -> Signer:
    """Load a private key by name (None: the only key there is)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if name is None:
        names = [k.name for k in list_keys()]
        if len(names) != 1:
            raise SigningError("no signing key exists; create one with `declip key create NAME`." if not names else
                               f"several keys exist ({', '.join(names)}); say which one to use with --key.")
        name = names[0]
    key_path, _ = _paths(name)
    try:
        pem = key_path.read_bytes()
    except OSError as exc:
        raise SigningError(f"no key named {name} ({key_path}: {exc.strerror or exc}). "
                           "Create one with `declip key create NAME`.") from None
    try:
        private = serialization.load_pem_private_key(pem, password=passphrase or None)
    except TypeError:
        raise SigningError(f"the key {name} is protected by a passphrase; give it (prompt, or the "
                           "DECLIP_KEY_PASSPHRASE environment variable).") from None
    except ValueError:
        raise SigningError(f"the key {name} could not be opened: wrong passphrase, or {key_path} is damaged.") \
            from None
    if not isinstance(private, Ed25519PrivateKey):
        raise SigningError(f"{key_path} is not an Ed25519 key made by `declip key create`.")
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return Signer(name, fingerprint(raw), base64.b64encode(raw).decode("ascii"), private)


def check(payload: dict[str, Any], block: Any) -> str | None:
    """None if `block` is a valid Ed25519 signature of `payload`, else what is wrong."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not isinstance(block, dict):
        return "the signature block is missing or malformed"
    try:
        raw = base64.b64decode(block["public_key"], validate=True)
        sig = base64.b64decode(block["signature"], validate=True)
        key = Ed25519PublicKey.from_public_bytes(raw)
    except (KeyError, TypeError, ValueError):
        return "the signature block is malformed (public key or signature unreadable)"
    if fingerprint(raw) != block.get("fingerprint"):
        return "the fingerprint does not belong to the public key it comes with"
    try:
        key.verify(sig, canonical(payload).encode("utf-8"))
    except InvalidSignature:
        return "the signature does not match the signed content (changed after signing, or forged)"
    return None
