"""Copy-move (clone) detection: SIFT keypoints matched within the image, verified geometrically.

Method (after Amerini et al., "A SIFT-based forensic method for copy-move attack
detection", IEEE TIFS 2011): keypoints are matched against the same image's keypoints;
a match is kept when it is much closer than the next candidate (generalized 2NN test)
and far enough away in the image; pairs are grouped by RANSAC into similarity
transforms (rotation + scale + shift), so a rotated or rescaled copy is still found.
Each group links two regions: which of them is the original cannot be told from pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

DEFAULT_MAX_SIDE = 1600
MIN_INLIERS = 8
RATIO = 0.6
MIN_DISTANCE = 24  # pixels (analysis scale) between the two ends of a match
MAX_CLUSTERS = 8


@dataclass(frozen=True)
class CloneCluster:
    """Two linked regions (polygons in full-image pixels) and the transform from A to B."""

    points_a: list[tuple[float, float]]
    points_b: list[tuple[float, float]]
    hull_a: list[tuple[float, float]]
    hull_b: list[tuple[float, float]]
    rotation_deg: float
    scale: float
    shift: tuple[float, float]
    inliers: int

    def as_dict(self) -> dict:
        return asdict(self)


def _hull(points: np.ndarray) -> list[tuple[float, float]]:
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2)
    return [(round(float(x), 1), round(float(y), 1)) for x, y in hull]


def _candidate_pairs(gray: np.ndarray, max_features: int) -> tuple[np.ndarray, np.ndarray]:
    sift = cv2.SIFT_create(nfeatures=max_features, contrastThreshold=0.02)
    kps, desc = sift.detectAndCompute(gray, None)
    if desc is None or len(kps) < 3:
        return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    pts = np.array([k.pt for k in kps], np.float32)
    matcher = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 4}, {"checks": 64})
    knn = matcher.knnMatch(desc, desc, k=min(8, len(kps)))
    a, b, seen = [], [], set()
    for i, cand in enumerate(knn):
        cand = [m for m in cand if m.trainIdx != i]  # the keypoint itself
        for j in range(len(cand) - 1):  # g2NN: accept while d_j / d_{j+1} < RATIO
            if cand[j].distance >= RATIO * max(cand[j + 1].distance, 1e-6):
                break
            t = cand[j].trainIdx
            if np.hypot(*(pts[i] - pts[t])) < MIN_DISTANCE:
                continue
            key = (min(i, t), max(i, t))
            if key not in seen:
                seen.add(key)
                a.append(pts[key[0]])
                b.append(pts[key[1]])
    return np.array(a, np.float32).reshape(-1, 2), np.array(b, np.float32).reshape(-1, 2)


def find_clones(rgb: np.ndarray, max_side: int = DEFAULT_MAX_SIDE, max_features: int = 12000,
                min_inliers: int = MIN_INLIERS) -> list[CloneCluster]:
    """Copy-moved regions in `rgb` (H×W×3 uint8). Analysis runs at most `max_side` px on the long
    side (smaller copies than ~max_side/40 px may be missed); results are in full-image pixels."""
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        gray = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    a, b = _candidate_pairs(gray, max_features)
    clusters: list[CloneCluster] = []
    cv2.setRNGSeed(0)  # RANSAC samples at random: fixed seed, same answer on every run
    while len(a) >= min_inliers and len(clusters) < MAX_CLUSTERS:
        # Each unordered pair is tried in both directions: a cluster's pairs need one orientation.
        src = np.concatenate([a, b])
        dst = np.concatenate([b, a])
        model, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0,
                                                  maxIters=4000, confidence=0.995)
        if model is None or mask is None:
            break
        inl = mask.ravel().astype(bool)
        n = len(a)
        used = inl[:n] | inl[n:]
        if int(inl.sum()) < min_inliers:
            break
        pa, pb = src[inl], dst[inl]
        rot = float(np.degrees(np.arctan2(model[1, 0], model[0, 0])))
        sc = float(np.hypot(model[0, 0], model[1, 0]))
        shift = np.hypot(*model[:, 2])
        if sc > 0.25 and not (abs(rot) < 1 and abs(sc - 1) < 0.02 and shift < MIN_DISTANCE):
            inv = 1.0 / scale
            clusters.append(CloneCluster(
                points_a=[(round(float(x * inv), 1), round(float(y * inv), 1)) for x, y in pa],
                points_b=[(round(float(x * inv), 1), round(float(y * inv), 1)) for x, y in pb],
                hull_a=[(x * inv, y * inv) for x, y in _hull(pa)], hull_b=[(x * inv, y * inv) for x, y in _hull(pb)],
                rotation_deg=round(rot, 2), scale=round(sc, 4),
                shift=(round(float(model[0, 2] * inv), 1), round(float(model[1, 2] * inv), 1)),
                inliers=int(inl.sum())))
        a, b = a[~used], b[~used]
    return clusters


_COLOURS = [(255, 64, 64), (64, 200, 255), (255, 200, 0), (160, 255, 64), (255, 64, 255), (64, 255, 200),
            (255, 128, 0), (200, 160, 255)]


def render_clones(rgb: np.ndarray, clusters: list[CloneCluster]) -> np.ndarray:
    """The image darkened, each cluster's two regions outlined in one colour and joined by match lines."""
    out = (rgb.astype(np.float32) * 0.55).astype(np.uint8)
    thick = max(1, round(max(rgb.shape[:2]) / 600))
    for i, c in enumerate(clusters):
        colour = _COLOURS[i % len(_COLOURS)]
        for hull in (c.hull_a, c.hull_b):
            poly = np.array(hull, np.float32).round().astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(out, [poly], True, colour, thick * 2, cv2.LINE_AA)
        step = max(1, len(c.points_a) // 40)
        for (xa, ya), (xb, yb) in list(zip(c.points_a, c.points_b))[::step]:
            cv2.line(out, (round(xa), round(ya)), (round(xb), round(yb)), colour, thick, cv2.LINE_AA)
    return out
