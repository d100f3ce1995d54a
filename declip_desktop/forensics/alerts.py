"""Named alerts from metadata and Content Credentials, each with its evidence.

An alert is a pointer for the analyst, never a verdict: every alert says what it
shows and what it does not prove. `find_alerts(meta, c2pa)` takes the dicts made by
`metadata.read_metadata` and `provenance.read_c2pa`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from declip_desktop.forensics.signatures import match_signatures

SEVERITIES = ("info", "notice", "warning")


@dataclass(frozen=True)
class Alert:
    """`code`: stable id (e.g. "generator_signature"); `title`: one line; `severity`: info|notice|warning;
    `evidence`: [{"tag", "value"}] the alert rests on; `shows` / `does_not_prove`: plain sentences."""

    code: str
    title: str
    severity: str
    evidence: list[dict[str, str]] = field(default_factory=list)
    shows: str = ""
    does_not_prove: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text_sources(meta: dict[str, Any], c2pa: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(tag, value) pairs where software and generators leave their names."""
    out: list[tuple[str, str]] = []
    exif = meta.get("exif") or {}
    for key in ("Image Software", "Image ProcessingSoftware", "Image HostComputer", "Image ImageDescription",
                "Image Artist", "EXIF UserComment", "Image XPComment"):
        if exif.get(key):
            out.append((f"EXIF {key.split(' ', 1)[1]}", exif[key]))
    xmp = (meta.get("xmp") or {}).get("properties") or {}
    for key, value in xmp.items():
        if key.endswith(("CreatorTool", "softwareAgent", "History", "DigitalSourceType", "description",
                         "Description", "Credit", "photoshop:Source")) or key.startswith(("photoshop:", "crs:", "lr:")):
            out.append((f"XMP {key}", value))
    for key, value in (meta.get("iptc") or {}).items():
        if key in ("OriginatingProgram", "Caption-Abstract", "SpecialInstructions", "Credit", "Source"):
            out.append((f"IPTC {key}", value))
    for key, value in (meta.get("png_text") or {}).items():
        out.append((f"PNG text '{key}'", value))
    comment = (meta.get("jpeg") or {}).get("comment")
    if comment:
        out.append(("JPEG comment", comment))
    if c2pa and c2pa.get("active"):
        gen = c2pa["active"].get("claim_generator")
        if gen:
            out.append(("C2PA claim generator", gen))
        for action in c2pa.get("actions") or []:
            for key in ("software_agent", "digital_source_type"):
                if action.get(key):
                    out.append((f"C2PA action {action.get('action')} {key}", action[key]))
    return out


def _signature_alerts(sources: list[tuple[str, str]], meta: dict[str, Any]) -> list[Alert]:
    found: dict[tuple[str, str], list[dict[str, str]]] = {}
    for tag, value in sources:
        for name, kind in match_signatures(value):
            found.setdefault((name, kind), []).append({"tag": tag, "value": value[:300]})
    png = meta.get("png_text") or {}
    for key in ("parameters", "prompt", "workflow", "invokeai_metadata", "sd-metadata"):
        if key in png and not any(e["tag"] == f"PNG text '{key}'" for ev in found.values() for e in ev):
            # The chunk names themselves are the signature of SD front ends, whatever the text says.
            found.setdefault(("Stable Diffusion front end (PNG text chunk)", "generator"), []).append(
                {"tag": f"PNG text '{key}'", "value": png[key][:300]})
    alerts = []
    for (name, kind), evidence in found.items():
        if kind == "generator":
            alerts.append(Alert(
                "generator_signature", f"Generator signature: {name}", "warning", evidence,
                shows=f"The file's metadata names {name}, software that synthesizes images; the image (or part "
                      "of it) was probably produced or processed by it.",
                does_not_prove="Metadata can be written by anyone and is easily removed or copied from another "
                               "file: its presence does not prove the pixels were generated, and its absence "
                               "proves nothing."))
        else:
            alerts.append(Alert(
                "editor_signature", f"Editing software: {name}", "notice", evidence,
                shows=f"The file was last written (or at some point processed) by {name}.",
                does_not_prove="Opening and re-saving a photo, or global corrections (exposure, colour, crop), "
                               "leave the same trace: it does not show that content was added or removed."))
    return alerts


_DATE = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")


def _parse_date(value: str | None) -> datetime | None:
    m = _DATE.search(value or "")
    if not m:
        return None
    try:
        return datetime(*(int(g) for g in m.groups()))
    except ValueError:
        return None


