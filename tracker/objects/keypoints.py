"""3D keypoints of an object: automatic selection, the on-object check and ``keypoints.json``.

Automatic keypoints are farthest-point sampling over the mesh's surface points, as in PVNet
(Peng et al., "PVNet: Pixel-wise Voting Network for 6DoF Pose Estimation", CVPR 2019), plus
the object's centroid (volume centroid for closed meshes). The candidate points are the
mesh vertices, which sit on corners and edges; area samples are only added for meshes with
fewer vertices than keypoints.

Keypoint check: a keypoint must be within 10 % of the diameter of the surface, *or* inside
the closed volume (generalised winding number > 0.5, Jacobson et al., "Robust
Inside-Outside Segmentation using Generalized Winding Numbers", SIGGRAPH 2013). So a
centroid or any other interior point is accepted whatever its name, while a point floating
outside the object (usually a units or frame mistake) is rejected.

``keypoints.json``: ``{"names": [...], "points_mm": [[x, y, z], ...], "object_name": "..."}``,
points in mm in the mesh's frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tracker.errors import KptrackError
from tracker.formats.jsonfile import read_json
from tracker.objects.model import mesh_diameter

KEYPOINT_SURFACE_TOL = 0.10  # fraction of the diameter a keypoint may lie outside the surface
MIN_KEYPOINTS = 4  # PnP needs at least 4 points


def _closest_point_distances(points: np.ndarray, tri: np.ndarray, chunk: int = 50_000) -> np.ndarray:
    """Distance from each point to the nearest triangle, mm.

    points: (K, 3) float64; tri: (M, 3, 3) float64 triangle corners. Closest point on a
    triangle by Voronoi regions (Ericson, "Real-Time Collision Detection", 5.1.5).
    """
    out = np.full(len(points), np.inf)
    for s in range(0, len(tri), chunk):
        a, b, c = (tri[s : s + chunk, i][None] for i in range(3))  # (1, m, 3)
        p = points[:, None, :]  # (K, 1, 3)
        ab, ac, ap = b - a, c - a, p - a
        d1 = (ab * ap).sum(-1)
        d2 = (ac * ap).sum(-1)
        bp = p - b
        d3 = (ab * bp).sum(-1)
        d4 = (ac * bp).sum(-1)
        cp = p - c
        d5 = (ab * cp).sum(-1)
        d6 = (ac * cp).sum(-1)
        va = d3 * d6 - d5 * d4
        vb = d5 * d2 - d1 * d6
        vc = d1 * d4 - d3 * d2
        with np.errstate(divide="ignore", invalid="ignore"):
            denom = va + vb + vc
            v = np.where(denom != 0, vb / denom, 0.0)
            w = np.where(denom != 0, vc / denom, 0.0)
            q = a + ab * v[..., None] + ac * w[..., None]  # interior
            # edge regions
            t_ab = np.where(d1 - d3 != 0, d1 / (d1 - d3), 0.0)
            t_ac = np.where(d2 - d6 != 0, d2 / (d2 - d6), 0.0)
            t_bc = np.where((d4 - d3) + (d5 - d6) != 0, (d4 - d3) / ((d4 - d3) + (d5 - d6)), 0.0)
        m_bc = (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0)
        q = np.where(m_bc[..., None], b + (c - b) * t_bc[..., None], q)
        m_ac = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
        q = np.where(m_ac[..., None], a + ac * t_ac[..., None], q)
        m_ab = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
        q = np.where(m_ab[..., None], a + ab * t_ab[..., None], q)
        q = np.where(((d6 >= 0) & (d5 <= d6))[..., None], c, q)
        q = np.where(((d3 >= 0) & (d4 <= d3))[..., None], b, q)
        q = np.where(((d1 <= 0) & (d2 <= 0))[..., None], a, q)
        dist = np.linalg.norm(p - q, axis=-1).min(axis=1)
        out = np.minimum(out, dist)
    return out


def _winding_numbers(points: np.ndarray, tri: np.ndarray, chunk: int = 50_000) -> np.ndarray:
    """Generalised winding number of each point w.r.t. the triangle soup: ~1 inside a
    closed outward-wound surface, ~0 outside, fractional for open meshes.

    points: (K, 3) float64; tri: (M, 3, 3) float64. Solid angles by Van Oosterom & Strackee.
    """
    total = np.zeros(len(points))
    for s in range(0, len(tri), chunk):
        a, b, c = (tri[s : s + chunk, i][None] - points[:, None, :] for i in range(3))
        la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
        det = (a * np.cross(b, c)).sum(-1)
        den = la * lb * lc + (a * b).sum(-1) * lc + (a * c).sum(-1) * lb + (b * c).sum(-1) * la
        total += (2.0 * np.arctan2(det, den)).sum(axis=1)
    return total / (4.0 * np.pi)


def keypoint_surface_distance(obj_vertices: np.ndarray, faces: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """(K,) float64 mm: distance of each keypoint to the mesh surface, 0 for points inside
    the closed volume (winding number > 0.5).

    obj_vertices: (N, 3) float64 mm; faces: (M, 3) int; keypoints: (K, 3) float64 mm.
    """
    tri = np.asarray(obj_vertices, dtype=np.float64)[np.asarray(faces)]
    kp = np.asarray(keypoints, dtype=np.float64)
    d = _closest_point_distances(kp, tri)
    inside = np.abs(_winding_numbers(kp, tri)) > 0.5
    return np.where(inside, 0.0, d)


def sample_surface(vertices: np.ndarray, faces: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """(count, 3) float64 mm: area-uniform random points on the mesh surface (deterministic
    for a given seed). vertices: (N, 3) mm; faces: (M, 3) int."""
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    rng = np.random.default_rng(seed)
    if area.sum() <= 0:
        return tri.reshape(-1, 3)[rng.integers(0, tri.shape[0] * 3, count)]
    idx = rng.choice(len(tri), size=count, p=area / area.sum())
    r1, r2 = rng.random(count), rng.random(count)
    flip = r1 + r2 > 1
    r1[flip], r2[flip] = 1 - r1[flip], 1 - r2[flip]
    t = tri[idx]
    return t[:, 0] + r1[:, None] * (t[:, 1] - t[:, 0]) + r2[:, None] * (t[:, 2] - t[:, 0])


def farthest_point_sampling(points: np.ndarray, k: int, start: np.ndarray | None = None,
                            chosen: np.ndarray | None = None) -> np.ndarray:
    """Indices (k,) of greedily farthest points (PVNet keypoint selection).

    points: (P, 3) float64 mm. chosen: (C, 3) float64 mm points already selected (the picks
    continue from them), or None: then the first pick is the point farthest from ``start``
    (default: the mean). Deterministic.
    """
    pts = np.asarray(points, dtype=np.float64)
    if chosen is not None and len(chosen):
        ch = np.asarray(chosen, dtype=np.float64)
        d = np.min(np.linalg.norm(pts[:, None, :] - ch[None, :, :], axis=2), axis=1)
    else:
        ref = pts.mean(axis=0) if start is None else np.asarray(start, dtype=np.float64)
        d = np.linalg.norm(pts - ref, axis=1)
    picks = []
    for _ in range(min(k, len(pts))):
        i = int(np.argmax(d))
        picks.append(i)
        d = np.minimum(d, np.linalg.norm(pts - pts[i], axis=1))
    return np.array(picks, dtype=np.int64)


def mesh_centroid(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(3,) mm: volume centroid of a closed mesh (signed tetrahedra), else the
    area-weighted surface centroid."""
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    vol6 = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2]))
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    total = vol6.sum()
    ext = np.ptp(tri.reshape(-1, 3), axis=0).max() if len(tri) else 0.0
    # a closed mesh has a clearly non-zero volume; an open one gives a meaningless sum
    if ext > 0 and abs(total) / 6.0 > 1e-3 * ext**3 and _is_closed(vertices, faces):
        return (vol6[:, None] * tri.sum(axis=1)).sum(axis=0) / (4.0 * total)
    return (area[:, None] * tri.mean(axis=1)).sum(axis=0) / max(area.sum(), 1e-300)


