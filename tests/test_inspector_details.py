"""The Details tab's HTML: evidence text is never markup, and the software/location rows read
the metadata the import stored (EXIF Software, PNG Software or generator chunks, EXIF GPS)."""

from __future__ import annotations

from types import SimpleNamespace

from declip_desktop.gui.inspector_parts import details_html


def _evidence(**overrides):
    base = dict(original_name="photo.png", original_path="/in/photo.png", size=1234, format="PNG",
                width=8, height=8, sha256="a" * 64, md5="b" * 32, imported_at="2026-12-01T20:00:00Z",
                imported_by="alice", metadata={})
    base.update(overrides)
    return SimpleNamespace(**base)


def test_a_file_name_or_metadata_value_starting_with_a_tag_is_shown_as_text():
    ev = _evidence(original_name="<img src='x.png'>evil.png",
                   metadata={"exif": {"software": "<b>Photoshop</b>"}})
    page = details_html(ev, None)
    assert "<img" not in page and "<b>Photoshop" not in page
    assert "&lt;img src=&#x27;x.png&#x27;&gt;evil.png" in page
    assert "&lt;b&gt;Photoshop&lt;/b&gt;" in page
    assert f"<code>{'a' * 64}</code>" in page  # our own markup still renders


def test_software_row_falls_back_to_png_chunks_and_location_shows_gps():
    sd = details_html(_evidence(metadata={"text": {"parameters": "a cat, Steps: 20, Sampler: Euler"}}), None)
    assert "Stable Diffusion-style generator (PNG &#x27;parameters&#x27; chunk)" in sd
    comfy = details_html(_evidence(metadata={"text": {"prompt": "{}"}}), None)
    assert "ComfyUI (PNG &#x27;prompt&#x27; chunk)" in comfy
    named = details_html(_evidence(metadata={"text": {"Software": "GIMP 2.10", "parameters": "x"}}), None)
    assert "GIMP 2.10" in named and "Stable Diffusion" not in named
    gps = details_html(_evidence(metadata={"gps": {"latitude": 44.4268, "longitude": 26.1025}}), None)
    assert "44.426800, 26.102500 (EXIF GPS)" in gps
    plain = details_html(_evidence(), None)
    assert plain.count("—") >= 3  # camera, captured, software, location unknown
