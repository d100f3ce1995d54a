"""`declip case …`: create, import, analyze, status, verify and export case folders.

Every command that changes a case writes its audit log (the analyst is `--analyst`,
else the case's analyst). Heavy imports (torch via the engine) happen only inside
`case analyze`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from typing import Any

#: Exit codes (docs/ARCHITECTURE.md): 0 ok, 1 some items failed, 2 usage/fatal.
from declip_desktop.cli import FATAL, OK, SOME_FAILED, jsonout
from declip_desktop.common.text import terminal_json, terminal_safe as safe


def _err(message: str) -> int:
    print(f"error: {safe(message)}", file=sys.stderr)
    return FATAL


def _open(args: argparse.Namespace, read_only: bool = False):  # noqa: ANN202 - returns a Case
    """`read_only`: status, verify, export and anchor never change the case (no recovery, no
    migration), work on read-only media and never wait for a writer."""
    from declip_desktop.cases import Case

    return Case.open(args.dir, analyst=getattr(args, "analyst", None), read_only=read_only)


def _guard(func):  # noqa: ANN001, ANN202
    """Turn CaseError into `error: …` on stderr and exit code 2."""

    def run(args: argparse.Namespace) -> int:
        from declip_desktop.cases import CaseError

        try:
            return func(args)
        except CaseError as exc:
            return _err(str(exc))

    return run


# ---------------------------------------------------------------------- handlers
@_guard
def _create(args: argparse.Namespace) -> int:
    from declip_desktop.cases import Case

    with Case.create(args.dir, number=args.number, title=args.title, analyst=args.analyst,
                     description=args.description or "") as case:
        print(safe(f"Created case {case.info.number} “{case.info.title}” in {case.path}"))
    return OK


@_guard
def _import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from declip_desktop.common.images import DEFAULT_MAX_PIXELS

    with _open(args) as case:
        bar = tqdm(total=0, unit="file", desc="Importing", disable=args.json or not sys.stderr.isatty(),
                   file=sys.stderr)

        def progress(done: int, total: int, path: str) -> None:
            if bar.total != total:
                bar.total = total
            bar.n = done
            bar.refresh()

        try:
            report = case.import_paths(args.paths, analyst=args.analyst, progress=progress,
                                       max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS)
        finally:
            bar.close()
        # Metadata, alerts and Content Credentials of each new item (declip_desktop.examination).
        from declip_desktop.examination import examine_many

        examined = examine_many(case, [e.id for e in report.imported], analyst=args.analyst)
    if args.json:
        print(jsonout.dumps({
            "imported": [{"id": e.id, "path": e.original_path, "sha256": e.sha256,
                          "examination_error": examined.get(e.id)} for e in report.imported],
            "duplicates": [{"path": p, "evidence_id": i} for p, i in report.duplicates],
            "rejected": [{"path": r.path, "reason": r.reason} for r in report.rejected],
            "ignored": report.ignored,
        }, indent=2))
    else:
        print(f"Imported {len(report.imported)}, duplicates {len(report.duplicates)}, "
              f"rejected {len(report.rejected)}.")
        for p, i in report.duplicates:
            print(f"  duplicate of evidence {i}: {safe(p)}")
        for r in report.rejected:
            print(f"  rejected: {safe(r.path)}: {safe(r.reason)}")
        for i, error in examined.items():
            if error:
                print(f"  evidence {i} imported, but its metadata could not be examined: {safe(error)}")
    return SOME_FAILED if report.rejected or any(examined.values()) else OK


def _analyze(args: argparse.Namespace) -> int:
    from declip_desktop.analysis import AnalysisError, AnalysisSession
    from declip_desktop.cases import CaseError
    from declip_desktop.cli.progress_output import ProgressOutput

    if args.batch_size < 1:
        return _err(f"--batch-size must be at least 1 (got {args.batch_size}).")
    from declip_desktop.cli.tiling_args import print_estimate, tiling_from_args
    from declip_desktop.common.tiling_plan import TilingError

    try:
        tiling = tiling_from_args(args)
    except TilingError as exc:
        return _err(f"{exc}.")
    if tiling is not None and getattr(args, "cluster", None):
        return _err("--tiled does not run on a cluster yet; run it on this machine (without --cluster).")
    if getattr(args, "models", None):  # several models, for agreement (cli.case_robustness)
        if tiling is not None:
            return _err("--models and --tiled do not combine yet; run the tiled analysis with one model (--model).")
        return importlib.import_module("declip_desktop.cli.case_robustness").analyze_models(args)
    if getattr(args, "cluster", None):  # the driver needs no torch: the nodes run the model
        try:
            case = _open(args)
        except CaseError as exc:
            return _err(str(exc))
        with case:
            return importlib.import_module("declip_desktop.cli.cluster").analyze_on_cluster(
                args, case, args.model)
    try:
        from declip_desktop.modelstore.loading import load_localizer, resolve_model
    except ImportError as exc:
        return _err(f"the analysis engine is not available ({exc}). Reinstall DeCLIP Desktop.")
    try:
        case = _open(args)
    except CaseError as exc:
        return _err(str(exc))
    with case:
        session = AnalysisSession(case, model=args.model, device=args.device or "auto", fast=args.fast,
                                  batch_size=args.batch_size, analyst=args.analyst,
                                  localizer_factory=load_localizer, model_resolver=resolve_model,
                                  on_status=lambda message: print(message, file=sys.stderr, flush=True),
                                  tiling=tiling)
        out: ProgressOutput | None = None
        names: dict[int, str] = {}
        tiles_said: dict[int | None, int] = {}

        def name_of(evidence_id: int | None) -> str:
            if evidence_id is None:
                return "?"
            if evidence_id not in names:
                try:
                    names[evidence_id] = case.get_evidence(evidence_id).original_name
                except CaseError:
                    names[evidence_id] = f"evidence {evidence_id}"
            return names[evidence_id]

        def progress(event: Any) -> None:
            nonlocal out
            if out is None:
                out = ProgressOutput(event.total, "image", "Analysing")
            if event.status == "tiles" and event.tiles is not None:  # a tiled image: a note every tenth of it
                done_tiles, total_tiles = event.tiles
                tenth = 10 * done_tiles // max(1, total_tiles)
                if tenth != tiles_said.get(event.evidence_id):
                    tiles_said[event.evidence_id] = tenth
                    out.note(f"{safe(name_of(event.evidence_id))}: tile {done_tiles} of {total_tiles}")
            elif event.status == "done":
                score = f", score {event.score:.3f}" if event.score is not None else ""
                out.item(event.done, f"{safe(name_of(event.evidence_id))}: done{score}", event.eta_seconds)
            elif event.status == "failed":
                out.item(event.done, f"{safe(name_of(event.evidence_id))}: failed: {safe(event.error)}", event.eta_seconds)
                if out.is_bar:
                    out.note(f"failed: {safe(name_of(event.evidence_id))} (evidence {event.evidence_id}): {safe(event.error)}")

        def notice(level: str, message: str, _detail: str) -> None:
            print(f"{'note' if level == 'info' else level}: {message}", file=sys.stderr)

        def model_loaded(model: Any) -> None:
            print(f"Model loaded on {model.device}.", file=sys.stderr)

        try:
            # Said before anything is loaded or analysed: which model, and why that one.
            print(f"Model: {session.choose_model().describe()}", file=sys.stderr)
            if tiling is not None:  # many forward passes per image: say what it will cost first
                from declip_desktop.analysis.tiling import estimate_session

                print_estimate(estimate_session(session))
            summary = session.run(on_progress=progress, on_notice=notice, on_model=model_loaded)
        except (AnalysisError, CaseError) as exc:
            return _err(str(exc).rstrip(".") + ".")
        finally:
            if out is not None:
                out.close()
        print(f"Analysed {summary.done}, failed {summary.failed}, still queued {summary.remaining} "
              f"({summary.seconds:.1f} s, {summary.model_name} on {summary.device}).")
        if summary.out_of_memory:
            return _err(summary.message)
    return SOME_FAILED if summary.failed else OK


@_guard
def _threshold(args: argparse.Namespace) -> int:
    from declip_desktop.cases.case_settings import case_threshold, set_case_threshold

    with _open(args) as case:
        if args.value is not None:
            set_case_threshold(case, args.value, analyst=args.analyst)
        value, source = case_threshold(case)
    origin = "set for this case" if source == "case" else "nobody set one; the standard value"
    print(f"Default threshold of this case: {value:g} ({origin}). Items reviewed with their own threshold keep it.")
    return OK


@_guard
def _status(args: argparse.Namespace) -> int:
    from declip_desktop.cases.tags import Marks, all_marks

    with _open(args, read_only=True) as case, case.snapshot():
        info = case.info
        counts = case.status_counts()
        evidence = case.evidence_list()
        head, entries = case.audit_head()
        rejected = case.rejections()
        settings = case.settings()
        calibrate_cli = importlib.import_module("declip_desktop.cli.case_calibrate")
        calibration = calibrate_cli.status_json(case) if args.json else calibrate_cli.status_lines(case)
        marks = all_marks(case)
    if args.json:
        print(terminal_json({
            "case": {"number": info.number, "title": info.title, "analyst": info.analyst,
                     "description": info.description, "created": info.created, "path": str(info.path),
                     "schema_version": info.schema_version},
            "counts": counts,
            "rejected": len(rejected),
            "settings": settings,
            "audit": {"entries": entries, "head": head},
            "evidence": [{"id": e.id, "name": e.original_name, "sha256": e.sha256, "status": e.status,
                          "score": e.score, "threshold": e.threshold, "verdict": e.verdict, "error": e.error,
                          **marks.get(e.id, Marks()).as_dict()}
                         for e in evidence],
            "calibration": calibration,
        }, indent=2))
        return OK
    print(safe(f"Case {info.number}: {info.title}  (analyst {info.analyst}, created {info.created})"))
    print("Evidence: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f"; rejected files {len(rejected)}")
    print(f"Audit log: {entries} entries, head {head}")
    print(_model_and_threshold(settings))
    for e in evidence:
        score = "" if e.score is None else f"{e.score:.3f}"
        mark = marks.get(e.id, Marks())
        tags = f"  [{', '.join(mark.tags)}]" if mark.tags else ""
        print(f"  {e.id:>5} {'★' if mark.bookmarked else ' '}{e.status:<9} {score:>6}  {e.verdict:<13} "
              f"{safe(e.original_name)}{safe(tags)}")
    print("\n".join(safe(line) for line in calibration))
    return OK


def _model_and_threshold(settings: dict) -> str:
    """One line on what gives the case's results their meaning: its model and default threshold."""
    from declip_desktop.common.facts import DEFAULT_THRESHOLD

    model = settings.get("model")
    if isinstance(model, dict) and model.get("name"):
        sha = model.get("sha256")
        pinned = f"{model['name']} (SHA-256 {sha[:12]}…)" if sha else f"{model['name']} (by name only)"
    elif isinstance(model, str) and model:
        pinned = f"{model} (by name only)"
    else:
        pinned = "none yet (the first analysis pins the default model)"
    threshold = settings.get("threshold")
    shown = f"{threshold:g}" if isinstance(threshold, (int, float)) else f"{DEFAULT_THRESHOLD:g} (standard)"
    return f"Model: {pinned}; default threshold {shown}"


