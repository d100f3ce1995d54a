"""`declip case report` and `declip case export-images` (registered by `cli/case.py`).

Both run headless: with no display, Qt's offscreen platform is selected before Qt starts.
Qt is imported inside the handlers only, so the rest of the CLI stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys

from declip_desktop.cli import jsonout
from declip_desktop.cli import FATAL, OK, SOME_FAILED
from declip_desktop.common.text import terminal_safe


def _err(message: str) -> int:
    print(f"error: {terminal_safe(message)}", file=sys.stderr)
    return FATAL


def _headless_qt() -> None:
    """Use Qt's offscreen platform unless a display is available (or the user chose one)."""
    if os.environ.get("QT_QPA_PLATFORM"):
        return
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a threshold between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is outside 0…1; give a threshold between 0 and 1")
    return value


def _run(args: argparse.Namespace, action) -> int:  # noqa: ANN001
    from declip_desktop.cases import Case, CaseError
    from declip_desktop.reports.errors import ReportError

    _headless_qt()
    try:
        with Case.open(args.dir, analyst=args.analyst) as case:
            return action(case)
    except (CaseError, ReportError) as exc:
        return _err(str(exc))


def _progress(quiet: bool):  # noqa: ANN202
    if quiet or not sys.stderr.isatty():
        return None

    def show(done: int, total: int, text: str) -> None:
        print(f"\r[{done}/{total}] {text[:60]:<60}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    return show


def _report(args: argparse.Namespace) -> int:
    signer = None
    if args.sign or args.key:
        from declip_desktop.cases import CaseError
        from declip_desktop.cli.key import load_signer

        try:
            signer = load_signer(args.key)  # before the work: a wrong passphrase costs nothing
        except CaseError as exc:
            return _err(str(exc))

    def action(case) -> int:  # noqa: ANN001
        from declip_desktop.reports import build

        built = build.build_report(
            case,
            out_path=args.out,
            evidence_ids=args.evidence,
            threshold=args.threshold,
            analyst=args.analyst,
            progress=_progress(args.json),
            signer=signer,
            force=args.force,
            layout=args.layout,
        )
        kept, stats = built.path, built.stats
        if args.json:
            from declip_desktop.common.hashing import sha256_file

            print(jsonout.dumps({
                "report": str(kept),
                "copy": str(args.out) if args.out else None,
                "sha256": sha256_file(kept),
                "pages": stats.pages,
                "seconds": round(stats.seconds, 2),
                "items": [{"evidence_id": f.evidence_id, "threshold": f.threshold, "threshold_source": f.threshold_source,
                           "score": f.score, "regions": None if f.regions is None else len(f.regions)}
                          for f in stats.items],
            }, indent=2))
        else:
            print(f"Report kept in the case: {terminal_safe(kept)}")
            if args.out:
                print(f"Copy written to: {terminal_safe(args.out)}")
            print(f"{stats.pages} pages in {stats.seconds:.1f} s; SHA-256 recorded in the audit log")
        return OK

    return _run(args, action)


def _export_images(args: argparse.Namespace) -> int:
    def action(case) -> int:  # noqa: ANN001
        from declip_desktop.reports.exports import export_images

        result = export_images(
            case, args.evidence, args.out, args.threshold, analyst=args.analyst, progress=_progress(args.json),
            force=args.force,
        )
        if args.json:
            print(jsonout.dumps({
                "folder": str(result.folder),
                "written": [str(p) for p in result.written],
                "skipped": [{"evidence_id": i, "reason": r} for i, r in result.skipped],
            }, indent=2))
        else:
            print(f"Wrote {len(result.written)} file(s) to {terminal_safe(result.folder)}")
            for ev_id, reason in result.skipped:
                print(f"skipped evidence {ev_id}: {terminal_safe(reason)}", file=sys.stderr)
        return SOME_FAILED if result.skipped else OK

    return _run(args, action)


def register(case_subparsers: argparse._SubParsersAction) -> None:
    """Add `report` and `export-images` to the `declip case` sub-commands."""
    p = case_subparsers.add_parser(
        "report",
        help="make a PDF report (kept in the case's reports/ and recorded in the audit log)",
        description="Make a PDF report of the case: cover, summary, one image page and one details page per "
        "evidence item, method and limitations, audit trail. The report is always kept in the case's "
        "reports/ folder and its SHA-256 written to the audit log; --out also copies it elsewhere.",
    )
    p.add_argument("dir", metavar="DIR", help="the case folder")
    p.add_argument("--out", metavar="FILE.pdf", help="also copy the report to this file (never inside a case "
                   "folder except its exports/, never over evidence, an original or through a symbolic link)")
    p.add_argument("--force", action="store_true", help="let --out replace an existing file")
    p.add_argument("--evidence", metavar="ID", type=int, nargs="+", help="only these evidence IDs (default: all)")
    p.add_argument("--threshold", type=_threshold, metavar="T", help="one threshold for every item (default: each item's own, else the case's default)")
    p.add_argument("--analyst", help="who makes the report (default: the case's analyst); written to the audit log")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--layout", choices=("full", "compact"), default="full",
                   help="full: an image page and a details page per item (default); compact: one page per item")
    p.add_argument("--sign", action="store_true", help="also sign the report with your key (writes REPORT.pdf.sig)")
    p.add_argument("--key", metavar="NAME", help="which key to sign with (implies --sign; default: your only key)")
    p.set_defaults(func=_report)

    p = case_subparsers.add_parser(
        "export-images",
        help="write the annotated overlay and the mask of each analysed item as PNG",
        description="Write, per analysed evidence item, the heat overlay with region outlines and the binary "
        "mask at the threshold, as full-resolution PNG files. Default folder: a new folder in the case's "
        "exports/. Exit code 1 when some items had no result to export.",
    )
    p.add_argument("dir", metavar="DIR", help="the case folder")
    p.add_argument("--out", metavar="DIR", help="folder to write to (created if needed; not inside a case "
                   "folder except its exports/)")
    p.add_argument("--force", action="store_true", help="replace exported images of the same name in --out")
    p.add_argument("--evidence", metavar="ID", type=int, nargs="+", help="only these evidence IDs (default: all)")
    p.add_argument("--threshold", type=_threshold, metavar="T", help="one threshold for every item (default: each item's own)")
    p.add_argument("--analyst", help="who exports (default: the case's analyst); written to the audit log")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_export_images)
