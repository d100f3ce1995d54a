"""The report's calibration: a section (method, references by name and hash, rates, thresholds,
intervals, n, warning, what a calibrated rate means) and each questioned item's calibrated reading.

`collect_calibration(case)` gathers it once per report (`reports.collect`); references are not
questioned items, so a whole-case report lists them here instead of giving them item pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

from declip_desktop.cases import calibration as cases_calibration
from declip_desktop.common.calibration import format_percent
from declip_desktop.common.hashing import sha256_file
from declip_desktop.common.regions import find_regions


@dataclass
class ReportCalibration:
    calibrations: list = field(default_factory=list)  # cases.calibration.Calibration, current ones
    reference_ids: list[int] = field(default_factory=list)  # every item marked reference-authentic
    references: list = field(default_factory=list)  # (id, name, sha256) of the marked items
    _by_model: dict = field(default_factory=dict)
    #: {evidence id: the short calibrated reading for the compact page}, filled by `rows_for`.
    compact: dict = field(default_factory=dict)

    def rows_for(self, case: Any, ev: Any) -> list[tuple[str, str]]:
        """Rows for the item's details page: its calibrated reading, or its role as a reference."""
        rows = []
        if ev.id in self.reference_ids:
            used = [c.id for c in self.calibrations if any(r.evidence_id == ev.id for r in c.references)]
            rows.append(("Role", "reference-authentic (not a questioned item)"
                         + (f"; used by calibration {', '.join(map(str, used))}" if used else "")))
            self.compact[ev.id] = rows[-1][1]
            return rows
        r = cases_calibration.reading(case, ev.id, self._by_model)
        if r is None:
            why = cases_calibration.uncalibrated_reason(case, ev.id, self._by_model)
            if why:
                self.compact[ev.id] = "none: calibrated for another model (details in the full layout)"
            return rows + ([("Calibrated reading", why)] if why else [])
        cal = r.calibration
        rows.append(("Calibrated reading", r.text() + ("; above" if r.above_image_threshold else "; not above")
                     + f" the threshold for {format_percent(100 * cal.image_rate)} of authentic images "
                       f"({cal.image.threshold:.3f})"))
        found = find_regions(case.load_map(case.get_analysis(r.analysis_id)), cal.pixel.threshold,
                             with_contours=False)
        rows.append(("At calibrated threshold", f"{len(found)} region(s), {sum(g.area_pct for g in found):.2f} % of "
                     f"the image above {cal.pixel.threshold:.4f} (the threshold for "
                     f"{format_percent(100 * cal.pixel_rate)} of authentic pixels; calibration {cal.id})"))
        self.compact[ev.id] = (f"above {r.standing.below} of {r.standing.n} references; {len(found)} region(s) at "
                               f"{cal.pixel.threshold:.4f}" + "".join(f"; NOTE: {n}" for n in r.notes))
        return rows


def compact_rows(cal: ReportCalibration | None, item: Any) -> list[tuple[str, str]]:
    """The compact page's one "Calibrated" row: the figures of the details page's rows, short."""
    text = cal.compact.get(item.id) if isinstance(cal, ReportCalibration) else None
    return [("Calibrated", text)] if text else []


def collect_calibration(case: Any) -> ReportCalibration:
    """The case's references (each file re-hashed: one that changed is named as such) and calibrations."""
    by_model = cases_calibration.current_calibrations(case)
    ids = cases_calibration.reference_ids(case)
    refs = []
    for i in ids:
        ev = case.get_evidence(i)
        try:
            intact = sha256_file(case.evidence_file(ev)) == ev.sha256
        except OSError:
            intact = False
        name = ev.original_name if intact else f"{ev.original_name} [FILE MISSING OR CHANGED SINCE IMPORT]"
        refs.append((i, name, ev.sha256))
    return ReportCalibration(list(by_model.values()), ids, refs, by_model)


MEANING_HTML = """
<p><b>What a calibrated rate means.</b> The analyst marked images known to be authentic and comparable
to the questioned ones (for example other photos from the same phone, or from the same social network)
as <i>references</i>. The model analysed them like any other image. The image threshold is set so that,
for a new authentic image <i>like the references</i>, the chance of scoring above it is at most the chosen
rate (a distribution-free rank rule on the n reference scores); the pixel threshold is the value above
which the chosen share of the references' pixels lies, each reference weighing the same. The interval is
a bootstrap over the references (resampling whole images, with the seed and the number of resamples
stated, so another examiner obtains the same figures). "Above 92.9 % of this case's authentic
references" says how many reference scores the item's score exceeds; it is not a probability that the
item was manipulated.</p>
<p><b>What it does not mean.</b> The rates hold only for images like the references: another camera,
platform, compression or subject can shift the whole distribution. With few references (fewer than
ten) the thresholds are rough, and a low rate such as 5 % of images cannot be promised by fewer than
19 references: the report then says so. A calibration says how often authentic images of this kind
reach a score; it says nothing about how often manipulated images are missed.</p>
"""


def calibration_html(cal: ReportCalibration | None) -> str:
    """The calibration section (empty when the case has no references and no calibration)."""
    if cal is None or (not cal.calibrations and not cal.references):
        return ""
    refs = "".join(f"<li>ID {i} · {escape(name)} — SHA-256 <span class='mono'>{escape(sha)}</span></li>"
                   for i, name, sha in cal.references) or "<li>none marked</li>"
    parts = ["<h2>Calibration on reference-authentic evidence</h2>", MEANING_HTML,
             f"<h3>Reference-authentic evidence ({len(cal.references)})</h3><ul>{refs}</ul>"]
    if not cal.calibrations:
        parts.append("<p>No calibration is in force: the results are read against their thresholds only.</p>")
    for c in cal.calibrations:
        conf = f"{c.confidence * 100:g} %"
        used = "".join(f"<li>ID {r.evidence_id} · {escape(r.name)} — score {r.score:.3f}, SHA-256 "
                       f"<span class='mono'>{escape(r.sha256)}</span></li>" for r in c.references)
        warning = f"<p class='alert'><b>Warning:</b> {escape(c.warning)}</p>" if c.warning else ""
        parts.append(f"""
<h3>Calibration {c.id}: model {escape(c.model_name)}</h3>
<p>Model SHA-256 <span class='mono'>{escape(c.model_sha256)}</span>; computed {escape(c.created_at)} by
{escape(c.created_by)} with DeCLIP Desktop {escape(c.software_version)}; method {escape(c.method)};
n = {c.n} references; bootstrap {c.resamples} resamples, seed {c.seed}, {conf} intervals.</p>
<ul>
<li><b>Image score threshold</b> for {format_percent(100 * c.image_rate)} of authentic images:
{c.image.threshold:.4f} (interval {c.image.low:.4f}–{c.image.high:.4f}).</li>
<li><b>Pixel threshold</b> for {format_percent(100 * c.pixel_rate)} of authentic pixels:
{c.pixel.threshold:.4f} (interval {c.pixel.low:.4f}–{c.pixel.high:.4f}); on the references themselves
{format_percent(100 * c.pixel.reference_rate)} of the pixels lie above it.</li>
</ul>
{warning}<p>References used:</p><ul>{used}</ul>""")
    return "\n".join(parts)