def _verify(args: argparse.Namespace) -> int:
    """Exit 0: clean; 1: problems found; 2: could not verify (and why)."""
    import sqlite3

    from declip_desktop.cases import CaseError

    try:
        with _open(args, read_only=True) as case:
            report = case.verify(anchors=args.anchor or ())
    except CaseError as exc:
        return _err(f"could not verify: {exc}")
    except (sqlite3.DatabaseError, OSError) as exc:
        return _err(f"could not verify {args.dir}: {exc}. The case database or folder could not be read; "
                    "verify a copy, or restore the case from a backup.")
    if args.json:
        print(terminal_json(report.as_dict(), indent=2))
    else:
        anchors = f", {report.anchors_checked} anchors" if report.anchors_checked else ""
        print(f"Checked {report.evidence_checked} evidence files, {report.maps_checked} result maps, "
              f"{report.reports_checked} reports, {report.audit_entries} audit entries{anchors} "
              f"(head {report.audit_head}).")
        for p in report.problems:
            print(f"PROBLEM [{p.kind}] {safe(p.object)}: {safe(p.detail)}")
        for n in report.notices:
            print(f"NOTE [{n.kind}] {safe(n.object)}: {safe(n.detail)}")
        for line in report.signed_by:
            print(f"SIGNED {safe(line)}")
        if report.ok:
            print("OK: the database matches its audit trail, nothing changed, nothing missing, history intact"
                  + (" and still holding every anchor." if report.anchors_checked else "."))
        else:
            print(f"{len(report.problems)} problem(s) found.")
    return OK if report.ok else SOME_FAILED


