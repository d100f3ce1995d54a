"""`build_report`: one function for the CLI and the GUI.

The report is written to a scratch file, given its PDF Subject, then linked into
`<case>/reports/<case number>-<UTC timestamp>.pdf` without ever replacing an existing file,
registered (SHA-256 into the audit log, which `case verify` re-checks) and only then copied
to where the user asked. A failure at any step leaves no half-written report behind.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path

from declip_desktop.common.outputs import (
    DiskFullError,
    OutputRefused,
    Protected,
    atomic_output,
    check_destination,
    disk_full_as_error,
    is_disk_full,
)
from declip_desktop.cases.export import case_originals
from declip_desktop.common.progress import StepProgress
from declip_desktop.reports.audit_summary import AUDIT_ATTACHMENT, audit_attachment
from declip_desktop.reports.collect import SelectionError, collect_report_data
from declip_desktop.reports.errors import ReportCancelled, ReportError
from declip_desktop.reports.pdf import RenderStats, ReportRenderer

REPORTS_DIR = "reports"
SCRATCH_DIR = ".tmp"  # the case's scratch folder; our files there end in `.pdf.writing`



@dataclass(frozen=True)
class BuiltReport:
    """What `build_report` made: the copy kept in the case, the user's copy, and its figures."""

    path: Path  # <case>/reports/<number>-<UTC time>.pdf, read-only, SHA-256 in the audit log
    copy: Path | None  # out_path, when one was asked for
    stats: RenderStats  # pages, seconds, and per item the threshold, score and regions stated


def safe_file_stem(text: str, fallback: str = "case", limit: int = 80) -> str:
    """A file-name-safe version of a case number on every OS (letters of any script are kept)."""
    text = unicodedata.normalize("NFC", str(text))
    cleaned = "".join(ch if (ch.isalnum() or ch in "-_.") else "_" for ch in text)
    cleaned = re.sub(r"_+", "_", cleaned).strip("._ ")
    return (cleaned[:limit].rstrip("._ ") or fallback)



def _link_without_overwrite(src: Path, folder: Path, stem: str) -> Path:
    """Move `src` to folder/stem.pdf (or stem-2.pdf, …); an existing report is never replaced."""
    for attempt in range(1, 1000):
        target = folder / (f"{stem}.pdf" if attempt == 1 else f"{stem}-{attempt}.pdf")
        try:
            os.link(src, target)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
                raise
            # File systems without hard links (FAT, some network shares): exclusive create + copy.
            try:
                with open(target, "xb") as dst, open(src, "rb") as fh:
                    shutil.copyfileobj(fh, dst, 1 << 20)
                    dst.flush()
                    os.fsync(dst.fileno())
            except FileExistsError:
                continue
        src.unlink()
        return target
    raise ReportError(f"could not find a free report name for {stem} in {folder}")


