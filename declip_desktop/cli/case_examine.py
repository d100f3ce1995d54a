"""`declip case examine DIR`: metadata, alerts and Content Credentials of evidence, and classical views.

Import already examines every new item; this command shows the stored result, examines
again (`--again`, e.g. with `--trust-anchors` to judge C2PA signers against roots you
trust), checks the stored examinations (`--verify`), or writes a classical view as a
PNG (`--view ela --out ela.png`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from declip_desktop.cli import FATAL, OK, SOME_FAILED, jsonout


def _err(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return FATAL


def _write_view(case, evidence_id: int, name: str, out: Path, params: dict) -> None:  # noqa: ANN001
    import numpy as np
    from PIL import Image

    from declip_desktop.common.regions import colorize
    from declip_desktop.examination import cached_view

    view = cached_view(case, evidence_id, name, **params)
    img = view.data if view.kind == "rgb" else colorize(view.data)
    Image.fromarray(np.ascontiguousarray(img)).save(out)
    print(f"{view.title} of evidence {evidence_id} ({view.seconds:.2f} s) written to {out}")
    print(f"How to read it: {view.explanation}")


def _examine(args: argparse.Namespace) -> int:
    from declip_desktop.cases import Case, CaseError
    from declip_desktop.examination import (
        ExaminationError,
        examine_evidence,
        load_examination,
        verify_examinations,
    )
    from declip_desktop.forensics.views import VIEWS

    try:
        case = Case.open(args.dir, analyst=args.analyst)
    except CaseError as exc:
        return _err(str(exc))
    with case:
        if args.verify:
            problems = verify_examinations(case)
            for obj, problem in problems:
                print(f"PROBLEM [examination] {obj}: {problem}")
            if not problems:
                print("OK: every stored examination matches its audit-logged hash.")
            return SOME_FAILED if problems else OK
        ids = args.id or [e.id for e in case.evidence_list()]
        if args.view:
            if args.view not in VIEWS:
                return _err(f"unknown view {args.view!r}. Choose one of: {', '.join(VIEWS)}")
            if len(ids) != 1 or not args.out:
                return _err("--view needs exactly one --id and --out FILE.png")
            params = {"quality": args.quality} if args.quality else {}
            try:
                _write_view(case, ids[0], args.view, Path(args.out), params)
            except (ValueError, OSError, CaseError) as exc:
                return _err(f"the view could not be made ({exc})")
            return OK
        pem = None
        if args.trust_anchors:
            from declip_desktop.examination import TRUST_SETTING
            from declip_desktop.forensics.provenance import check_trust_anchors

            try:
                pem = Path(args.trust_anchors).read_text(encoding="utf-8", errors="replace")
                count = check_trust_anchors(pem)
            except (OSError, ValueError) as exc:
                return _err(f"{args.trust_anchors}: {exc}. Give a PEM file of root certificates")
            case.set_setting(TRUST_SETTING, pem, analyst=args.analyst)
            print(f"{count} trust anchor(s) kept for this case; later imports use them too.")
        results, failed = [], 0
        for evidence_id in ids:
            try:
                exam = (examine_evidence(case, evidence_id, analyst=args.analyst, trust_anchors_pem=pem)
                        if args.again or pem else load_examination(case, evidence_id))
                if exam is None:
                    exam = examine_evidence(case, evidence_id, analyst=args.analyst)
            except (ExaminationError, CaseError) as exc:
                failed += 1
                print(f"error: evidence {evidence_id}: {exc}", file=sys.stderr)
                continue
            results.append(exam)
    if args.json:
        print(jsonout.dumps([{"evidence_id": e.evidence_id, "file": str(e.path), "sha256": e.sha256,
                              "alerts": e.alerts, "c2pa": e.c2pa} for e in results], indent=2, ensure_ascii=False))
    else:
        for e in results:
            print(f"Evidence {e.evidence_id}: C2PA {e.c2pa.get('state')}; {len(e.alerts)} alert(s)")
            for a in e.alerts:
                first = a["evidence"][0] if a["evidence"] else {"tag": "", "value": ""}
                print(f"  [{a['severity']}] {a['title']} — {first['tag']}: {first['value'][:120]}")
    return SOME_FAILED if failed else OK


def register(sub: argparse._SubParsersAction) -> None:
    help_text = "metadata alerts, Content Credentials (C2PA) and classical forensic views of evidence"
    p = sub.add_parser("examine", help=help_text, description=help_text)
    p.add_argument("dir", metavar="DIR", help="the case folder")
    p.add_argument("--analyst", help="who does this (default: the case's analyst); written to the audit log")
    p.add_argument("--id", type=int, action="append", help="evidence id (repeatable; default: all)")
    p.add_argument("--again", action="store_true", help="examine again instead of showing the stored result")
    p.add_argument("--trust-anchors", metavar="PEM", help="root certificates whose C2PA signers count as trusted "
                                                          "(kept for the case; re-examines the items)")
    p.add_argument("--verify", action="store_true", help="check stored examinations against the audit log")
    p.add_argument("--view", metavar="NAME", help="write a classical view (ela, noise_residual, noise_level, "
                                                  "jpeg_ghost, jpeg_grid, double_jpeg, copy_move, luminance_gradient)")
    p.add_argument("--quality", type=int, help="JPEG quality for --view ela / jpeg_ghost")
    p.add_argument("--out", metavar="FILE.png", help="where --view writes")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_examine)
