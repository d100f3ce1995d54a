"""Metadata of crafted files gives the right fields and alerts; hostile metadata never crashes."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from declip_desktop.forensics.alerts import find_alerts
from declip_desktop.forensics.metadata import key_fields, read_metadata
from declip_desktop.forensics.xmp import parse_xmp
from tests.forensics_files import (
    PHOTOSHOP_XMP,
    build_exif,
    insert_app1_xmp,
    jpeg_bytes,
    jpeg_with_exif,
    png_with_text,
    texture,
)

A, S, L, R = 2, 3, 4, 5  # TIFF types


def _codes(alerts):
    return [a.code for a in alerts]


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _camera_exif(thumbnail=None, software=None, modified="2024:05:01 12:00:00", gps=None):
    ifd0 = [(271, A, "Canon"), (272, A, "Canon EOS R5"), (306, A, modified)]
    if software:
        ifd0.append((305, A, software))
    exif_ifd = [(36867, A, "2024:05:01 11:59:58")]
    return build_exif(ifd0, exif_ifd, gps, thumbnail)


def test_stable_diffusion_parameters_chunk_is_shown_and_alerted(tmp_path):
    params = ("a castle at dusk, highly detailed\nNegative prompt: blurry\nSteps: 30, Sampler: DPM++ 2M Karras, "
              "CFG scale: 7, Seed: 1234, Size: 512x512, Model: sd_xl_base_1.0")
    p = _write(tmp_path, "sd.png", png_with_text(texture(64, 64, 0), {"parameters": params}))
    meta = read_metadata(p)
    assert meta["png_text"]["parameters"] == params
    alerts = find_alerts(meta)
    gen = [a for a in alerts if a.code == "generator_signature"]
    assert any("AUTOMATIC1111" in a.title for a in gen)
    ev = next(a for a in gen if "AUTOMATIC1111" in a.title).evidence[0]
    assert ev["tag"] == "PNG text 'parameters'" and "Steps: 30" in ev["value"]
    assert all(a.shows and a.does_not_prove for a in alerts)
    assert ("PNG text 'parameters'", params.replace("\n", " ")[:200]) in key_fields(meta)


def test_comfyui_prompt_and_workflow_in_compressed_chunks(tmp_path):
    prompt = json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 5}}})
    workflow = json.dumps({"nodes": [{"id": i, "type": "KSampler", "widgets_values": ["x" * 40]} for i in range(2000)]})
    assert len(workflow) > 100_000  # real workflows are this large: kept whole, not cut
    data = png_with_text(texture(48, 48, 1), {"prompt": prompt, "workflow": workflow}, compressed=("workflow",))
    meta = read_metadata(_write(tmp_path, "comfy.png", data))
    assert json.loads(meta["png_text"]["workflow"]) == json.loads(workflow)
    titles = [a.title for a in find_alerts(meta) if a.code == "generator_signature"]
    assert any("ComfyUI" in t for t in titles)


def test_gps_decimal_degrees_altitude_and_time(tmp_path):
    gps = [(1, A, "S"), (2, R, [(33, 1), (51, 1), (5400, 100)]), (3, A, "W"), (4, R, [(151, 1), (12, 1), (3600, 100)]),
           (5, S, 0), (6, R, [(5825, 100)]), (7, R, [(13, 1), (45, 1), (30, 1)]), (29, A, "2024:05:01")]
    p = _write(tmp_path, "gps.jpg", jpeg_with_exif(texture(64, 64, 2), 92, _camera_exif(gps=gps)))
    g = read_metadata(p)["gps"]
    assert g["latitude"] == pytest.approx(-(33 + 51 / 60 + 54 / 3600), abs=1e-6)
    assert g["longitude"] == pytest.approx(-(151 + 12 / 60 + 36 / 3600), abs=1e-6)
    assert g["altitude_m"] == pytest.approx(58.25)
    assert g["time_utc"] == "2024-05-01T13:45:30Z" and g["error"] is None
    alerts = find_alerts(read_metadata(p))
    assert "dates_disagree" not in _codes(alerts)  # 13:45 UTC vs 11:59 local: a time zone, not a lie


def test_canon_makernote_is_decoded(tmp_path):
    # A Canon MakerNote is a bare IFD: ModelID (LONG) and FirmwareVersion (ASCII, inline).
    makernote = (struct.pack("<H", 2) + struct.pack("<HHI", 0x0010, L, 1) + struct.pack("<I", 0x80000428)
                 + struct.pack("<HHI", 0x0007, A, 4) + b"1.0\x00" + struct.pack("<I", 0))
    exif = build_exif([(271, A, "Canon"), (272, A, "Canon EOS-1D X Mark III")],
                      [(36867, A, "2024:05:01 11:59:58"), (0x927C, 7, makernote)])
    meta = read_metadata(_write(tmp_path, "canon.jpg", jpeg_with_exif(texture(32, 32, 0), 90, exif)))
    assert meta["exif"]["MakerNote ModelID"] == "EOS-1D X Mark III"
    assert meta["exif"]["MakerNote FirmwareVersion"] == "1.0" and meta["errors"] == []


def test_photoshop_xmp_history_gives_editor_alert(tmp_path):
    data = insert_app1_xmp(jpeg_bytes(texture(64, 64, 3), 90), PHOTOSHOP_XMP)
    meta = read_metadata(_write(tmp_path, "ps.jpg", data))
    props = meta["xmp"]["properties"]
    assert props["xmp:CreatorTool"] == "Adobe Photoshop 25.0 (Windows)"
    assert [h["action"] for h in meta["xmp"]["history"]] == ["created", "saved"]
    assert meta["xmp"]["history"][1]["softwareAgent"] == "Adobe Photoshop 25.0 (Windows)"
    editor = [a for a in find_alerts(meta) if a.code == "editor_signature"]
    assert len(editor) == 1 and editor[0].title == "Editing software: Adobe Photoshop"
    tags = {e["tag"] for e in editor[0].evidence}
    assert "XMP xmp:CreatorTool" in tags and any("History" in t for t in tags)
    assert "does not show that content was added" in editor[0].does_not_prove


def test_mismatched_thumbnail_is_alerted_and_a_true_one_is_not(tmp_path):
    picture = texture(240, 320, 4)
    true_thumb = jpeg_bytes(np.asarray(Image.fromarray(picture).resize((160, 120))), 85)
    other_thumb = jpeg_bytes(np.asarray(Image.fromarray(texture(240, 320, 99)).resize((160, 120))), 85)
    good = read_metadata(_write(tmp_path, "good.jpg", jpeg_with_exif(picture, 92, _camera_exif(true_thumb))))
    bad = read_metadata(_write(tmp_path, "bad.jpg", jpeg_with_exif(picture, 92, _camera_exif(other_thumb))))
    assert good["thumbnail"]["mismatch"] is False and good["thumbnail"]["width"] == 160
    assert bad["thumbnail"]["mismatch"] is True
    assert "thumbnail_mismatch" not in _codes(find_alerts(good))
    alert = next(a for a in find_alerts(bad) if a.code == "thumbnail_mismatch")
    assert alert.severity == "warning" and "does not show the image" in alert.evidence[0]["value"]
    cropped = jpeg_with_exif(picture[:, :200], 92, _camera_exif(true_thumb))  # framing changed
    meta = read_metadata(_write(tmp_path, "crop.jpg", cropped))
    assert meta["thumbnail"]["mismatch"] is True and "aspect ratio" in meta["thumbnail"]["reason"]


def test_camera_jpeg_resaved_by_libjpeg_and_dates(tmp_path):
    exif = _camera_exif(software="GIMP 2.10.36", modified="2024:06:20 08:00:00")
    meta = read_metadata(_write(tmp_path, "cam.jpg", jpeg_with_exif(texture(64, 64, 5), 87, exif)))
    q = meta["jpeg"]["quantization"]
    assert q["quality"] == 87 and q["exact"] and q["encoder"].startswith("IJG")
    alerts = find_alerts(meta)
    codes = _codes(alerts)
    assert "jpeg_resaved_by_software" in codes and "editor_signature" in codes
    resaved = next(a for a in alerts if a.code == "jpeg_resaved_by_software")
    assert {"tag": "EXIF Make", "value": "Canon"} in resaved.evidence
    dates = next(a for a in alerts if a.code == "dates_disagree")
    assert dates.title == "Modified long after capture"
    assert ("Camera make", "Canon") in key_fields(meta) and ("JPEG quality", "≈87 (IJG standard tables)") in key_fields(meta)


def test_non_standard_tables_get_an_estimate_but_no_encoder(tmp_path):
    luma = [max(1, (i % 8 + i // 8) * 3 + 2) for i in range(64)]  # no IJG quality gives this
    buf = io.BytesIO()
    Image.fromarray(texture(64, 64, 6)).save(buf, "JPEG", qtables=[luma, luma])
    meta = read_metadata(_write(tmp_path, "custom.jpg", buf.getvalue()))
    q = meta["jpeg"]["quantization"]
    assert not q["exact"] and q["encoder"] is None and 1 <= q["quality"] <= 100
    assert "jpeg_resaved_by_software" not in _codes(find_alerts(meta))
    assert "camera_data_missing" in _codes(find_alerts(meta))


# --- hostile metadata -------------------------------------------------------------------------

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_with_raw_chunk(kind: bytes, data: bytes) -> bytes:
    png = png_with_text(texture(16, 16, 7), {})
    iend = png.rindex(b"IEND") - 4
    return png[:iend] + _png_chunk(kind, data) + png[iend:]


HOSTILE = {
    "ztxt_bomb.png": lambda: _png_with_raw_chunk(b"zTXt", b"bomb\x00\x00" + zlib.compress(b"A" * (64 * 1024 * 1024), 9)),
    "itxt_garbage.png": lambda: _png_with_raw_chunk(b"iTXt", b"key\x00\x01\x00\x00\x00" + b"\x78\x9c\xff\xff\xff"),
    "exif_loop.jpg": lambda: jpeg_bytes(texture(32, 32, 8), 90, exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00"
                                        + struct.pack("<H", 1) + struct.pack("<HHII", 0x8769, 4, 1, 8)
                                        + struct.pack("<I", 8)),
    "exif_truncated.jpg": lambda: jpeg_bytes(texture(32, 32, 9), 90, exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff"),
    "exif_huge_count.jpg": lambda: jpeg_bytes(texture(32, 32, 10), 90, exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00"
                                              + struct.pack("<H", 1) + struct.pack("<HHII", 270, 2, 0xFFFFFFF0, 26)
                                              + struct.pack("<I", 0)),
    "xmp_entities.jpg": lambda: insert_app1_xmp(jpeg_bytes(texture(32, 32, 11), 90),
                                                '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
                                                '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><x:xmpmeta xmlns:x="adobe:ns:meta/">'
                                                '&b;</x:xmpmeta>'),
    "xmp_broken.jpg": lambda: insert_app1_xmp(jpeg_bytes(texture(32, 32, 12), 90), "<x:xmpmeta><rdf:RDF><unclosed"),
    "gps_zero_den.jpg": lambda: jpeg_with_exif(texture(32, 32, 13), 90, build_exif(
        [(271, A, "Canon"), (272, A, "X")], None, [(1, A, "N"), (2, R, [(1, 0), (2, 0), (3, 0)])])),
    "thumb_garbage.jpg": lambda: jpeg_with_exif(texture(32, 32, 14), 90, build_exif(
        [(271, A, "Canon"), (272, A, "X")], None, None, b"\xff\xd8not a jpeg at all")),
}


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the corrupt EXIF it skips
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_metadata_is_an_alert_never_a_crash(tmp_path, name):
    p = _write(tmp_path, name, HOSTILE[name]())
    meta = read_metadata(p)
    json.dumps(meta)  # always JSON-safe
    alerts = find_alerts(meta)
    if name in ("ztxt_bomb.png", "xmp_entities.jpg", "xmp_broken.jpg", "gps_zero_den.jpg", "itxt_garbage.png"):
        assert "metadata_unreadable" in _codes(alerts), meta["errors"]
    if name == "ztxt_bomb.png":
        assert "png_text" not in meta or "bomb" not in meta["png_text"]
    if name == "thumb_garbage.jpg":
        assert meta["thumbnail"]["mismatch"] is None and "could not be decoded" in meta["thumbnail"]["reason"]


def test_xmp_parser_refuses_dtds_and_oversize():
    with pytest.raises(ValueError, match="not well-formed|DTD"):
        parse_xmp('<!DOCTYPE x [<!ENTITY a "b">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&a;</x:xmpmeta>')
    with pytest.raises(ValueError, match="exceeds"):
        parse_xmp(b"<x:xmpmeta>" + b" " * (5 * 1024 * 1024) + b"</x:xmpmeta>")


def _iptc_app13(records: dict[tuple[int, int], bytes]) -> bytes:
    """A Photoshop APP13 segment with an IPTC-NAA resource (8BIM 0x0404)."""
    iptc = b"".join(b"\x1c" + bytes(k) + struct.pack(">H", len(v)) + v for k, v in records.items())
    if len(iptc) % 2:
        iptc += b"\x00"
    payload = b"Photoshop 3.0\x00" + b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iptc)) + iptc
    return b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload


def test_iptc_and_icc_profile_are_read(tmp_path):
    from PIL import ImageCms

    buf = io.BytesIO()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(texture(32, 32, 15)).save(buf, "JPEG", quality=90, icc_profile=icc)
    data = buf.getvalue()
    data = data[:2] + _iptc_app13({(2, 120): b"Harbour at dawn", (2, 80): b"A. Photographer",
                                   (2, 65): b"Adobe Photoshop Lightroom"}) + data[2:]
    meta = read_metadata(_write(tmp_path, "iptc.jpg", data))
    assert meta["iptc"]["Caption-Abstract"] == "Harbour at dawn" and meta["iptc"]["By-line"] == "A. Photographer"
    assert "sRGB" in meta["icc"]["description"] and meta["icc"]["size"] == len(icc)
    editor = [a for a in find_alerts(meta) if a.code == "editor_signature"]
    assert any(e["tag"] == "IPTC OriginatingProgram" for a in editor for e in a.evidence)
