"""`declip key …`: the analyst's Ed25519 signing key (create, list, show) and signing a report.

The private key stays in the user's data folder (`declip_home()/keys/`), optionally
protected by a passphrase: asked for on the terminal, or read from the environment variable
DECLIP_KEY_PASSPHRASE or a file (`--passphrase-file`) for scripted use.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from declip_desktop.cli import FATAL, OK
from declip_desktop.cli.case import _guard  # one CaseError → exit-2 rule for every case-store command

PASSPHRASE_ENV = "DECLIP_KEY_PASSPHRASE"


def _err(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return FATAL


def _read_passphrase_file(path: str) -> bytes:
    from declip_desktop.cases.signing import SigningError

    try:
        data = Path(path).read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise SigningError(f"cannot read the passphrase file {path}: {exc.strerror or exc}.") from None
    if not data:
        raise SigningError(f"the passphrase file {path} is empty.")
    return data


def passphrase_for_new_key(args: argparse.Namespace) -> bytes | None:
    from declip_desktop.cases.signing import SigningError

    if args.passphrase_file:
        return _read_passphrase_file(args.passphrase_file)
    if os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV].encode("utf-8")
    if not args.ask_passphrase:
        return None
    if not sys.stdin.isatty():
        raise SigningError("--ask-passphrase needs a terminal; use --passphrase-file or "
                           f"{PASSPHRASE_ENV} in scripts.")
    first = getpass.getpass("Passphrase for the new key: ")
    if first != getpass.getpass("Repeat the passphrase: "):
        raise SigningError("the two passphrases differ; no key was made.")
    if not first:
        raise SigningError("an empty passphrase; leave out --ask-passphrase for a key without one.")
    return first.encode("utf-8")


def load_signer(name: str | None, passphrase_file: str | None = None):  # noqa: ANN201 - signing.Signer
    """The key to sign with, asking for its passphrase when it has one."""
    from declip_desktop.cases import signing

    if name is None:
        keys = signing.list_keys()
        name = keys[0].name if len(keys) == 1 else None
    if name is None:
        return signing.load_key(None)  # raises with a message naming the problem
    passphrase = None
    if signing.key_is_encrypted(name):
        if passphrase_file:
            passphrase = _read_passphrase_file(passphrase_file)
        elif os.environ.get(PASSPHRASE_ENV):
            passphrase = os.environ[PASSPHRASE_ENV].encode("utf-8")
        elif sys.stdin.isatty():
            passphrase = getpass.getpass(f"Passphrase for key {name}: ").encode("utf-8")
    return signing.load_key(name, passphrase)


@_guard
def _create(args: argparse.Namespace) -> int:
    from declip_desktop.cases import signing

    pub = signing.create_key(args.name, passphrase_for_new_key(args))
    print(f"Created key {pub.name} in {signing.keys_dir()}")
    print(f"Fingerprint: {pub.fingerprint}")
    print("Give this fingerprint to those who will check your signatures (not the private key).")
    return OK


@_guard
def _list(args: argparse.Namespace) -> int:
    from declip_desktop.cases import signing

    keys = signing.list_keys()
    if not keys:
        print(f"No keys in {signing.keys_dir()}. Create one with `declip key create NAME`.")
    for k in keys:
        print(f"{k.name:<20} {k.fingerprint}")
    return OK


@_guard
def _register(args: argparse.Namespace) -> int:
    from declip_desktop.cases import Case, signing
    from declip_desktop.cases.anchors import register_key

    keys = {k.name: k for k in signing.list_keys()}
    if args.key is None and len(keys) != 1:
        raise signing.SigningError("no key to record; create one with `declip key create NAME`." if not keys
                                   else f"several keys exist ({', '.join(keys)}); say which one with --key.")
    pub = keys.get(args.key) if args.key else next(iter(keys.values()))
    if pub is None:
        raise signing.SigningError(f"no key named {args.key}; `declip key list` shows yours.")
    with Case.open(args.dir, analyst=args.analyst) as case:
        new = register_key(case, pub, analyst=args.analyst)
    print(f"{'Recorded' if new else 'Already recorded'}: key {pub.name} ({pub.fingerprint}) in case {args.dir}")
    return OK


@_guard
def _sign(args: argparse.Namespace) -> int:
    from declip_desktop.cases import Case
    from declip_desktop.cases.anchors import sign_report

    signer = load_signer(args.key, args.passphrase_file)
    with Case.open(args.dir, analyst=args.analyst) as case:
        sig = sign_report(case, args.report, signer, analyst=args.analyst)
    print(f"Signed {args.report} with key {signer.name} ({signer.fingerprint[:16]}…): {sig}")
    return OK


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("key", help="create and use your signing key (Ed25519)",
                                   description="Your signing key: signs anchor receipts and reports so that a "
                                   "forged receipt or report can be told apart (docs/INTEGRITY.md).")
    sub = parser.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    p = sub.add_parser("create", help="make a new key pair", description="Make a new Ed25519 key pair in your "
                       "data folder. An existing key is never replaced.")
    p.add_argument("name", metavar="NAME", help="a short name, e.g. your initials (letters, digits, . _ -)")
    p.add_argument("--ask-passphrase", action="store_true", help="protect the private key with a passphrase "
                   "(asked for on the terminal)")
    p.add_argument("--passphrase-file", metavar="FILE", help=f"read the passphrase from FILE (or set {PASSPHRASE_ENV})")
    p.set_defaults(func=_create)
    p = sub.add_parser("list", help="list your keys and their fingerprints")
    p.set_defaults(func=_list)
    p = sub.add_parser("register", help="record your public key in a case (those who worked on it)",
                       description="Record your public key in the case (with an audit entry), so verify can say "
                       "that signatures by it come from someone who worked on the case.")
    p.add_argument("dir", metavar="DIR", help="the case folder")
    p.add_argument("--key", metavar="NAME", help="which key (default: your only key)")
    p.add_argument("--analyst", help="who records it (default: the case's analyst); written to the audit log")
    p.set_defaults(func=_register)
    p = sub.add_parser("sign", help="sign a report registered in a case (writes REPORT.sig)",
                       description="Sign a report registered in the case: writes REPORT.sig next to it, records "
                       "your public key in the case and the signing in its audit log.")
    p.add_argument("dir", metavar="DIR", help="the case folder")
    p.add_argument("report", metavar="REPORT", help="the registered report (usually in DIR/reports/)")
    p.add_argument("--key", metavar="NAME", help="which key (default: your only key)")
    p.add_argument("--passphrase-file", metavar="FILE", help=f"read the key's passphrase from FILE (or set {PASSPHRASE_ENV})")
    p.add_argument("--analyst", help="who signs (default: the case's analyst); written to the audit log")
    p.set_defaults(func=_sign)