def _set_subject(path: Path, subject: str, keywords: str, extra: dict[str, str] | None = None,
                 sections: Sequence = (), attachments: dict[str, bytes] | None = None) -> None:
    """Qt writes Title/Author/Creator; the Subject, the outline (bookmarks: the renderer's
    sections, the same list the cover's table of contents prints) and the attached files (the
    full audit trail) are appended with pypdf."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import NameObject

    writer = PdfWriter(PdfReader(str(path)), incremental=True)
    writer.add_metadata({"/Subject": subject, "/Keywords": keywords, **(extra or {})})
    parent = None
    for section in sections:
        made = writer.add_outline_item(title=section.title, page_number=section.page - 1, parent=parent if section.level else None)
        if section.level == 0:
            parent = made
    if sections:
        writer._root_object[NameObject("/PageMode")] = NameObject("/UseOutlines")  # open with bookmarks shown
    for name, content in (attachments or {}).items():
        writer.add_attachment(name, content)
    tmp = path.with_name(path.name + ".meta")
    with open(tmp, "wb") as fh:
        writer.write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _sign_pades(path: Path, signer, d) -> None:  # noqa: ANN001 - Signer, ReportData
    """Embed a PAdES signature (cases.pdf_signing) before the report is registered, so the SHA-256
    in the audit log is that of the signed file."""
    from declip_desktop.cases import CaseError
    from declip_desktop.cases.pdf_signing import sign_pdf

    signed = path.with_name(path.name + ".signed")
    try:
        sign_pdf(path, signed, signer, person=d.examiner.name or d.generated_by or d.analyst,
                 organisation=d.examiner.organisation or None,
                 reason=f"Forensic image analysis report, case {d.case_number}")
    except CaseError as exc:
        raise ReportError(str(exc)) from None
    os.replace(signed, path)


def _refuse_altered_records(case) -> None:  # noqa: ANN001 - Case
    """A report must not print values changed outside the application (issue 15)."""
    problems = case.check_records()
    if problems:
        raise ReportError(
            f"the case database does not match its audit trail ({len(problems)} problem(s), first: "
            f"{problems[0].detail}). A report would print altered values, so none was made. Run "
            f"`declip case verify {case.path}` and resolve the problems first")


def _anchor_metadata(d) -> dict[str, str]:  # noqa: ANN001 - ReportData
    """The printed audit head, machine-readable, for `declip case verify --anchor REPORT.pdf`."""
    from declip_desktop.cases.anchors import PDF_CASE_KEY, PDF_HEAD_KEY

    return {PDF_HEAD_KEY: f"{d.audit_count}:{d.audit_head}", PDF_CASE_KEY: d.case_uuid}


def build_report(
    case,
    out_path: str | os.PathLike[str] | None = None,
    evidence_ids: Sequence[int] | None = None,
    threshold: float | None = None,
    *,
    analyst: str | None = None,
    progress: StepProgress | None = None,
    should_stop: Callable[[], bool] | None = None,
    signer=None,  # noqa: ANN001 - cases.signing.Signer: also write <report>.sig (declip case report --sign)
    force: bool = False,
    layout: str = "full",
) -> BuiltReport:
    """Make a PDF report of `case`; returns a `BuiltReport` (the copy kept in the case folder,
    the user's copy, the statistics and the figures each item states).

    `evidence_ids`: the items to include (default: all, in ID order). `threshold`: one threshold
    for every item (default: the case's rule, `cases.case_settings.effective_threshold`). `out_path`: also copy the
    report there. `analyst`: who makes the report (audit log; default: the case's analyst).
    `force`: allow `out_path` to replace an existing file (never a case's file, an original or a link;
    `common.outputs.check_destination` refuses those, before any work). A full disk raises
    DiskFullError and keeps nothing.
    `layout`: "full" (an image page and a details page per item) or "compact" (one page per item).
    Raises ReportError (or its subclass ReportCancelled) with a message for the user.
    """
    protect = case_originals(case) if out_path is not None else Protected()
    try:
        out = check_destination(out_path, force=force, protect=protect, what="report") if out_path is not None else None
    except OutputRefused as exc:
        raise ReportError(str(exc)) from None
    _refuse_altered_records(case)
    try:
        data = collect_report_data(case, evidence_ids, threshold, generated_by=analyst)
    except SelectionError as exc:
        raise ReportError(str(exc)) from None
    root = Path(case.path)
    reports = root / REPORTS_DIR
    scratch = root / SCRATCH_DIR
    try:
        reports.mkdir(parents=True, exist_ok=True)
        scratch.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create {reports}: {exc.strerror or exc}. Check the case folder's permissions") from None
    tmp = scratch / f"report-{uuid.uuid4().hex}.pdf.writing"
    try:
        renderer = ReportRenderer(data, progress=progress, should_stop=should_stop, layout=layout)
        try:
            stats = renderer.render(tmp)
            _check_complete(tmp, scratch)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            written = tmp.stat().st_size if tmp.exists() else 0
            raise DiskFullError(scratch, max(written, renderer.estimated_image_bytes) * 2) from exc
        d = data
        _set_subject(
            tmp,
            f"Forensic image analysis (DeCLIP manipulation localisation) of {len(d.evidence)} evidence item(s) "
            f"in case {d.case_number}",
            f"case {d.case_number}; DeCLIP; image forensics; manipulation localization",
            _anchor_metadata(d),
            stats.sections,
            {AUDIT_ATTACHMENT: audit_attachment(d)},
        )
        if signer is not None:
            _sign_pades(tmp, signer, d)
        stamp = d.generated_at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        with disk_full_as_error(reports, tmp.stat().st_size):
            final = _link_without_overwrite(tmp, reports, f"{safe_file_stem(d.case_number)}-{stamp}")
    except BaseException:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".meta").unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".signed").unlink(missing_ok=True)
        raise
    os.chmod(final, 0o444)  # kept reports are records: read-only, like the evidence
    case.register_report(final, analyst=analyst, printed_head=(data.audit_head, data.audit_count))
    if signer is not None:
        from declip_desktop.cases.anchors import sign_report

        sign_report(case, final, signer, analyst=analyst)
    if out is not None:
        try:
            with atomic_output(out_path, force=force, protect=protect, needed=final.stat().st_size,
                               what="report") as part:
                shutil.copyfile(final, part)  # the user's copy is theirs to move or delete (0644)
        except DiskFullError as exc:
            raise DiskFullError(exc.path, exc.needed, note=f"The report itself was made and kept as {final}") from None
        except OSError as exc:
            raise ReportError(
                f"the report was made and kept as {final}, but copying it to {out} failed: "
                f"{exc.strerror or exc}. Copy it from the case folder"
            ) from None
    return BuiltReport(final, out, stats)


def _check_complete(path: Path, scratch: Path) -> None:
    """Qt's PDF writer does not report write errors: prove the file ends with the PDF end marker."""
    size = path.stat().st_size if path.exists() else 0
    tail = b""
    if size:
        with open(path, "rb") as fh:
            fh.seek(max(0, size - 1024))
            tail = fh.read()
    if b"%%EOF" in tail:
        return
    free = shutil.disk_usage(scratch).free
    if free < 1024 * 1024:  # what Qt could not write: the disk is the likely reason, say so
        raise DiskFullError(scratch, max(size, 1) * 2, free=free)
    raise ReportError(f"the PDF writer stopped before the end of the report ({size} bytes written). "
                      "Check the case folder's disk and try again")


__all__ = ["BuiltReport", "ReportCancelled", "ReportError", "build_report", "safe_file_stem"]
