"""`declip case annotate DIR EVIDENCE …`: the analyst's box and lasso annotations of one item
(registered by `cli/case.py`).

    declip case annotate CASE 3 --box 120,40,64,48 --label "cloned sky" [--note TEXT]
    declip case annotate CASE 3 --polygon 10,10,80,12,60,70 --label "inpainted"
    declip case annotate CASE 3 --relabel 5 --label "cloned cloud"
    declip case annotate CASE 3 --delete 5
    declip case annotate CASE 3 [--deleted] [--json]        list, with the map's mean/max inside

Each change is one audit entry (`cases.annotations`); `case verify` replays them.
"""

from __future__ import annotations

import argparse
import sys

from declip_desktop.cli import FATAL, OK, jsonout


def _err(message: str) -> int:
    from declip_desktop.common.text import terminal_safe

    print(f"error: {terminal_safe(message)}", file=sys.stderr)
    return FATAL


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _record(annotation, stats) -> dict:  # noqa: ANN001
    out = annotation.as_dict()
    out["map"] = None if stats is None else {"pixels": stats.pixels, "mean": jsonout.finite_or_none(stats.mean),
                                             "max": jsonout.finite_or_none(stats.max)}
    return out


def _print(rows: list[tuple], evidence) -> None:  # noqa: ANN001
    from declip_desktop.common.text import terminal_safe

    print(f"{len(rows)} annotation(s) of {terminal_safe(evidence.original_name)} (evidence {evidence.id}, "
          f"{evidence.width}×{evidence.height} px)")
    for annotation, stats in rows:
        shape = annotation.shape
        area_pct = 100.0 * shape.area_px() / max(1, (evidence.width or 1) * (evidence.height or 1))
        line = (f"  #{annotation.id} {shape.describe()}  area {shape.area_px():,.0f} px ({area_pct:.2f} %)  "
                f"label {terminal_safe(repr(annotation.label))}  by {terminal_safe(annotation.author)} "
                f"{annotation.created_at}")
        if stats is not None:
            line += f"  map mean {_fmt(stats.mean)} max {_fmt(stats.max)}"
        if annotation.deleted:
            line += f"  [deleted by {terminal_safe(annotation.deleted_by)} at {annotation.deleted_at}]"
        print(line)
        for i, note_line in enumerate(annotation.note.split("\n") if annotation.note else []):
            print(f"      {'note: ' if i == 0 else '      '}{terminal_safe(note_line)}")


def _annotate(args: argparse.Namespace) -> int:
    from declip_desktop.cases import Case, CaseError
    from declip_desktop.cases import annotations as ann
    from declip_desktop.common.shapes import ShapeError, parse_box, parse_polygon

    actions = [a for a in ("box", "polygon", "relabel", "delete") if getattr(args, a) is not None]
    if len(actions) > 1:
        return _err(f"give one of --box, --polygon, --relabel, --delete (got {', '.join('--' + a for a in actions)})")
    action = actions[0] if actions else "list"
    if action in ("box", "polygon") and args.label is None:
        return _err(f"--{action} needs --label TEXT (what you see there, e.g. --label \"cloned sky\")")
    if action == "relabel" and args.label is None and args.note is None:
        return _err("--relabel ID needs a new --label TEXT and/or --note TEXT")
    try:
        read_only = action == "list"
        with Case.open(args.dir, analyst=args.analyst, read_only=read_only) as case:
            try:
                evidence = case.get_evidence(args.evidence)
            except CaseError:
                return _err(f"no evidence with ID {args.evidence} in this case; nothing was annotated or listed. "
                            "`declip case status DIR` lists the IDs.")
            changed = None
            if action == "box":
                changed = ann.add_annotation(case, evidence.id, "box", {"box": parse_box(args.box)}, args.label,
                                             args.note or "", analyst=args.analyst, hash_check=True)
            elif action == "polygon":
                changed = ann.add_annotation(case, evidence.id, "lasso", {"points": parse_polygon(args.polygon)},
                                             args.label, args.note or "", analyst=args.analyst, hash_check=True)
            elif action in ("relabel", "delete"):
                target = ann.get_annotation(case, getattr(args, action))
                if target.evidence_id != evidence.id:
                    return _err(f"annotation {target.id} belongs to evidence {target.evidence_id}, not {evidence.id}; "
                                "nothing was changed")
                if action == "relabel":
                    changed = ann.relabel_annotation(case, target.id, label=args.label, note=args.note,
                                                     analyst=args.analyst, hash_check=True)
                else:
                    changed = ann.delete_annotation(case, target.id, analyst=args.analyst, hash_check=True)
            listed = [changed] if changed is not None else ann.annotations(case, evidence.id,
                                                                           include_deleted=args.deleted)
            try:
                stats = ann.map_statistics(case, evidence, listed)
            except CaseError as exc:  # a damaged map: the annotations are still listed
                print(f"warning: {exc} The map's statistics are left out.", file=sys.stderr)
                stats = [None] * len(listed)
            rows = list(zip(listed, stats))
    except (CaseError, ShapeError) as exc:
        return _err(str(exc))
    if args.json:
        from declip_desktop.common.text import terminal_json

        payload = [_record(a, s) for a, s in rows]
        print(terminal_json(payload[0] if changed is not None else payload, indent=2))
    elif changed is not None:
        verb = {"box": "Added", "polygon": "Added", "relabel": "Relabelled", "delete": "Deleted"}[action]
        print(f"{verb} annotation {changed.id} (audit-logged).")
        _print(rows, evidence)
    else:
        _print(rows, evidence)
    return OK


def register(sub: argparse._SubParsersAction) -> None:
    help_text = "draw, relabel, delete or list the analyst's box and lasso annotations of one evidence item"
    p = sub.add_parser("annotate", help=help_text, description=help_text + " (image pixel coordinates; each change "
                       "is an audit entry that `case verify` replays)")
    p.add_argument("dir", metavar="DIR", help="the case folder")
    p.add_argument("evidence", metavar="EVIDENCE", type=int, help="the evidence id (`declip case status DIR`)")
    p.add_argument("--analyst", help="who does this (default: the case's analyst); written to the audit log")
    p.add_argument("--box", metavar="X,Y,W,H", help="add a box: left, top, width, height in whole image pixels")
    p.add_argument("--polygon", metavar="X1,Y1,X2,Y2,…", help="add a lasso: at least 3 points in image pixels")
    p.add_argument("--label", metavar="TEXT", help="the annotation's label (needed to add one)")
    p.add_argument("--note", metavar="TEXT", help="an optional longer note")
    p.add_argument("--relabel", metavar="ID", type=int, help="give annotation ID a new --label and/or --note")
    p.add_argument("--delete", metavar="ID", type=int, help="delete annotation ID (kept in the audit trail)")
    p.add_argument("--deleted", action="store_true", help="when listing, include deleted annotations")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_annotate)
