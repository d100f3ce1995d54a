"""Content Credentials (C2PA) read and validated with c2pa-python, offline.

States: "trusted" (valid, signer chains to a trust anchor given to us), "valid" (the
signature and hashes check out but the signer is not on a trust list we hold: anyone
can make such a certificate), "invalid" (signature, certificate or content binding
fails: failure codes listed), "none" (no manifest: this proves nothing, most files
have none) and "error" (the manifest could not be read at all).

No network: OCSP and remote manifests are switched off; the default C2PA trust list
is not fetched, so a real signer shows as "valid" unless its root is passed in
`trust_anchors_pem`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

MISSING_STATEMENT = ("No Content Credentials (C2PA manifest) found. This proves nothing: most cameras and "
                     "programs write none, and re-saving a file removes them.")
_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "TIFF": "image/tiff",
         "HEIF": "image/heic", "AVIF": "image/avif", "GIF": "image/gif", "DNG": "image/x-adobe-dng"}
_UNTRUSTED = "signingCredential.untrusted"
_MAX_DEPTH = 16


def check_trust_anchors(pem: str) -> int:
    """Number of certificates in a PEM bundle; ValueError (saying what is wrong) if it holds none
    or a block is not valid base64."""
    import base64
    import re

    blocks = re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem or "", re.S)
    if not blocks:
        raise ValueError("the trust anchors hold no PEM certificate (-----BEGIN CERTIFICATE----- …)")
    for i, body in enumerate(blocks, 1):
        try:
            base64.b64decode("".join(body.split()), validate=True)
        except ValueError as exc:
            raise ValueError(f"certificate {i} of the trust anchors is not valid base64 ({exc})") from exc
    return len(blocks)


def _context(trust_anchors_pem: str | None) -> Any:
    import c2pa  # native library: loaded on first use only

    settings: dict[str, Any] = {"verify": {"ocsp_fetch": False, "remote_manifest_fetch": False}}
    if trust_anchors_pem:
        settings["trust"] = {"trust_anchors": trust_anchors_pem}
    return c2pa.Context(settings=c2pa.Settings.from_dict(settings))


def _generator(manifest: dict[str, Any]) -> str:
    info = manifest.get("claim_generator_info") or []
    parts = [" ".join(str(x) for x in (i.get("name"), i.get("version")) if x) for i in info if isinstance(i, dict)]
    return "; ".join(p for p in parts if p) or str(manifest.get("claim_generator") or "")


def _regions(action: dict[str, Any]) -> list[dict[str, Any]]:
    """Declared edit regions (C2PA regions of interest), rectangles and polygons only."""
    out = []
    for change in action.get("changes") or []:
        for region in (change.get("region") or []) if isinstance(change, dict) else []:
            shape = region.get("shape") if isinstance(region, dict) else None
            if not isinstance(shape, dict):
                continue
            unit = shape.get("unit", "pixel")
            if shape.get("type") == "rectangle" and isinstance(shape.get("origin"), dict):
                out.append({"type": "rectangle", "unit": unit, "x": shape["origin"].get("x"),
                            "y": shape["origin"].get("y"), "width": shape.get("width"),
                            "height": shape.get("height"), "description": change.get("description")})
            elif shape.get("type") == "polygon" and isinstance(shape.get("vertices"), list):
                out.append({"type": "polygon", "unit": unit,
                            "points": [(v.get("x"), v.get("y")) for v in shape["vertices"] if isinstance(v, dict)],
                            "description": change.get("description")})
    return out


def _actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for assertion in manifest.get("assertions") or []:
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            agent = action.get("softwareAgent")
            if isinstance(agent, dict):
                agent = " ".join(str(x) for x in (agent.get("name"), agent.get("version")) if x)
            out.append({"action": action.get("action"), "digital_source_type": action.get("digitalSourceType"),
                        "software_agent": agent, "when": action.get("when"),
                        "description": (action.get("parameters") or {}).get("description"),
                        "regions": _regions(action)})
    return out


def _ingredients(store: dict[str, Any], manifest: dict[str, Any], depth: int, seen: set[str]) -> list[dict[str, Any]]:
    out = []
    for ing in manifest.get("ingredients") or []:
        label = ing.get("active_manifest") or ing.get("manifest")
        node = {"title": ing.get("title"), "format": ing.get("format"), "relationship": ing.get("relationship"),
                "manifest": label, "validation": [s.get("code") for s in ing.get("validation_status") or []],
                "ingredients": []}
        if label and label in store and label not in seen and depth < _MAX_DEPTH:
            node["claim_generator"] = _generator(store[label])
            node["ingredients"] = _ingredients(store, store[label], depth + 1, seen | {label})
        out.append(node)
    return out


def _summarise(store: dict[str, Any], state_word: str | None) -> dict[str, Any]:
    manifests = store.get("manifests") or {}
    active_label = store.get("active_manifest")
    active = manifests.get(active_label) or {}
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failures = [f.get("code") for f in results.get("failure") or [] if f.get("code") != _UNTRUSTED]
    status = [s.get("code") for s in store.get("validation_status") or []]
    failures += [c for c in status if c and c != _UNTRUSTED and c not in failures]
    word = (state_word or "").lower()
    if failures or word == "invalid":
        state = "invalid"
    elif word == "trusted":
        state = "trusted"
    else:
        state = "valid"
    statement = {
        "trusted": "Content Credentials are valid and the signer chains to a trust anchor you provided.",
        "valid": "Content Credentials are intact (signature and hashes check out), but the signer is not on a "
                 "trust list held here: anyone can create such a certificate, so the claims are only as "
                 "credible as the signer you recognise.",
        "invalid": "Content Credentials are present but do not validate: the file or its manifest was changed "
                   "after signing, or the manifest is damaged or forged.",
    }[state]
    sig = active.get("signature_info") or {}
    actions = _actions(active)
    return {
        "state": state, "statement": statement, "failure_codes": failures, "validation_status": status,
        "signer_untrusted": _UNTRUSTED in status or any(f.get("code") == _UNTRUSTED for f in results.get("failure") or []),
        "active": {"label": active_label, "title": active.get("title"), "claim_generator": _generator(active),
                   "signer": sig.get("common_name") or sig.get("issuer"), "issuer": sig.get("issuer"),
                   "signing_time": sig.get("time"), "algorithm": sig.get("alg"), "format": active.get("format")},
        "actions": actions,
        "regions": [r for a in actions for r in a["regions"]],
        "ingredients": _ingredients(manifests, active, 0, {active_label} if active_label else set()),
        "manifest_count": len(manifests),
    }


def read_c2pa(path: str | Path, image_format: str | None = None, trust_anchors_pem: str | None = None) -> dict[str, Any]:
    """Read and validate the C2PA manifest store of the file at `path`.

    `image_format`: Pillow's format name (e.g. "JPEG"), used for the MIME type. Returns a
    JSON-safe dict: state, statement, failure_codes, validation_status, active {label, title,
    claim_generator, signer, issuer, signing_time, algorithm}, actions [{action,
    digital_source_type, software_agent, when, description, regions}], regions, ingredients
    (tree), manifest_json (the store as c2pa reports it), sdk. Never raises for a bad manifest."""
    import c2pa

    base: dict[str, Any] = {"state": "none", "statement": MISSING_STATEMENT, "failure_codes": [], "actions": [],
                            "regions": [], "ingredients": [], "active": None, "manifest_json": None,
                            "sdk": f"c2pa-python {c2pa.__version__} ({c2pa.sdk_version()})"}
    data = Path(path).read_bytes()
    mime = _MIME.get((image_format or "").upper())
    if mime is None:
        base["statement"] = MISSING_STATEMENT + f" (C2PA is not read from {image_format or 'this'} files.)"
        return base
    if trust_anchors_pem:
        check_trust_anchors(trust_anchors_pem)
    try:
        context = _context(trust_anchors_pem)
    except c2pa.C2paError as exc:
        raise ValueError(f"the C2PA trust anchors could not be used ({exc})") from exc
    try:
        reader = c2pa.Reader.try_create(mime, io.BytesIO(data), context=context)
    except c2pa.C2paError as exc:
        base.update(state="error", statement=f"A C2PA manifest is present but could not be read ({exc}). Treat "
                                              "it as unverified.", failure_codes=[type(exc).__name__])
        return base
    if reader is None:
        return base
    with reader:
        text = reader.json()
        word = reader.get_validation_state()
    store = json.loads(text)
    base.update(_summarise(store, word))
    base["manifest_json"] = text
    return base
