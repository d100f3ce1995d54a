"""Gather what a report shows from a `Case` (engineer B's API) into `reports.model` records."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from declip_desktop.cases.case_settings import case_threshold, effective_threshold
from declip_desktop.cases.errors import CaseError
from declip_desktop.cases.tags import Marks, all_marks
from declip_desktop.common.facts import card_is_demo, demo_label
from declip_desktop.common.model_card import TRAINING_SETS
from declip_desktop.common.score_meaning import score_meaning
from declip_desktop.common.version import software_id
from declip_desktop.reports.annotation_pages import collect_annotations
from declip_desktop.reports.calibration_section import collect_calibration
from declip_desktop.reports.forensics_rows import forensics_rows
from declip_desktop.reports.robustness_rows import robustness_for
from declip_desktop.reports.model import (
    AnalysisInfo,
    AuditRow,
    EvidenceItem,
    Examiner,
    ModelInfo,
    ReportData,
)
from declip_desktop.reports.pinned_pages import collect_pins
from declip_desktop.reports.tiling_rows import tiling_rows


class SelectionError(ValueError):
    """The evidence IDs or threshold asked for do not fit the case."""


def check_threshold(threshold: float | None) -> float | None:
    if threshold is None:
        return None
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise SelectionError(f"threshold {threshold!r} is not a number. Give a value between 0 and 1") from None
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise SelectionError(f"threshold {value} is outside 0…1. Give a value between 0 and 1, e.g. 0.5")
    return value


def select_evidence(case, evidence_ids: Iterable[int] | None) -> list:
    """The case's evidence in ID order, or the requested IDs in the order given (duplicates dropped)."""
    everything = case.evidence_list()
    if evidence_ids is None:
        return everything
    by_id = {ev.id: ev for ev in everything}
    chosen, missing, seen = [], [], set()
    for raw in evidence_ids:
        ev_id = int(raw)
        if ev_id in seen:
            continue
        seen.add(ev_id)
        if ev_id in by_id:
            chosen.append(by_id[ev_id])
        else:
            missing.append(ev_id)
    if missing:
        known = ", ".join(str(i) for i in sorted(by_id)) or "none"
        raise SelectionError(
            f"no evidence with ID {', '.join(map(str, missing))} in case {case.info.number} "
            f"(its evidence IDs: {known}). Run `declip case status DIR` to list them"
        )
    return chosen


def model_info(name: str, sha256: str, parameters: dict) -> ModelInfo:
    """The model as the result recorded it: the card snapshot stored with the analysis
    (`parameters["model_card"]`), never the models installed when the report is made."""
    card = parameters.get("model_card") if isinstance(parameters, dict) else None
    if not isinstance(card, dict) or card.get("sha256") != sha256:
        # Results stored before snapshots existed (or a snapshot of another model): say only
        # what the result itself records.
        return ModelInfo(name=name, sha256=sha256)
    training = card.get("training_set")
    # A known key reads as its data set's name; anything else a snapshot holds is printed as text.
    training = TRAINING_SETS.get(training, training) if isinstance(training, str) else (
        None if training is None else str(training))
    return ModelInfo(
        name=str(card.get("name") or name),
        sha256=sha256,
        backbone=card.get("backbone") or None,
        layer=card.get("layer"),
        decoder=card.get("decoder") or None,
        training_set=training,
        kind=card.get("kind"),
        demo=card_is_demo(card),
        label=demo_label(card) or card.get("label") or None,
        card_found=True,
        software_version=card.get("software_version"),
        score_meaning=score_meaning(card),
    )


#: Values every item's page prints already (or derived from its hash): left out of the appendix's
#: summary column so an entry reads in a line or two; the case's audit log keeps them all.
_SHOWN_ELSEWHERE = frozenset({"stored_name", "width", "height", "mode", "format", "metadata_sha256", "imported_by",
                              "imported_at", "uuid", "schema_version"})


def _replay_only() -> frozenset:
    from declip_desktop.cases.audit import REPLAY_ONLY_KEYS

    return REPLAY_ONLY_KEYS | _SHOWN_ELSEWHERE


def _details_text(details: dict) -> str:
    from declip_desktop.cases.audit import REPLAY_ONLY_KEYS

    parts = []
    for key, value in details.items():
        if key in REPLAY_ONLY_KEYS or key in _SHOWN_ELSEWHERE:
            continue  # repeats the entry's time/actor or the item's page; verify uses it, readers need not
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False, sort_keys=True)
        parts.append(f"{key}: {value}")
    return "; ".join(parts)


def _file_times(metadata: dict | None) -> dict:
    times = (metadata or {}).get("file_times")
    return {k: str(v) for k, v in times.items()} if isinstance(times, dict) else {}


