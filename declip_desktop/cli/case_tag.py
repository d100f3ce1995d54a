"""`declip case tag DIR EVIDENCE …`: the analyst's tags and bookmark on one item (registered by
`cli/case.py`). Each change is one `evidence.tags_changed` audit entry that `case verify` replays;
with no option it prints the item's tags.

EVIDENCE is the item's id (as `case status` lists it) or its file name when that is unique.
"""

from __future__ import annotations

import argparse
import sys

from declip_desktop.cli import FATAL, OK
from declip_desktop.common.text import terminal_json, terminal_safe as safe


def _err(message: str) -> int:
    print(f"error: {safe(message)}", file=sys.stderr)
    return FATAL


def find_evidence(case, key: str):  # noqa: ANN001, ANN201 - a Case, an Evidence
    """The item named by id or by (unique) original file name, else CaseError saying which exist."""
    from declip_desktop.cases import CaseError

    items = case.evidence_list()
    if key.isdigit():
        for ev in items:
            if ev.id == int(key):
                return ev
        raise CaseError(f"no evidence with id {key} in this case. `declip case status DIR` lists the items.")
    named = [ev for ev in items if ev.original_name == key]
    if len(named) == 1:
        return named[0]
    if named:
        ids = ", ".join(str(ev.id) for ev in named)
        raise CaseError(f"{len(named)} items are named {key} (evidence {ids}); give the id instead.")
    raise CaseError(f"no evidence named {key} in this case. `declip case status DIR` lists the items.")


def _tag(args: argparse.Namespace) -> int:
    from declip_desktop.cases import Case, CaseError
    from declip_desktop.cases.tags import change_marks, get_marks

    changes = bool(args.add or args.remove or args.bookmark is not None)
    try:
        with Case.open(args.dir, analyst=args.analyst, read_only=not changes) as case:
            ev = find_evidence(case, args.evidence)
            if changes:
                marks = change_marks(case, ev.id, add=args.add or (), remove=args.remove or (),
                                     bookmarked=args.bookmark, analyst=args.analyst)
            else:
                marks = get_marks(case, ev.id)
    except CaseError as exc:
        return _err(str(exc))
    if args.json:
        print(terminal_json({"id": ev.id, "name": ev.original_name, **marks.as_dict()}, indent=2))
        return OK
    star = "★ bookmarked" if marks.bookmarked else "not bookmarked"
    tags = ", ".join(marks.tags) if marks.tags else "(no tags)"
    print(safe(f"{ev.original_name} (evidence {ev.id}): {star}; tags: {tags}"))
    return OK


def register(case_subparsers: argparse._SubParsersAction) -> None:
    help_text = "tag or bookmark an evidence item, or show its tags (audit-logged; tags never change results)"
    p = case_subparsers.add_parser("tag", help=help_text, description=help_text + ".")
    p.add_argument("dir", metavar="DIR", help="the case folder")
    p.add_argument("evidence", metavar="EVIDENCE", help="the item's id (see `case status`) or its unique file name")
    p.add_argument("--add", metavar="TAG", action="append", help="add a tag (repeat for several); case-insensitive")
    p.add_argument("--remove", metavar="TAG", action="append", help="remove a tag the item carries (repeat for several)")
    star = p.add_mutually_exclusive_group()
    star.add_argument("--bookmark", dest="bookmark", action="store_true", default=None, help="bookmark the item (★)")
    star.add_argument("--no-bookmark", dest="bookmark", action="store_false", help="remove the item's bookmark")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--analyst", help="who makes the change (default: the case's analyst); written to the audit log")
    p.set_defaults(func=_tag)
