"""`declip case bundle DIR --out FILE.zip` and `declip reproduce FILE.zip`: the reproducibility
bundle an opposing expert re-runs (`cases.bundle`, `training.reproduce`, `common.bundle_format`).

`reproduce` exits 0 when every item is within the tolerance, 1 when some are not (or could not
be re-run), 2 when the bundle cannot be used at all.
"""

from __future__ import annotations

import argparse
import sys

from declip_desktop.cli import FATAL, OK, SOME_FAILED, jsonout


def _err(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return FATAL


def _bundle(args: argparse.Namespace) -> int:
    from declip_desktop.cases import Case, CaseError
    from declip_desktop.cases.bundle import write_bundle

    try:
        with Case.open(args.dir, analyst=args.analyst) as case:
            path, manifest = write_bundle(case, args.out, args.evidence, args.with_evidence, analyst=args.analyst)
    except CaseError as exc:
        return _err(str(exc))
    print(f"Bundle written: {path} ({len(manifest['items'])} item(s)"
          f"{', with the evidence files' if args.with_evidence else ', evidence by hash only'}); "
          "its SHA-256 is in the audit log")
    for skipped in manifest["skipped"]:
        print(f"left out evidence {skipped['evidence_id']} ({skipped['name']}): {skipped['reason']}", file=sys.stderr)
    return OK


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a tolerance such as 1e-4") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is negative; give a tolerance of 0 or more")
    return value


def _reproduce(args: argparse.Namespace) -> int:
    from declip_desktop.training.reproduce import BundleError, reproduce

    try:
        manifest, results = reproduce(args.bundle, args.evidence_dir, args.tolerance, device=args.device)
    except BundleError as exc:
        return _err(str(exc))
    tol = args.tolerance if args.tolerance is not None else manifest.get("tolerance")
    if args.json:
        print(jsonout.dumps({"tolerance": tol, "items": [r.__dict__ for r in results]}, indent=2))
    else:
        env = manifest.get("environment", {})
        print(f"Bundle of case {manifest['case']['number']}, made with {env.get('software')} on {env.get('platform')}")
        print(f"Tolerance: max |Δ| of the map and |Δ score| ≤ {tol:g}")
        for r in results:
            if r.max_abs_diff is None:
                print(f"  FAIL  {r.evidence_id:>4}  {r.name}: not re-run: {r.problem}")
            else:
                verdict = "pass" if r.passed else "FAIL"
                print(f"  {verdict:<4}  {r.evidence_id:>4}  {r.name}: max |Δ| {r.max_abs_diff:.3g}, "
                      f"|Δ score| {r.score_diff:.3g}")
        passed = sum(r.passed for r in results)
        print(f"{passed} of {len(results)} item(s) reproduced within the tolerance")
    return OK if all(r.passed for r in results) else SOME_FAILED


def register_case(case_subparsers: argparse._SubParsersAction) -> None:
    help_text = "write a reproducibility bundle (hashes, model cards, parameters, maps, versions) as a ZIP"
    p = case_subparsers.add_parser("bundle", help=help_text, description=help_text + ". `declip reproduce` "
                                   "re-runs it. Its SHA-256 is written to the audit log.")
    p.add_argument("dir", metavar="DIR", help="the case folder")
    p.add_argument("--out", required=True, metavar="FILE.zip", help="the new bundle file (never replaced)")
    p.add_argument("--evidence", metavar="ID", type=int, nargs="+", help="only these evidence IDs (default: all)")
    p.add_argument("--with-evidence", action="store_true",
                   help="include the evidence files (default: their hashes only; hand the files over separately)")
    p.add_argument("--analyst", help="who writes the bundle (default: the case's analyst); written to the audit log")
    p.set_defaults(func=_bundle)


def register(subparsers: argparse._SubParsersAction) -> None:
    help_text = "re-run the analyses of a reproducibility bundle and compare the maps and scores"
    p = subparsers.add_parser("reproduce", help=help_text, description=help_text + ". Exit 0: every item within "
                              "the tolerance; 1: some not (or not re-run); 2: the bundle cannot be used.")
    p.add_argument("bundle", metavar="FILE.zip", help="a bundle made by `declip case bundle`")
    p.add_argument("--evidence-dir", metavar="DIR", help="where the evidence files are (found by SHA-256), when the "
                   "bundle does not hold them")
    p.add_argument("--tolerance", type=_tolerance, metavar="T", help="pass/fail bound on max |Δ| and |Δ score| "
                   "(default: the bundle's, 1e-4)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, mps, auto")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_reproduce)
