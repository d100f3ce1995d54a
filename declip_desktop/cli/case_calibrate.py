"""`declip case calibrate DIR …`: per-case calibration on reference-authentic evidence.

`--references ID…` marks those items as references (audit-logged) and calibrates on exactly them;
without it the items already marked are used. `--list` shows the calibrations (the current one of
each model and the history), `--clear` clears them, `--unmark ID…` removes the reference mark.
`case status` prints the calibrated reading of each item through `status_summary` / `status_json`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from declip_desktop.cli import FATAL, OK
from declip_desktop.common.text import terminal_json, terminal_safe as safe


def _err(message: str) -> int:
    print(f"error: {safe(message)}", file=sys.stderr)
    return FATAL


def _pct(rate: float) -> str:
    from declip_desktop.common.calibration import format_percent

    return format_percent(100.0 * rate)


def describe(cal: Any) -> list[str]:
    """The lines that state a calibration (the CLI's and `case status`'s wording)."""
    conf = f"{cal.confidence * 100:g} %"
    lines = [
        f"Calibration {cal.id} of model {cal.model_name} (SHA-256 {cal.model_sha256[:12]}…) on {cal.n} "
        f"reference{'s' if cal.n != 1 else ''}, {cal.created_at} by {cal.created_by}"
        + (f"; CLEARED {cal.cleared_at} by {cal.cleared_by}" if cal.cleared_at else ""),
        f"  image score threshold {cal.image.threshold:.4f} for {_pct(cal.image_rate)} of authentic images "
        f"({conf} bootstrap interval {cal.image.low:.4f}–{cal.image.high:.4f})",
        f"  pixel threshold {cal.pixel.threshold:.4f} for {_pct(cal.pixel_rate)} of authentic pixels "
        f"({conf} bootstrap interval {cal.pixel.low:.4f}–{cal.pixel.high:.4f}; on the references "
        f"{_pct(cal.pixel.reference_rate)})",
        f"  bootstrap: {cal.resamples} resamples of the references, seed {cal.seed}; method {cal.method}",
        "  references: " + ", ".join(f"{r.evidence_id} {r.name} ({r.sha256[:12]}…, score {r.score:.3f})"
                                     for r in cal.references),
    ]
    if cal.warning:
        lines.append(f"  WARNING: {cal.warning}")
    return lines


def readings(case: Any, with_regions: bool = True) -> list[dict[str, Any]]:
    """Every questioned item's calibrated reading (references are not questioned items)."""
    from declip_desktop.cases.calibration import current_calibrations, reading, roles
    from declip_desktop.common.regions import find_regions

    cals = current_calibrations(case)
    marked = roles(case)
    out = []
    if not cals:
        return out
    for ev in case.evidence_list():
        if ev.id in marked:
            continue
        r = reading(case, ev.id, cals)
        if r is None:
            continue
        row = {"evidence_id": ev.id, "name": ev.original_name, "score": r.score, "calibration_id": r.calibration.id,
               "model_sha256": r.calibration.model_sha256, "above_references": r.standing.below,
               "n": r.standing.n, "percent_above": round(r.standing.percent, 2),
               "above_image_threshold": r.above_image_threshold, "pixel_threshold": r.pixel_threshold,
               "text": r.text(), "notes": r.notes}
        if with_regions:
            prob = case.load_map(case.get_analysis(r.analysis_id))
            found = find_regions(prob, r.pixel_threshold, with_contours=False)
            row["regions_at_pixel_threshold"] = len(found)
            row["flagged_pct_at_pixel_threshold"] = round(sum(g.area_pct for g in found), 4)
        out.append(row)
    return out


def _reading_line(row: dict[str, Any]) -> str:
    above = "above" if row["above_image_threshold"] else "not above"
    regions = ""
    if "regions_at_pixel_threshold" in row:
        regions = (f"; {row['regions_at_pixel_threshold']} region(s), {row['flagged_pct_at_pixel_threshold']:g} % of "
                   f"the image at the calibrated pixel threshold")
    return (f"  {row['evidence_id']:>5}  {safe(row['name'])}: {row['text']}; {above} the calibrated image "
            f"threshold{regions}")


def status_json(case: Any) -> dict[str, Any]:
    """What `case status --json` adds: roles, current calibrations and readings (no map is read)."""
    from declip_desktop.cases.calibration import current_calibrations, roles

    return {"roles": {str(k): v for k, v in roles(case).items()},
            "calibrations": [c.as_dict() for c in current_calibrations(case).values()],
            "calibrated": readings(case, with_regions=False)}


