"""Texture lookup (bilinear, repeating uv) and Pillow image conversion."""

import numpy as np

from tracker.objects.texture import pil_to_bgr as _pil_to_bgr
from tracker.objects.texture import sample_texture


def test_pillow_images_convert_to_bgr():
    class FakePil:  # what trimesh hands over when Pillow is installed
        def convert(self, mode):
            assert mode == "RGB"
            return np.array([[[10, 20, 30]]], np.uint8)

    np.testing.assert_array_equal(_pil_to_bgr(FakePil()), [[[30, 20, 10]]])
    assert _pil_to_bgr(None) is None


def test_sample_texture_bilinear_and_repeat():
    t = np.zeros((2, 2, 3), np.uint8)
    t[0, 0], t[0, 1], t[1, 0], t[1, 1] = 0, 100, 200, 60  # rows: v=1 on top
    got = sample_texture(t, np.array([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [0.5, 0.5], [1.5, 0.0]]))[:, 0]
    np.testing.assert_array_equal(got, [0, 100, 200, 90, 130])  # last: u=1.5 repeats to 0.5