def _is_closed(vertices: np.ndarray, faces: np.ndarray) -> bool:
    """True if every edge is shared by exactly two faces, after welding vertices at equal
    positions (meshes split for flat colours or UV seams are still closed surfaces)."""
    v = np.asarray(vertices, dtype=np.float64)
    if not len(faces):
        return False
    scale = max(float(np.abs(v).max()), 1e-12)
    _, weld = np.unique(np.round(v / scale, 9), axis=0, return_inverse=True)
    f = weld.reshape(-1)[np.asarray(faces)]
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    return bool(np.all(counts == 2))


def auto_keypoints(vertices: np.ndarray, faces: np.ndarray, num_keypoints: int = 8, seed: int = 0) -> tuple[tuple[str, ...], np.ndarray]:
    """``num_keypoints`` farthest-point-sampled surface keypoints plus the centroid.

    vertices: (N, 3) float64 mm; faces: (M, 3) int. Returns names ``kp0..kp{n-1}, centroid``
    and points (n + 1, 3) float64 mm. The candidate surface points are the mesh vertices:
    they sit on corners and edges, where a keypoint is recognisable and its heatmap peak is
    sharp, while a point in the middle of a flat face is not (FPS over area samples picks
    those on a box). Only when there are fewer vertices than keypoints does the sampling
    continue over area-uniform surface samples (seeded, so deterministic).
    """
    v = np.asarray(vertices, dtype=np.float64)
    verts = np.unique(v, axis=0)
    centroid = mesh_centroid(v, faces)
    pts = verts[farthest_point_sampling(verts, num_keypoints, start=centroid)]
    if len(pts) < num_keypoints:
        samples = sample_surface(v, faces, 2000, seed=seed)
        pts = np.concatenate([pts, samples[farthest_point_sampling(samples, num_keypoints - len(pts), chosen=pts)]])
    names = tuple(f"kp{i}" for i in range(len(pts))) + ("centroid",)
    return names, np.concatenate([pts, centroid[None]])