def _date_alerts(meta: dict[str, Any]) -> list[Alert]:
    exif = meta.get("exif") or {}
    xmp = (meta.get("xmp") or {}).get("properties") or {}
    dates = {
        "EXIF DateTimeOriginal": exif.get("EXIF DateTimeOriginal"),
        "EXIF DateTimeDigitized": exif.get("EXIF DateTimeDigitized"),
        "EXIF DateTime (modified)": exif.get("Image DateTime"),
        "XMP xmp:CreateDate": xmp.get("xmp:CreateDate"),
        "XMP xmp:ModifyDate": xmp.get("xmp:ModifyDate"),
        "XMP photoshop:DateCreated": xmp.get("photoshop:DateCreated"),
    }
    parsed = {k: _parse_date(v) for k, v in dates.items() if v}
    parsed = {k: v for k, v in parsed.items() if v}
    alerts: list[Alert] = []
    captured = parsed.get("EXIF DateTimeOriginal")
    modified = parsed.get("EXIF DateTime (modified)")
    # Time-zone offsets are often missing: differences under a day may be zones, not edits.
    if captured and modified and modified - captured > timedelta(days=1):
        alerts.append(Alert(
            "dates_disagree", "Modified long after capture", "notice",
            [{"tag": "EXIF DateTimeOriginal", "value": dates["EXIF DateTimeOriginal"]},
             {"tag": "EXIF DateTime", "value": dates["EXIF DateTime (modified)"]}],
            shows="The file records a modification date more than a day after the capture date: it was "
                  "rewritten by some program after it was taken.",
            does_not_prove="Rotating, tagging or exporting a photo updates this date; it does not show that "
                           "the content was changed."))
    if captured and modified and captured - modified > timedelta(days=1):
        alerts.append(Alert(
            "dates_disagree", "Modification date before capture date", "warning",
            [{"tag": "EXIF DateTimeOriginal", "value": dates["EXIF DateTimeOriginal"]},
             {"tag": "EXIF DateTime", "value": dates["EXIF DateTime (modified)"]}],
            shows="The file says it was modified more than a day before it was captured, which cannot both "
                  "be true: at least one date was set by hand or by a misconfigured device.",
            does_not_prove="A wrong camera clock produces the same; it does not show the pixels were edited."))
    capture_like = {k: v for k, v in parsed.items() if k in ("EXIF DateTimeOriginal", "XMP xmp:CreateDate",
                                                              "XMP photoshop:DateCreated", "EXIF DateTimeDigitized")}
    if len(capture_like) >= 2:
        lo, hi = min(capture_like.values()), max(capture_like.values())
        if hi - lo > timedelta(days=1):
            alerts.append(Alert(
                "dates_disagree", "Capture dates disagree", "notice",
                [{"tag": k, "value": dates[k]} for k in capture_like],
                shows="Different fields give creation dates more than a day apart.",
                does_not_prove="Some programs fill these fields with the export date; disagreement is a reason "
                               "to ask where the file came from, not proof of manipulation."))
    gps_time = _parse_date((meta.get("gps") or {}).get("time_utc"))
    if captured and gps_time and abs(gps_time - captured) > timedelta(hours=26):
        alerts.append(Alert(
            "dates_disagree", "GPS time disagrees with capture time", "notice",
            [{"tag": "EXIF DateTimeOriginal", "value": dates["EXIF DateTimeOriginal"]},
             {"tag": "GPS GPSDateStamp/GPSTimeStamp", "value": meta["gps"]["time_utc"]}],
            shows="The satellite time and the camera's capture time differ by more than any time zone.",
            does_not_prove="A stale GPS fix or a wrong camera clock gives the same."))
    return alerts


def _camera_alerts(meta: dict[str, Any]) -> list[Alert]:
    exif = meta.get("exif") or {}
    file = meta.get("file") or {}
    alerts: list[Alert] = []
    make, model = exif.get("Image Make"), exif.get("Image Model")
    if file.get("format") == "JPEG" and not make and not model:
        alerts.append(Alert(
            "camera_data_missing", "No camera data", "info",
            [{"tag": "EXIF Make / Model", "value": "absent"}],
            shows="This JPEG names no camera. Cameras and phones write it; many editors, messengers and "
                  "social networks strip it.",
            does_not_prove="Stripped metadata is normal for files passed through the web; it says nothing about "
                           "the pixels."))
    elif bool(make) != bool(model):
        alerts.append(Alert(
            "camera_data_inconsistent", "Incomplete camera data", "notice",
            [{"tag": "EXIF Make", "value": make or "absent"}, {"tag": "EXIF Model", "value": model or "absent"}],
            shows="Cameras write both make and model; one without the other suggests the metadata was edited "
                  "or rebuilt by software.",
            does_not_prove="Some devices and converters write only one of them."))
    w, h = exif.get("EXIF ExifImageWidth"), exif.get("EXIF ExifImageLength")
    try:
        ew, eh = int(str(w)), int(str(h))
    except (TypeError, ValueError):
        ew = eh = None
    if ew and eh and file.get("width") and {ew, eh} != {file["width"], file["height"]}:
        alerts.append(Alert(
            "camera_data_inconsistent", "EXIF size differs from the image size", "notice",
            [{"tag": "EXIF ExifImageWidth × ExifImageLength", "value": f"{ew} × {eh}"},
             {"tag": "image size", "value": f"{file['width']} × {file['height']}"}],
            shows="The size recorded at capture is not the size of the pixels: the image was resized or cropped "
                  "after the EXIF block was written.",
            does_not_prove="Resizing for the web does the same; it does not show content was changed."))
    return alerts


