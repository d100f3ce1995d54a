"""`declip case set DIR …`: the case's examiner and request fields (registered by `cli/case.py`).

Each change is one `setting.changed` audit entry (old and new values) that `case verify` replays.
With no option it prints the fields, so an examiner can check them before making a report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from declip_desktop.cli import FATAL, OK

#: option name -> Examiner field
OPTIONS = {"examiner": "name", "role": "role", "organisation": "organisation", "requester": "requester",
           "reference": "reference", "question": "question"}


def _err(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return FATAL


def _read_declaration(path: str) -> str:
    from declip_desktop.cases import CaseError

    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CaseError(f"{path} is not UTF-8 text. Save the declaration as UTF-8 and try again.") from None
    except OSError as exc:
        raise CaseError(f"cannot read the declaration file {path}: {exc.strerror or exc}.") from None


def _set(args: argparse.Namespace) -> int:
    from declip_desktop.cases import Case, CaseError
    from declip_desktop.cases.examiner import DEFAULT_DECLARATION, get_examiner, set_examiner

    try:
        changes = {field: getattr(args, option) for option, field in OPTIONS.items()}
        if args.declaration_file:
            changes["declaration"] = _read_declaration(args.declaration_file)
        if args.default_declaration:
            changes["declaration"] = DEFAULT_DECLARATION
        with Case.open(args.dir, analyst=args.analyst) as case:
            if any(v is not None for v in changes.values()):
                examiner = set_examiner(case, analyst=args.analyst, **changes)
            else:
                examiner = get_examiner(case)
    except CaseError as exc:
        return _err(str(exc))
    labels = {"name": "Examiner", "role": "Role", "organisation": "Organisation", "requester": "Requested by",
              "reference": "Request reference", "question": "Question asked"}
    for field, label in labels.items():
        print(f"{label + ':':<19}{getattr(examiner, field) or '(not set)'}")
    print("Declaration:")
    print(examiner.declaration_text())
    if examiner.missing():
        print(f"Not set yet: {', '.join(examiner.missing())} (reports show them as [not set])", file=sys.stderr)
    return OK


def register(case_subparsers: argparse._SubParsersAction) -> None:
    help_text = "set or show the examiner and request fields printed on reports (audit-logged)"
    p = case_subparsers.add_parser("set", help=help_text, description=help_text + ". Empty text clears a field.")
    p.add_argument("dir", metavar="DIR", help="the case folder")
    p.add_argument("--examiner", metavar="NAME", help="the examiner's name (signs the attestation)")
    p.add_argument("--role", help="the examiner's role, e.g. 'Senior forensic examiner'")
    p.add_argument("--organisation", help="the examiner's laboratory or organisation")
    p.add_argument("--requester", help="who asked for the examination")
    p.add_argument("--reference", help="the requester's reference for the request")
    p.add_argument("--question", help="the question the examiner was asked to answer")
    p.add_argument("--declaration-file", metavar="FILE",
                   help="UTF-8 text of the declaration; may use {name} {role} {organisation} {requester} {reference}")
    p.add_argument("--default-declaration", action="store_true", help="go back to the standard declaration text")
    p.add_argument("--analyst", help="who makes the change (default: the case's analyst); written to the audit log")
    p.set_defaults(func=_set)