def _examiner(case) -> Examiner:  # noqa: ANN001 - Case
    from declip_desktop.cases.examiner import get_examiner

    try:
        ex = get_examiner(case)
    except CaseError as exc:
        raise SelectionError(str(exc).rstrip(".")) from None
    return Examiner(name=ex.name, role=ex.role, organisation=ex.organisation, requester=ex.requester,
                    reference=ex.reference, question=ex.question, declaration=ex.declaration_text())


def collect_report_data(
    case,
    evidence_ids: Sequence[int] | None = None,
    threshold: float | None = None,
    generated_by: str | None = None,
) -> ReportData:
    """`threshold` (one value for this report) overrides every item's; otherwise each item gets
    the case's rule (`cases.case_settings.effective_threshold`: its own, else the case default),
    the same rule the inspector shows — so the GUI and the CLI report the same values."""
    override = check_threshold(threshold)
    try:
        case_default = case_threshold(case)
    except CaseError as exc:
        raise SelectionError(str(exc).rstrip(".")) from None
    chosen = select_evidence(case, evidence_ids)
    calibration = collect_calibration(case)
    if evidence_ids is None:  # references are not questioned items: listed in the calibration section
        chosen = [ev for ev in chosen if ev.id not in calibration.reference_ids] or chosen
    info = case.info
    marks = all_marks(case)
    items: list[EvidenceItem] = []
    for ev in chosen:
        latest = case.latest_analysis(ev.id)
        analysis = None
        load = None
        if latest is not None:
            model = model_info(latest.model_name, latest.model_sha256, latest.parameters or {})
            analysis = AnalysisInfo(
                status="done" if latest.error is None else "failed",
                model=model,
                score=latest.score,
                error=latest.error,
                parameters=dict(latest.parameters or {}),
                device=latest.device,
                seconds=latest.seconds,
                started=latest.started,
                finished=latest.finished,
                software_version=latest.software_version,
            )
            if latest.error is None and latest.map_file:
                load = (lambda a=latest: case.load_map(a))
        if override is not None:
            thr, source = override, "report"
        else:
            thr, source = effective_threshold(ev, case_default)
        items.append(
            EvidenceItem(
                id=ev.id,
                name=ev.original_name,
                sha256=ev.sha256,
                md5=ev.md5,
                size=ev.size,
                format=ev.format,
                width=ev.width,
                height=ev.height,
                metadata=ev.metadata or {},
                status=ev.status,
                verdict=ev.verdict,
                notes=ev.notes or "",
                threshold=thr,
                threshold_source=source,
                analysis=analysis,
                image_path=case.evidence_file(ev),
                load_map=load,
                imported_by=ev.imported_by,
                imported_at=ev.imported_at,
                reviewed_by=ev.reviewed_by,
                reviewed_at=ev.reviewed_at,
                forensics=forensics_rows(case, ev.id) + calibration.rows_for(case, ev),
                pinned=collect_pins(case, ev),
                original_path=ev.original_path or None,
                file_times=_file_times(ev.metadata),
                annotations=collect_annotations(case, ev),
                tags=marks.get(ev.id, Marks()).tags,
                bookmarked=marks.get(ev.id, Marks()).bookmarked,
                tiling=tiling_rows(case, ev.id, thr),
                robustness=robustness_for(case, ev, thr),  # agreement, stability (reports.robustness_rows)
            )
        )
    ids = [ev.id for ev in chosen]
    whole_case = evidence_ids is None or len(chosen) == len(case.evidence_list())
    entries = case.audit_entries(None)
    head_hash, head_count = case.audit_head()
    # Case-level entries (creation, settings, earlier reports) plus those of the chosen evidence;
    # entries of evidence left out of the report are left out of its appendix too.
    wanted = set(ids) | set(calibration.reference_ids)
    audit_rows = [
        AuditRow(
            time=e.timestamp,
            actor=e.actor,
            action=e.action,
            object=e.object,
            details=_details_text(e.details or {}),
            fields={k: v for k, v in (e.details or {}).items() if k not in _replay_only()},
            entry=dataclasses.asdict(e),
        )
        for e in entries
        if e.evidence_id is None or e.evidence_id in wanted
    ]
    return ReportData(
        case_number=info.number,
        case_title=info.title,
        analyst=info.analyst,
        description=info.description,
        case_created=info.created,
        generated_at=datetime.now().astimezone(),
        software=software_id(),
        evidence=items,
        audit=audit_rows,
        generated_by=generated_by,
        whole_case=whole_case,
        case_evidence_count=len(case.evidence_list()),
        threshold_override=override,
        audit_head=head_hash,
        audit_count=head_count,
        case_uuid=info.uuid,
        examiner=_examiner(case),
        calibration=calibration,
    )