@_guard
def _anchor(args: argparse.Namespace) -> int:
    from pathlib import Path

    from declip_desktop.cases.anchors import make_receipt
    from declip_desktop.common.outputs import write_output

    signer = None
    if args.sign or args.key:
        from declip_desktop.cli.key import load_signer

        signer = load_signer(args.key, args.passphrase_file)
    with _open(args, read_only=True) as case:
        receipt = make_receipt(case, signer)
    out = Path(args.out).expanduser().absolute()
    # A destination the user names: the common guard (never into a case, never replaced, no links).
    write_output(out, (jsonout.dumps(receipt, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
                 what="receipt", can_force=False)
    print(f"Anchor receipt for case {receipt['case_number']}: entry {receipt['audit_count']}, head "
          f"{receipt['audit_head']}, made {receipt['made_at']}" + (f", signed by {signer.name}" if signer else ""))
    print(f"Written to {out}. Keep it outside the case (mail it, print it); check it later with "
          f"`declip case verify {args.dir} --anchor {out.name}`.")
    return OK


@_guard
def _recover(args: argparse.Namespace) -> int:
    from declip_desktop.cases import Case

    with Case.open(args.dir, analyst=args.analyst) as case:  # opening for writing finishes the job
        done = case.last_recovery
    print(f"Recovered: {done['finished']} file(s) moved into place, {done['discarded']} scratch file(s) removed, "
          f"{done['requeued']} interrupted analysis item(s) queued again.")
    return OK


@_guard
def _export(args: argparse.Namespace) -> int:
    from declip_desktop.cases import Case, CaseError
    from declip_desktop.cases.export import record_export, write_export

    with _open(args, read_only=True) as case, case.snapshot():  # one committed state; never waits for a writer
        out, details = write_export(case, args.out, force=args.force)
    print(f"Exported to {safe(out)}")
    try:
        with Case.open(args.dir, analyst=args.analyst) as case:
            record_export(case, out, details, analyst=args.analyst, wait_s=2.0)
    except CaseError as exc:
        # The file is complete; only its audit entry is missing. Say so, and why.
        print(f"note: the export was not recorded in the case's audit log ({safe(exc)}); its SHA-256 is "
              f"{details['sha256']}.", file=sys.stderr)
    return OK


# ---------------------------------------------------------------------- parser
def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("case", help="create, import, analyse, check and export case folders",
                                   description="Work with case folders (evidence, results, audit trail).")
    sub = parser.add_subparsers(dest="case_command", metavar="ACTION", required=True)

    def add(name: str, func: Any, help_text: str, changes: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("dir", metavar="DIR", help="the case folder")
        if changes:
            p.add_argument("--analyst", help="who does this (default: the case's analyst); written to the audit log")
        p.set_defaults(func=func)
        return p

    p = sub.add_parser("create", help="create a new case folder", description="Create a new, empty case folder.")
    p.add_argument("dir", metavar="DIR", help="new or empty folder")
    p.add_argument("--number", required=True, help="case number, e.g. 2026-0141")
    p.add_argument("--title", required=True, help="short title of the case")
    p.add_argument("--analyst", required=True, help="the analyst responsible for the case")
    p.add_argument("--description", default="", help="what the case is about (shown in reports)")
    p.set_defaults(func=_create)

    p = add("import", _import, "import image files and folders (recursively) as evidence")
    p.add_argument("paths", metavar="PATH", nargs="+", help="files or folders to import")
    p.add_argument("--max-pixels", type=int, default=None, help="reject images larger than this many pixels")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add("analyze", _analyze, "analyse queued evidence with a model (resumes where it stopped)")
    p.add_argument("--model", help="installed model name or file (default: the model the case is pinned to, else "
                   "the default model); the case is pinned to the model used, in the audit log")
    p.add_argument("--fast", action="store_true", help="faster, slightly less precise inference")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, mps")
    p.add_argument("--batch-size", type=int, default=4, help="images per forward pass (default: 4)")
    importlib.import_module("declip_desktop.cli.tiling_args").add_tiling_arguments(p)
    importlib.import_module("declip_desktop.cli.cluster").add_analyze_arguments(p)
    importlib.import_module("declip_desktop.cli.case_robustness").add_analyze_arguments(p)

    p = add("threshold", _threshold, "show or set the case's default threshold (items set while reviewing keep theirs)")
    p.add_argument("value", metavar="VALUE", nargs="?", help="new default threshold, 0…1 (omit to show the current one)")

    p = add("status", _status, "show the case, its evidence and their state", changes=False)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add("verify", _verify, "replay the audit trail against the database, re-check every hash (reads only; "
            "exit 0 clean, 1 problems, 2 could not verify)", changes=False)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--anchor", metavar="FILE", nargs="+", action="extend",
                   help="receipts (`declip case anchor`), report signatures or PDF reports kept outside the case: "
                        "prove the history still holds each one's entry")

    p = add("anchor", _anchor, "write a receipt of the audit trail's head to keep outside the case", changes=False)
    p.add_argument("--out", required=True, metavar="FILE", help="new file for the receipt (never replaced)")
    p.add_argument("--sign", action="store_true", help="sign the receipt with your key (`declip key create`)")
    p.add_argument("--key", metavar="NAME", help="which key to sign with (implies --sign)")
    p.add_argument("--passphrase-file", metavar="FILE", help="read the key's passphrase from FILE")

    add("recover", _recover, "finish what a stopped import or analysis left (read-only commands never do)")

    p = add("export", _export, "export all results (hashes, scores, thresholds, verdicts, models)")
    p.add_argument("--out", required=True, metavar="FILE", help="FILE.csv or FILE.json (not inside a case "
                   "folder except its exports/; never over evidence, an original or through a symbolic link)")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")

    # Hook for `declip case examine …` (metadata, alerts, C2PA, classical views).
    importlib.import_module("declip_desktop.cli.case_examine").register(sub)

    # Hook for `declip case report …`, owned by the reports engineer.
    if importlib.util.find_spec("declip_desktop.cli.case_report") is not None:
        importlib.import_module("declip_desktop.cli.case_report").register(sub)
    importlib.import_module("declip_desktop.cli.case_set").register(sub)
    importlib.import_module("declip_desktop.cli.case_calibrate").register(sub)
    importlib.import_module("declip_desktop.cli.case_annotate").register(sub)
    importlib.import_module("declip_desktop.cli.case_tag").register(sub)
    importlib.import_module("declip_desktop.cli.case_robustness").register(sub)  # agreement, stability
    importlib.import_module("declip_desktop.cli.reproduce").register_case(sub)