def _jpeg_alerts(meta: dict[str, Any]) -> list[Alert]:
    q = ((meta.get("jpeg") or {}).get("quantization")) or None
    if not q or not q.get("exact"):
        return []
    make = (meta.get("exif") or {}).get("Image Make")
    evidence = [{"tag": "JPEG quantization tables", "value": f"IJG libjpeg standard tables, quality {q['quality']}"}]
    if make:
        evidence.append({"tag": "EXIF Make", "value": make})
    return [Alert(
        "jpeg_resaved_by_software", f"JPEG written by libjpeg-based software (quality {q['quality']})",
        "notice" if make else "info", evidence,
        shows="The quantization tables are exactly those of the IJG library at one quality setting, as written "
              "by GIMP, Pillow, OpenCV, ImageMagick and most web services; "
              + ("camera firmware usually uses its own tables, so this file was probably re-saved after capture "
                 f"despite naming a camera ({make})." if make else "the file was last saved by such software."),
        does_not_prove="Re-saving is routine (resizing, sharing); a few devices also use these tables. It says "
                       "nothing about which pixels, if any, were changed.")]


def _error_alerts(meta: dict[str, Any]) -> list[Alert]:
    alerts = []
    for err in meta.get("errors") or []:
        alerts.append(Alert(
            "metadata_unreadable", f"Unreadable {err.get('part', 'metadata')}", "notice",
            [{"tag": err.get("part", "metadata"), "value": err.get("message", "")}],
            shows="Part of the metadata is malformed, oversized or truncated and could not be read.",
            does_not_prove="Damaged metadata comes from buggy software as often as from tampering; the pixels "
                           "may be untouched."))
    gps = meta.get("gps") or {}
    if gps.get("error"):
        alerts.append(Alert(
            "metadata_unreadable", "Unreadable GPS data", "notice", [{"tag": "GPS", "value": gps["error"]}],
            shows="The GPS block is malformed.", does_not_prove="It says nothing about the pixels."))
    return alerts


def _thumbnail_alerts(meta: dict[str, Any]) -> list[Alert]:
    th = meta.get("thumbnail") or {}
    if not th.get("mismatch"):
        return []
    return [Alert(
        "thumbnail_mismatch", "EXIF thumbnail differs from the image", "warning",
        [{"tag": "EXIF thumbnail (IFD1)", "value": th.get("reason") or "differs"}],
        shows="The preview stored in the file shows other content or framing than the picture: the pixels were "
              "changed (edited, cropped, or replaced) by software that kept the old preview.",
        does_not_prove="It does not locate the change, and a few programs write previews of a different crop; "
                       "compare the two images yourself.")]


def _c2pa_alerts(c2pa: dict[str, Any] | None) -> list[Alert]:
    if not c2pa or c2pa.get("state") in (None, "none"):
        return []
    alerts = []
    if c2pa["state"] == "invalid":
        alerts.append(Alert(
            "c2pa_invalid", "Content Credentials do not validate", "warning",
            [{"tag": "C2PA validation", "value": ", ".join(c2pa.get("failure_codes") or []) or "invalid"}],
            shows="The file carries a C2PA manifest whose signature or content hashes fail: the file was changed "
                  "after it was signed, or the manifest was damaged or forged.",
            does_not_prove="It does not say what was changed; re-saving a signed file with non-C2PA software "
                           "breaks the binding as well."))
    for action in c2pa.get("actions") or []:
        dst = action.get("digital_source_type") or ""
        if re.search(r"trainedAlgorithmicMedia|compositeSynthetic|algorithmicMedia", dst):
            alerts.append(Alert(
                "c2pa_generative", "Content Credentials declare generative AI", "warning",
                [{"tag": f"C2PA action {action.get('action')}", "value": dst}],
                shows="The signed manifest declares that the content was made or changed with a generative model.",
                does_not_prove="A declaration is as trustworthy as its signer; check the validation state and "
                               "signer. It does not locate the generated parts unless regions are declared."))
    return alerts


def find_alerts(meta: dict[str, Any], c2pa: dict[str, Any] | None = None) -> list[Alert]:
    """Every alert for one evidence item, strongest first."""
    alerts = (_signature_alerts(_text_sources(meta, c2pa), meta) + _thumbnail_alerts(meta) + _c2pa_alerts(c2pa)
              + _date_alerts(meta) + _camera_alerts(meta) + _jpeg_alerts(meta) + _error_alerts(meta))
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    return sorted(alerts, key=lambda a: order.get(a.severity, 9))
