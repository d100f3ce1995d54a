"""`declip case analyze DIR --models A,B…`, `declip case agreement DIR` and `declip case stability DIR ID…`.

Registered by `cli/case.py`. Agreement across models: several installed models over the same
evidence, each result stored as its own analysis (`analysis.multi_model`), the figures computed
from the stored maps (`cases.model_agreement`). Stability: re-analysis of re-compressed copies
(`analysis.stability`), stored and audit-logged. Heavy imports (torch) only inside handlers.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from declip_desktop.cli import FATAL, OK, SOME_FAILED, jsonout
from declip_desktop.common.text import terminal_json, terminal_safe as safe


def _err(message: str) -> int:
    print(f"error: {safe(message.rstrip('.'))}.", file=sys.stderr)
    return FATAL


def add_analyze_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", metavar="A,B,…",
                   help="analyse with several installed models in one run (for agreement across models): each "
                        "result is stored with its model card; the case's pinned model (else the first named) "
                        "is the primary one shown, the others are secondary")


def _engine() -> tuple[Any, Any]:
    from declip_desktop.modelstore.loading import load_localizer, resolve_model

    return load_localizer, resolve_model


def analyze_models(args: argparse.Namespace) -> int:
    """`case analyze --models`: every model in turn over what each has not analysed yet."""
    from declip_desktop.analysis import AnalysisError
    from declip_desktop.analysis.multi_model import MultiModelRun, parse_models
    from declip_desktop.cases import Case, CaseError
    from declip_desktop.cli.progress_output import ProgressOutput

    if args.model:
        return _err("give either --model or --models, not both")
    if getattr(args, "cluster", None):
        return _err("--models runs on this machine only; run one model at a time with --cluster")
    try:
        names = parse_models(args.models)
        localizer, resolve = _engine()
    except AnalysisError as exc:
        return _err(str(exc))
    except ImportError as exc:
        return _err(f"the analysis engine is not available ({exc}). Reinstall DeCLIP Desktop")
    try:
        case = Case.open(args.dir, analyst=args.analyst)
    except CaseError as exc:
        return _err(str(exc))
    with case:
        run = MultiModelRun(case, names, localizer_factory=localizer, model_resolver=resolve,
                            device=args.device or "auto", fast=args.fast, batch_size=args.batch_size,
                            analyst=args.analyst, on_status=lambda m: print(m, file=sys.stderr, flush=True))
        out: ProgressOutput | None = None

        def plan(name: str, role: str, step: int, steps: int) -> None:
            nonlocal out
            if out is not None:
                out.close()
                out = None
            print(f"Model {step}/{steps}: {name} ({role})", file=sys.stderr, flush=True)

        def progress(event: Any) -> None:
            nonlocal out
            if out is None:
                out = ProgressOutput(event.total, "image", "Analysing")
            if event.status in ("done", "failed"):
                what = f"done, score {event.score:.3f}" if event.status == "done" else f"failed: {event.error}"
                out.item(event.done, safe(f"evidence {event.evidence_id}: {what}"), event.eta_seconds)

        try:
            summary = run.run(on_progress=progress, on_plan=plan,
                              on_notice=lambda level, msg, _d: print(f"{level}: {msg}", file=sys.stderr))
        except (AnalysisError, CaseError) as exc:
            return _err(str(exc))
        finally:
            if out is not None:
                out.close()
    for name, role, s in summary.runs:
        print(f"{name} ({role}): analysed {s.done}, failed {s.failed}, still queued {s.remaining} "
              f"({s.seconds:.1f} s on {s.device}).")
    print(f"Primary model (shown in the inspector and the report): {summary.primary}. "
          f"See the agreement with `declip case agreement {args.dir}`.")
    if summary.out_of_memory:
        return _err(summary.runs[-1][2].message)
    return SOME_FAILED if summary.failed else OK


def _evidence_ids(case: Any, given: list[int] | None) -> list[int]:
    from declip_desktop.cases import CaseError

    known = {e.id for e in case.evidence_list()}
    if not given:
        return sorted(known)
    missing = [i for i in given if i not in known]
    if missing:
        raise CaseError(f"no evidence with ID {', '.join(map(str, missing))} in this case "
                        "(`declip case status DIR` lists them)")
    return list(dict.fromkeys(given))


def _calibrated_thresholds(case: Any) -> dict[str, float]:
    """{model SHA-256: the pixel threshold of its current case calibration} (cases.calibration)."""
    from declip_desktop.cases.calibration import current_calibrations

    return {sha: float(cal.pixel.threshold) for sha, cal in current_calibrations(case).items()}


def _agreement(args: argparse.Namespace) -> int:
    from declip_desktop.cases import Case, CaseError
    from declip_desktop.cases.case_settings import case_threshold, effective_threshold
    from declip_desktop.cases.model_agreement import item_agreement, summary_text

    if not 0.0 < args.min_overlap <= 1.0:
        return _err(f"--min-overlap {args.min_overlap} must be above 0 and at most 1")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        return _err(f"--threshold {args.threshold} is outside 0…1; give a value between 0 and 1")
    failures: list[tuple[Any, str]] = []
    try:
        with Case.open(args.dir, read_only=True) as case, case.snapshot():
            default = case_threshold(case)
            per_model = _calibrated_thresholds(case) if args.calibrated else {}
            items = []
            for eid in _evidence_ids(case, args.evidence):
                ev = case.get_evidence(eid)
                threshold = args.threshold if args.threshold is not None else effective_threshold(ev, default)[0]
                try:
                    agg = item_agreement(case, eid, threshold, thresholds=per_model, min_overlap=args.min_overlap,
                                         regions_of=args.regions_of)
                except (CaseError, ValueError) as exc:  # e.g. a changed map: this item only
                    failures.append((ev, str(exc)))
                    continue
                items.append((ev, threshold, agg))
    except CaseError as exc:
        return _err(str(exc))
    for ev, error in failures:
        print(safe(f"evidence {ev.id} {ev.original_name}: not compared: {error}"), file=sys.stderr)
    if args.json:
        doc = []
        for ev, threshold, agg in items:
            entry: dict[str, Any] = {"evidence_id": ev.id, "name": ev.original_name, "threshold": threshold}
            if agg is None:
                entry["models"] = None
            else:
                s = agg.summary
                entry.update({
                    "models": [{"name": m.name, "sha256": m.sha256, "analysis_id": m.analysis.id,
                                "threshold": m.threshold} for m in agg.models],
                    "min_overlap": agg.min_overlap,
                    "flagged_pct": {"any": s.any_pct, "all": s.all_pct, "one_only": s.one_pct},
                    "all_of_flagged_pct": s.overlap_pct, "mean_spread_flagged": s.mean_spread,
                    "regions": [{"index": r.index, "area_px": r.area_px, "bbox": list(r.bbox),
                                 "overlap": {agg.models[i].name: round(f, 6) for i, f in enumerate(r.overlap)},
                                 "flagged_by": agg.names(r), "single_model": r.single_model}
                                for r in agg.regions],
                })
            doc.append(entry)
        print(terminal_json(doc, indent=2))
        return SOME_FAILED if failures else OK
    for ev, threshold, agg in items:
        print(safe(f"Evidence {ev.id} {ev.original_name} (threshold {threshold:g}):"))
        if agg is None:
            print("  fewer than two models analysed it (`declip case analyze DIR --models A,B`)")
            continue
        print("  models: " + ", ".join(safe(f"{m.name} (threshold {m.threshold:.3f})") for m in agg.models)
              + "; the first is the one shown")
        print("  " + safe(summary_text(agg)))
        for r in agg.regions[:args.max_regions]:
            x, y, w, h = r.bbox
            print(safe(f"  region {r.index}: {r.area_px} px at {x},{y} {w}×{h}: {agg.region_text(r)}"))
    return SOME_FAILED if failures else OK


def _stability(args: argparse.Namespace) -> int:
    from declip_desktop.analysis import AnalysisError, AnalysisSession
    from declip_desktop.analysis.stability import check_many, describe_region
    from declip_desktop.cases import Case, CaseError

    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        return _err(f"--threshold {args.threshold} is outside 0…1; give a value between 0 and 1")
    try:
        localizer_cls, resolve = _engine()
    except ImportError as exc:
        return _err(f"the analysis engine is not available ({exc}). Reinstall DeCLIP Desktop")
    try:
        case = Case.open(args.dir, analyst=args.analyst)
    except CaseError as exc:
        return _err(str(exc))
    with case:
        try:
            ids = _evidence_ids(case, args.evidence)
            session = AnalysisSession(case, model=args.model, device=args.device or "auto", fast=args.fast,
                                      batch_size=4, analyst=args.analyst, localizer_factory=localizer_cls,
                                      model_resolver=resolve)
            choice = session.choose_model()
            print(f"Model: {choice.describe()}", file=sys.stderr)
            loc = session.localizer(choice)

            def item(done: int, total: int, eid: int, check: Any, error: str | None) -> None:
                text = "failed: " + error if error else f"{len(check.regions)} region(s) checked"
                print(safe(f"[{done}/{total}] evidence {eid}: {text}"), file=sys.stderr, flush=True)

            summary = check_many(case, loc, ids, threshold=args.threshold, analyst=args.analyst, on_item=item)
        except (AnalysisError, CaseError) as exc:
            return _err(str(exc))
    if args.json:
        print(jsonout.dumps({
            "checks": [{"id": c.id, "evidence_id": c.evidence_id, "analysis_id": c.analysis_id,
                        "model_name": c.model_name, "model_sha256": c.model_sha256, "threshold": c.threshold,
                        "min_iou": c.min_iou, "variants": c.variants, "regions": [r.as_dict() for r in c.regions]}
                       for c in summary.checks],
            "failures": [{"evidence_id": i, "error": e} for i, e in summary.failures],
        }, indent=2))
    else:
        for c in summary.checks:
            labels = c.variant_labels()
            print(f"Evidence {c.evidence_id} (analysis {c.analysis_id}, threshold {c.threshold:g}, "
                  f"persists = IoU ≥ {c.min_iou:g}): {len(c.regions)} region(s)")
            for r in c.regions[:args.max_regions]:
                x, y, w, h = r.bbox
                print(safe(f"  region {r.index}: {r.area_px} px at {x},{y} {w}×{h}: {describe_region(r, labels)}"))
        for eid, error in summary.failures:
            print(safe(f"evidence {eid}: not checked: {error}"), file=sys.stderr)
    return SOME_FAILED if summary.failures else OK


def register(sub: argparse._SubParsersAction) -> None:
    def add(name: str, func: Any, text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("dir", metavar="DIR", help="the case folder")
        p.set_defaults(func=func)
        return p

    p = add("agreement", _agreement, "agreement across models: per item, how much of the image the models flag "
            "together and which models flag each region (reads only)")
    p.add_argument("evidence", metavar="EVIDENCE", type=int, nargs="*", help="evidence IDs (default: all)")
    p.add_argument("--threshold", type=float, help="one threshold for every model (default: each item's, by the "
                   "case's rule)")
    p.add_argument("--min-overlap", type=float, default=0.3, help="a model flags a region when at least this "
                   "fraction of its pixels is above the model's threshold (default: 0.3)")
    p.add_argument("--calibrated", action="store_true",
                   help="compare each model with the pixel threshold of its case calibration (`declip case "
                        "calibrate`); models without one use the item's threshold")
    p.add_argument("--regions-of", default="shown", metavar="WHOSE",
                   help="whose regions to list: shown (the result the inspector and the report show; default), "
                        "union (pixels any model flags) or a model's name")
    p.add_argument("--max-regions", type=int, default=20, help="regions listed per item (default: 20)")
    p.add_argument("--json", action="store_true", help="machine-readable output (every region)")

    p = add("stability", _stability, "stability under re-compression: re-analyse copies of each item (JPEG 90 "
            "and 75, down-scaled 0.75, blurred) and store in how many each region persists")
    p.add_argument("evidence", metavar="EVIDENCE", type=int, nargs="+", help="evidence IDs to check")
    p.add_argument("--analyst", help="who does this (default: the case's analyst); written to the audit log")
    p.add_argument("--model", help="model to re-analyse with (default: the case's model); the item needs a stored "
                   "result of it")
    p.add_argument("--threshold", type=float, help="regions at this threshold (default: each item's, by the "
                   "case's rule)")
    p.add_argument("--fast", action="store_true", help="faster, slightly less precise inference")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, mps")
    p.add_argument("--max-regions", type=int, default=20, help="regions printed per item (default: 20)")
    p.add_argument("--json", action="store_true", help="machine-readable output (every region)")


__all__ = ["add_analyze_arguments", "analyze_models", "register"]
