"""Fixtures shared by the pipeline tests: the 640x480 camera (60 deg field of view) the crops are
cut from, and the test cylinder (the continuous-symmetry case of the edge, ring and coast tests)."""

import pytest
from kp_meshes import cylinder_object
from tracker.camera import Camera


@pytest.fixture(scope="module", name="cam")
def camera_640x480():
    return Camera.from_fov(60.0, 640, 480)


@pytest.fixture(scope="module", name="cyl")
def cylinder():
    return cylinder_object()