def read_keypoints_json(path: Path) -> tuple[tuple[str, ...], np.ndarray, str | None]:
    """Read a ``keypoints.json``: names (K strings), points (K, 3) float64 mm and the object
    name (or None). Raises KptrackError naming the file and the fix for any malformed file."""
    fix = f"It must be {{\"names\": [K names], \"points_mm\": [[x, y, z], ...K rows]}} with K >= {MIN_KEYPOINTS}."
    data = read_json(path, "keypoints file not found. Give an existing keypoints.json, or --keypoints auto.", fix)
    if not isinstance(data, dict) or "points_mm" not in data or "names" not in data:
        raise KptrackError(f"{path}: missing 'names' or 'points_mm'. {fix}")
    try:
        pts = np.asarray(data["points_mm"], dtype=np.float64)
    except (TypeError, ValueError):
        raise KptrackError(f"{path}: 'points_mm' is not a list of [x, y, z] numbers. {fix}") from None
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise KptrackError(f"{path}: 'points_mm' has shape {pts.shape}, expected (K, 3). {fix}")
    if not np.all(np.isfinite(pts)):
        raise KptrackError(f"{path}: 'points_mm' contains NaN or infinity. {fix}")
    names = data["names"]
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise KptrackError(f"{path}: 'names' must be a list of non-empty strings. {fix}")
    if len(names) != len(pts):
        raise KptrackError(f"{path}: {len(names)} names for {len(pts)} points. Give one name per point.")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise KptrackError(f"{path}: duplicate keypoint names {dup}. Give each keypoint its own name.")
    if len(pts) < MIN_KEYPOINTS:
        raise KptrackError(f"{path}: {len(pts)} keypoints; the pose solver needs at least {MIN_KEYPOINTS}. Add keypoints.")
    obj_name = data.get("object_name")
    return tuple(names), pts, obj_name if isinstance(obj_name, str) else None


def check_keypoints_on_object(source: str | Path, vertices: np.ndarray, faces: np.ndarray, names, points: np.ndarray,
                              diameter: float | None = None) -> None:
    """Raise KptrackError (naming ``source``) if a keypoint is outside the object by more
    than 10 % of the diameter. vertices (N, 3) mm, faces (M, 3), points (K, 3) mm;
    diameter: mm, computed from the vertices when None."""
    diameter = mesh_diameter(vertices) if not diameter else float(diameter)
    d = keypoint_surface_distance(vertices, faces, points)
    bad = np.nonzero(d > KEYPOINT_SURFACE_TOL * diameter)[0]
    if len(bad):
        worst = ", ".join(f"{names[i]} ({d[i]:.1f} mm)" for i in bad[:5])
        raise KptrackError(
            f"{source}: keypoints lie off the object by more than {KEYPOINT_SURFACE_TOL:.0%} of its diameter "
            f"({diameter:.1f} mm): {worst}. Keypoints must be in mm in the mesh's frame, on or inside the object; "
            "check the --units of the mesh and the keypoint coordinates."
        )
