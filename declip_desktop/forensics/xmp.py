"""XMP packets parsed with defusedxml (no entity expansion, no external fetches).

XMP is where editors leave their trail: `xmp:CreatorTool`, the `xmpMM:History` list
of save/convert actions with the software of each, Photoshop's `photoshop:*` fields,
and the ids of the documents an image was derived from.
"""

from __future__ import annotations

from typing import Any

from defusedxml import ElementTree as SafeET

MAX_XMP_BYTES = 4 * 1024 * 1024  # a larger packet is refused (reported as an error, not parsed)
_MAX_VALUE = 2000
_MAX_PROPERTIES = 2000

_PREFIXES = {
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://ns.adobe.com/xap/1.0/mm/": "xmpMM",
    "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#": "stEvt",
    "http://ns.adobe.com/xap/1.0/sType/ResourceRef#": "stRef",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://ns.adobe.com/photoshop/1.0/": "photoshop",
    "http://ns.adobe.com/exif/1.0/": "exif",
    "http://ns.adobe.com/tiff/1.0/": "tiff",
    "http://ns.adobe.com/camera-raw-settings/1.0/": "crs",
    "http://ns.adobe.com/lightroom/1.0/": "lr",
    "http://ns.adobe.com/xap/1.0/rights/": "xmpRights",
    "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/": "Iptc4xmpCore",
    "http://iptc.org/std/Iptc4xmpExt/2008-02-29/": "Iptc4xmpExt",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf",
    "adobe:ns:meta/": "x",
    "http://ns.google.com/photos/1.0/camera/": "GCamera",
    "http://ns.adobe.com/xmp/1.0/DynamicMedia/": "xmpDM",
}
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


def _qname(tag: str) -> str:
    if tag.startswith("{"):
        uri, _, local = tag[1:].partition("}")
        prefix = _PREFIXES.get(uri) or uri.rstrip("/#").rsplit("/", 1)[-1] or "ns"
        return f"{prefix}:{local}"
    return tag


def _text(value: str | None) -> str:
    return (value or "").strip()[:_MAX_VALUE]


def _collect(elem: Any, path: str, out: dict[str, str]) -> None:
    """Flatten an element into "prefix:name[/…]" → text (lists joined with "; ")."""
    for key, value in elem.attrib.items():
        name = _qname(key)
        if not name.startswith(("rdf:", "x:")) and len(out) < _MAX_PROPERTIES:
            out[f"{path}{name}"] = _text(value)
    for child in elem:
        name = _qname(child.tag)
        if name in ("rdf:RDF", "rdf:Description"):
            _collect(child, path, out)
            continue
        containers = [c for c in child if _qname(c.tag) in ("rdf:Seq", "rdf:Bag", "rdf:Alt")]
        if containers:
            items = [li for c in containers for li in c if _qname(li.tag) == "rdf:li"]
            simple = [li for li in items if len(li) == 0 and not [k for k in li.attrib if not k.startswith("{" + _RDF)]]
            if len(simple) == len(items):
                if len(out) < _MAX_PROPERTIES:
                    out[f"{path}{name}"] = "; ".join(_text(li.text) for li in items)[:_MAX_VALUE]
            else:
                for i, li in enumerate(items[:200]):
                    _collect(li, f"{path}{name}[{i + 1}]/", out)
        elif len(child) or [k for k in child.attrib if not k.startswith("{" + _RDF)]:
            _collect(child, f"{path}{name}/", out)
        elif len(out) < _MAX_PROPERTIES:
            out[f"{path}{name}"] = _text(child.text)


def parse_xmp(packet: bytes | str) -> dict[str, Any]:
    """Parse one XMP packet.

    Returns {"properties": {"prefix:name": text}, "history": [{"action", "softwareAgent",
    "when", "changed", "parameters"}], "raw": the packet text (bounded)}.
    Raises ValueError (with the parser's reason) for a packet that is not well-formed XML,
    uses DTD/entities, or exceeds MAX_XMP_BYTES."""
    data = packet.encode("utf-8", "replace") if isinstance(packet, str) else bytes(packet)
    if len(data) > MAX_XMP_BYTES:
        raise ValueError(f"XMP packet of {len(data)} bytes exceeds the {MAX_XMP_BYTES}-byte limit")
    text = data.decode("utf-8", "replace")
    start = text.find("<x:xmpmeta")
    if start < 0:
        start = text.find("<rdf:RDF")
    end_tag = "</x:xmpmeta>" if text.startswith("<x:xmpmeta", max(start, 0)) else "</rdf:RDF>"
    end = text.find(end_tag, max(start, 0))
    body = text[start:end + len(end_tag)] if start >= 0 and end >= 0 else text.strip("\x00 \r\n")
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except Exception as exc:  # noqa: BLE001 - defusedxml raises several types; all mean "not usable XMP"
        raise ValueError(f"XMP is not well-formed XML ({type(exc).__name__}: {exc})") from exc
    props: dict[str, str] = {}
    _collect(root, "", props)
    history = []
    prefix = "xmpMM:History["
    for key, value in props.items():
        if key.startswith(prefix):
            idx = int(key[len(prefix):key.index("]")]) - 1
            field = key.rsplit(":", 1)[-1]
            while len(history) <= idx:
                history.append({})
            history[idx][field] = value
    return {"properties": props, "history": history, "raw": text[:200_000]}