def status_lines(case: Any) -> list[str]:
    from declip_desktop.cases.calibration import current_calibrations, reference_ids

    refs = reference_ids(case)
    cals = current_calibrations(case)
    if not refs and not cals:
        return ["Calibration: none (mark reference-authentic evidence: `declip case calibrate DIR --references ID …`)"]
    lines = [f"Reference-authentic evidence: {', '.join(map(str, refs)) or 'none'} (not questioned items)"]
    for cal in cals.values():
        lines += describe(cal)
    lines += [_reading_line(r) for r in readings(case, with_regions=False)]
    from declip_desktop.cases.calibration import roles, uncalibrated_reason

    marked = roles(case)
    for ev in case.evidence_list():  # analysed with a model no calibration is for: say so, not silence
        why = None if ev.id in marked else uncalibrated_reason(case, ev.id, cals)
        if why:
            lines.append(f"  {ev.id:>5}  {safe(ev.original_name)}: calibrated reading {why}")
    return lines


def _calibrate(args: argparse.Namespace) -> int:
    from declip_desktop.cases import Case, CaseError
    from declip_desktop.cases import calibration as cal

    try:
        if args.list:
            with Case.open(args.dir, read_only=True) as case, case.snapshot():
                history = cal.calibrations(case)
                refs = cal.reference_ids(case)
                current = {c.id for c in cal.current_calibrations(case).values()}
            if args.json:
                print(terminal_json({"references": refs, "current": sorted(current),
                                     "calibrations": [c.as_dict() for c in history]}, indent=2))
                return OK
            print(f"Reference-authentic evidence: {', '.join(map(str, refs)) or 'none'}")
            if not history:
                print("No calibration yet.")
            for c in history:
                state = "current" if c.id in current else ("cleared" if c.cleared_at else "superseded")
                print(f"[{state}]")
                print("\n".join(safe(line) for line in describe(c)))
            return OK
        with Case.open(args.dir, analyst=args.analyst) as case:
            if args.unmark:
                changed = cal.set_reference(case, args.unmark, reference=False, analyst=args.analyst)
                print(f"Unmarked {len(changed)} item(s) as reference: {', '.join(map(str, changed)) or 'none changed'}."
                      " Calibrations made with them stay until you recalibrate or --clear.")
                if not (args.references or args.clear or args.recalibrate):
                    return OK
            if args.clear:
                cleared = cal.clear_calibration(case, args.model_sha256, analyst=args.analyst)
                print(f"Cleared {len(cleared)} calibration(s); results read uncalibrated again.")
                return OK
            made = cal.calibrate(case, args.references, image_rate=args.false_alarm, pixel_rate=args.pixel_rate,
                                 seed=args.seed, resamples=args.resamples, model_sha256=args.model_sha256,
                                 analyst=args.analyst)
            rows = readings(case)
    except CaseError as exc:
        return _err(str(exc))
    if args.json:
        print(terminal_json({"calibration": made.as_dict(), "readings": rows}, indent=2))
        return OK
    print("\n".join(safe(line) for line in describe(made)))
    if rows:
        print("Questioned items:")
        print("\n".join(_reading_line(r) for r in rows))
    print("A calibrated rate holds only for images like the references (same camera, platform, processing).")
    return OK


def register(case_subparsers: argparse._SubParsersAction) -> None:
    from declip_desktop.common import calibration as stats

    help_text = "calibrate the case's thresholds on reference-authentic evidence (false-alarm rates; audit-logged)"
    p = case_subparsers.add_parser("calibrate", help=help_text, description=help_text + ". A calibrated rate holds "
                                   "only for images like the references (same camera, platform or source).")
    p.add_argument("dir", metavar="DIR", help="the case folder")
    p.add_argument("--references", metavar="ID", nargs="+", type=int,
                   help="evidence known to be authentic: marked as references and calibrated on (default: the items "
                        "already marked)")
    p.add_argument("--false-alarm", type=float, default=stats.DEFAULT_IMAGE_RATE, metavar="RATE",
                   help=f"share of authentic images allowed above the image threshold (default "
                        f"{stats.DEFAULT_IMAGE_RATE:g})")
    p.add_argument("--pixel-rate", type=float, default=stats.DEFAULT_PIXEL_RATE, metavar="RATE",
                   help=f"share of authentic pixels allowed above the pixel threshold (default "
                        f"{stats.DEFAULT_PIXEL_RATE:g})")
    p.add_argument("--seed", type=int, default=stats.DEFAULT_SEED, help="bootstrap seed (stored; default "
                   f"{stats.DEFAULT_SEED})")
    p.add_argument("--resamples", type=int, default=stats.DEFAULT_RESAMPLES,
                   help=f"bootstrap resamples (stored; default {stats.DEFAULT_RESAMPLES})")
    p.add_argument("--model-sha256", metavar="SHA256", help="the model to calibrate when the references have "
                   "results of several")
    p.add_argument("--list", action="store_true", help="list the references and every calibration (reads only)")
    p.add_argument("--clear", action="store_true", help="clear the current calibrations (of --model-sha256 only, "
                   "if given); the history stays")
    p.add_argument("--unmark", metavar="ID", nargs="+", type=int, help="remove the reference mark from these items")
    p.add_argument("--recalibrate", action="store_true", help="with --unmark: calibrate again on what stays marked")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--analyst", help="who does this (default: the case's analyst); written to the audit log")
    p.set_defaults(func=_calibrate)
