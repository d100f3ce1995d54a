"""The tiled (native-resolution) map of an item in the report: which maps, how, stable regions.

Rows for the details page's model column (`EvidenceItem.tiling`), from the item's squash/tiled
pair (`analysis.tiling.latest_pair`); no rows for an item analysed by the squash alone. Stable
regions are recomputed from the two hash-checked maps at the item's threshold, so the report
says exactly what the inspector shows.
"""

from __future__ import annotations

from declip_desktop.cases.analysis_pairs import STABLE_MIN_IOU, analysis_mode, latest_pair, stable_matches

#: Regions of the tiled map listed by position on the details page; the rest are counted.
MAX_LISTED = 4

METHOD_HTML = f"""
<h3>Native-resolution (tiled) maps</h3>
<p>DeCLIP looks at a whole photo squeezed to 224×224 pixels (the <b>squash</b> map, the method of the
paper); on a 12-megapixel photo each of its cells then covers about 250×190 pixels, and the resize itself
removes fine traces. Items marked “tiled” were also analysed at the image's <b>own resolution</b>: the same
model ran over overlapping tiles of its input size (and, where stated, over the image at one or two
coarser scales), and the tiles' maps were blended with smooth weights into a second map of the whole
image. Both maps are kept, each with the model that made it; the tiling parameters and the number of
forward passes are given on the item's page. A region of the tiled map is called <b>stable</b> when the
squash map finds a region at the same threshold overlapping it with an intersection-over-union of at least
{STABLE_MIN_IOU:g}: it is then seen at two very different scales. An unstable region is seen at one scale
only — often a small edit only the tiles resolve, sometimes a false alarm of one of the maps. The tiled
map sees texture at a scale the model never saw in training (DeCLIP was trained on whole images resized
to its input size), so its values are not on the squash map's scale: a model may put most of a native-resolution image above
the default threshold while still ranking an edit above the rest. Read the tiled map at a threshold
calibrated on authentic references of the same source. Neither map, and no stability mark, is a
verdict.</p>
"""


def tiling_rows(case, evidence_id: int, threshold: float) -> list[tuple[str, str]]:  # noqa: ANN001 - a cases.Case
    pair = latest_pair(case, evidence_id)
    if pair is None:
        latest = case.latest_analysis(evidence_id, successful=True)
        if latest is not None and analysis_mode(latest) == "tiled":  # the run stopped between its two maps
            return [("Map", "tiled (native resolution) only: the squash map of this run was not stored; the result "
                            "shown is the tiled map. Re-analyse the item for both maps")]
        return []
    rows = [("Maps", "squash (whole image at the model's input size, as the paper) and tiled"),
            ("Tiling", pair.describe())]
    try:
        matches = stable_matches(case, pair, threshold)
    except Exception as exc:  # noqa: BLE001 - a damaged map is reported on the page, not fatal to the report
        return rows + [("Tiled map", f"could not be read: {exc}")]
    stable = [m for m in matches if m.stable]
    score = f"{pair.tiled.score:.3f}" if pair.tiled.score is not None else "—"
    rows.append(("Tiled map", f"score {score} · {len(matches)} region(s) above {threshold:.2f}, "
                              f"{len(stable)} stable (IoU ≥ {STABLE_MIN_IOU:g} with a squash-map region)"))
    listed = []
    for m in matches[:MAX_LISTED]:
        x, y, w, h = m.region.bbox
        mark = "stable" if m.stable else "tiled only"
        listed.append(f"{m.region.index}: {x}, {y}, {w} × {h} px, {m.region.area_pct:.3f} %, {mark} (IoU {m.iou:.2f})")
    if len(matches) > MAX_LISTED:
        listed.append(f"… and {len(matches) - MAX_LISTED} more")
    if listed:
        rows.append(("Tiled regions", "; ".join(listed)))
    return rows


__all__ = ["METHOD_HTML", "tiling_rows"]
