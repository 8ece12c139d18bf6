import json

import numpy as np
import pytest

from tracker.errors import KptrackError
from tracker.formats.modelmeta import META_KEYS, ModelMeta


def _meta(order="RGB"):
    return ModelMeta(keypoint_names=("a", "b", "c", "d"), channel_order=order, mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 8.0),
                     object_id="drill", preset="lite", config={"lr": 2.5e-4}, scores={"pck5": 0.9})


def test_metadata_round_trip_has_exactly_the_documented_keys():
    m = _meta()
    d = m.to_dict()
    assert set(d) == set(META_KEYS)
    assert all(isinstance(v, str) for v in d.values())
    assert json.loads(d["keypoint_names"]) == ["a", "b", "c", "d"]
    back = ModelMeta.from_dict(d)
    assert back == m


@pytest.mark.parametrize("order", ["RGB", "BGR"])
def test_normalise_matches_the_formula(order):
    m = _meta(order)
    x = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    y = m.normalise(x)
    assert y.shape == (2, 3, 5, 7) and y.dtype == np.float32 and y.flags.c_contiguous
    src = [2, 1, 0] if order == "RGB" else [0, 1, 2]
    for c in range(3):
        expect = (x[..., src[c]].astype(np.float32) - m.mean[c]) / m.std[c]
        assert np.allclose(y[:, c], expect, atol=1e-6)
    # float input takes the arithmetic path and agrees
    assert np.allclose(m.normalise(x.astype(np.float32)), y, atol=1e-5)


def test_missing_or_malformed_metadata_names_the_model():
    d = _meta().to_dict()
    del d["mean"]
    with pytest.raises(KptrackError, match="mymodel.onnx.*mean"):
        ModelMeta.from_dict(d, source="mymodel.onnx")
    d = _meta().to_dict()
    d["keypoint_names"] = "[not json"
    with pytest.raises(KptrackError, match="mymodel.onnx"):
        ModelMeta.from_dict(d, source="mymodel.onnx")
    d = _meta().to_dict()
    d["channel_order"] = "HSV"
    with pytest.raises(KptrackError, match="channel_order"):
        ModelMeta.from_dict(d, source="mymodel.onnx")


def test_visibility_entry_round_trips_and_a_malformed_one_is_refused():
    spec = {"output": "visibility", "threshold": 0.5, "min_keep": 4, "min_peak": 0.5}
    m = ModelMeta(keypoint_names=("a", "b", "c"), visibility=spec)
    assert ModelMeta.from_dict(m.to_dict()).visibility == spec
    assert ModelMeta.from_dict(ModelMeta(keypoint_names=("a",)).to_dict()).visibility == {}
    d = {**m.to_dict(), "visibility": "[1, 2]"}
    with pytest.raises(KptrackError, match="visibility"):
        ModelMeta.from_dict(d, source="x.onnx")
