"""Shared benchmark fixtures (keep this small; stage files own their own setup).

Quick mode: ``KPTRACK_BENCH_QUICK=1`` (fewer baseline rounds, smaller work where a file supports it).
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.benchutil import QUICK


@pytest.fixture(scope="session")
def bench_quick() -> bool:
    """True under ``KPTRACK_BENCH_QUICK=1``."""
    return QUICK


@pytest.fixture(scope="session")
def camera_640x480():
    """A 640x480 pinhole camera, 60 degree horizontal field of view, no distortion."""
    from tracker.camera import Camera

    return Camera.from_fov(60.0, 640, 480)


@pytest.fixture(scope="session")
def sphere_5k():
    """An ObjectModel: icosphere of radius 50 mm, 5120 triangles, random vertex colours."""
    import trimesh

    from tracker.objects import ObjectModel

    m = trimesh.creation.icosphere(subdivisions=4, radius=50.0)
    v = np.asarray(m.vertices, np.float64)
    colors = np.random.default_rng(0).integers(0, 256, (len(v), 3), dtype=np.uint8)
    kp = v[np.linspace(0, len(v) - 1, 8).astype(int)]
    return ObjectModel.from_mesh("sphere_5k", v, np.asarray(m.faces, np.int32), [f"k{i}" for i in range(8)], kp, vertex_colors=colors)
