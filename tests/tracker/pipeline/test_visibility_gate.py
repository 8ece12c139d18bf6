"""The visibility gate: hidden keypoints' heatmaps zeroed only while enough others hold the pose;
a two-output model gated inside the ONNX backend."""

import numpy as np
import pytest

from kptrack_testing import _export

from tracker.errors import KptrackError
from tracker.formats.modelmeta import ModelMeta
from tracker.pipeline.infer import OnnxHeatmapModel
from tracker.pipeline.visibility import VisibilityGate


def _heatmaps(peaks):
    hm = np.zeros((len(peaks), len(peaks[0]), 8, 8), np.float32)
    for b, row in enumerate(peaks):
        for k, p in enumerate(row):
            hm[b, k, 3, 4] = p
    return hm


def test_gate_zeroes_hidden_keypoints_when_enough_stay():
    hm = _heatmaps([[0.9, 0.8, 0.7, 0.9, 0.6, 0.8]])
    vis = np.array([[0.9, 0.9, 0.9, 0.9, 0.2, 0.4]])
    gated = VisibilityGate(threshold=0.5, min_keep=4)(hm, vis)
    assert gated.tolist() == [True]
    assert hm[0, 4].max() == 0.0 and hm[0, 5].max() == 0.0
    assert [hm[0, k].max() for k in range(4)] == pytest.approx([0.9, 0.8, 0.7, 0.9])


def test_gate_leaves_a_crop_whose_visible_keypoints_are_too_few_or_too_weak():
    # three visible with strong peaks, one visible but weak: 3 < min_keep, so nothing is dropped
    hm = _heatmaps([[0.9, 0.8, 0.7, 0.3, 0.6, 0.8], [0.9, 0.9, 0.9, 0.9, 0.9, 0.9]])
    vis = np.array([[0.9, 0.9, 0.9, 0.9, 0.2, 0.1], [0.9, 0.9, 0.9, 0.9, 0.9, 0.9]])
    before = hm.copy()
    gated = VisibilityGate(threshold=0.5, min_keep=4, min_peak=0.5)(hm, vis)
    assert gated.tolist() == [False, False]  # the second: nothing hidden
    np.testing.assert_array_equal(hm, before)


@pytest.mark.parametrize("kw", [{"threshold": 0.0}, {"threshold": 1.0}, {"min_keep": 2}, {"min_peak": 1.5}])
def test_gate_refuses_settings_that_cannot_work(kw):
    with pytest.raises(KptrackError, match="visibility gate"):
        VisibilityGate(**kw)


def test_from_meta_reads_the_models_settings():
    g = VisibilityGate.from_meta({"output": "visibility", "threshold": 0.3, "min_keep": 5, "min_peak": 0.4, "seed": 1})
    assert (g.threshold, g.min_keep, g.min_peak) == (0.3, 5, 0.4)


class _TwoHeads:
    """A conv net with a visibility output: keypoint c hidden where the crop's mean red is high."""

    def __new__(cls, k):
        import torch

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                torch.manual_seed(0)
                self.c = torch.nn.Conv2d(3, k, 3, stride=4, padding=1)

            def forward(self, x):
                h = torch.sigmoid(self.c(x))
                red = x[:, 0].mean((1, 2))[:, None]
                vis = torch.cat([torch.ones_like(red).repeat(1, k - 1), torch.sigmoid(-10 * red)], 1)
                return vis, h

        return Net()


def test_backend_gates_a_two_output_model(tmp_path):
    names = ("a", "b", "c", "d", "e")
    spec = {"output": "visibility", "threshold": 0.5, "min_keep": 3, "min_peak": 0.0}
    meta = ModelMeta(keypoint_names=names, visibility=spec)
    path = _export(_TwoHeads(len(names)), tmp_path / "vis.onnx", meta, output_names=("visibility", "heatmaps"))
    plain = _export(_TwoHeads(len(names)), tmp_path / "plain.onnx", ModelMeta(keypoint_names=names),
                    output_names=("visibility", "heatmaps"))
    m, ref = OnnxHeatmapModel(path, device="cpu", threads=1), OnnxHeatmapModel(plain, device="cpu", threads=1)
    assert m.gate is not None and ref.gate is None
    crops = np.zeros((2, 256, 256, 3), np.uint8)
    crops[0, ..., 2] = 255  # BGR: crop 0 is red -> its last keypoint hidden
    got, want = m(crops), ref(crops)
    assert got[0, -1].max() == 0.0 and want[0, -1].max() > 0.0
    np.testing.assert_array_equal(got[0, :-1], want[0, :-1])
    np.testing.assert_array_equal(got[1], want[1])
    assert m.gated == 1


def test_backend_refuses_metadata_naming_a_missing_output(tmp_path):
    names = ("a", "b", "c")
    meta = ModelMeta(keypoint_names=names, visibility={"output": "nope", "threshold": 0.5, "min_keep": 3, "min_peak": 0.5})
    path = _export(_TwoHeads(len(names)), tmp_path / "bad.onnx", meta, output_names=("visibility", "heatmaps"))
    with pytest.raises(KptrackError, match="visibility output 'nope'"):
        OnnxHeatmapModel(path, device="cpu", threads=1)
