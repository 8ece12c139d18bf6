"""kptrack viz: the four seed figures, with and without ground truth, and bad input."""


import cv2
import numpy as np
import pytest

pytest.importorskip("torch")  # the test model is built with torch.onnx; tracker.eval.viz itself never imports torch

from kp_tinydata import write_tiny_bop  # noqa: E402
from kptrack_testing import DOT_COLORS, make_color_dot_model  # noqa: E402

from tracker.formats.bop_dataset import BopDataset  # noqa: E402
from tracker.cli import main  # noqa: E402
from tracker.errors import KptrackError  # noqa: E402
from tracker.geometry import rotation_error_deg  # noqa: E402
from tracker.objects import load_object  # noqa: E402
from tracker.eval.viz import FIGURES, VizConfig, run_viz  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("viz")
    obj = load_object("default")
    k = obj.num_keypoints
    data = write_tiny_bop(root / "data", obj, n=2, size=240, colors=DOT_COLORS[:k], radius=4, distance=(1.6, 1.8))
    model = make_color_dot_model(root / "dots.onnx", DOT_COLORS[:k], obj.keypoint_names)
    return obj, data, model, root


def test_four_figures_with_ground_truth(setup, tmp_path):
    obj, data, model, _ = setup
    sample = BopDataset(data, "train_synth", object=obj)[0]
    res = run_viz(VizConfig(image=str(sample.image_path), out=str(tmp_path / "figs"), model=str(model), dataset=str(data)))
    assert sorted(res.paths) == sorted(FIGURES)
    for p in res.paths.values():
        img = cv2.imread(str(p))
        assert img is not None and img.std() > 5, p
    assert res.gt is not None
    # the dot "network" finds every keypoint: predictions match the labels, the pose matches the GT pose
    err = np.linalg.norm(res.keypoints_uv - sample.keypoints_uv, axis=1)
    assert np.nanmedian(err) < 1.0
    assert res.pose is not None
    assert rotation_error_deg(res.pose.R_m2c, sample.R_m2c) < 3.0
    assert np.linalg.norm(res.pose.t_m2c - sample.t_m2c) < 0.03 * sample.t_m2c[2]
    # the projected CAD figure is the image with the model drawn over it
    before = cv2.imread(str(sample.image_path))
    after = cv2.imread(str(res.paths["projected_cad.png"]))
    f = after.shape[0] // before.shape[0]  # small images are drawn 2x
    assert f in (1, 2) and after.shape == (before.shape[0] * f, before.shape[1] * f, 3)
    before = cv2.resize(before, (after.shape[1], after.shape[0]), interpolation=cv2.INTER_LINEAR)
    assert np.mean(np.abs(after.astype(int) - before).max(axis=2) > 40) > 0.02


def test_search_without_ground_truth_and_cli(setup, tmp_path, capsys):
    obj, data, model, root = setup
    # the object small in a bigger frame: the search (letterbox, windows) then the re-crop find it
    sample = BopDataset(data, "train_synth", object=obj)[1]
    img = cv2.imread(str(sample.image_path))
    big = np.full((480, 640, 3), 30, np.uint8)
    big[200:440, 300:540] = img
    p = root / "big.png"
    cv2.imwrite(str(p), big)
    out = tmp_path / "figs"
    assert main(["viz", "--image", str(p), "--model", str(model), "--out", str(out)]) == 0
    assert sorted(x.name for x in out.iterdir()) == sorted(FIGURES)
    assert "wrote" in capsys.readouterr().out
    res = run_viz(VizConfig(image=str(p), out=str(out), model=str(model)))
    assert res.gt is None and np.sum(res.conf >= 0.3) >= 8
    expected = sample.keypoints_uv + np.array([300.0, 200.0])
    assert np.nanmedian(np.linalg.norm(res.keypoints_uv - expected, axis=1)) < 1.5
    assert res.pose is not None  # with a guessed camera the scale may be off, but a pose is fitted


def test_bad_input(setup, tmp_path):
    obj, data, model, root = setup
    img = str(BopDataset(data, "train_synth", object=obj)[0].image_path)
    with pytest.raises(KptrackError, match="export"):
        run_viz(VizConfig(image=img, out=str(tmp_path), model=str(root / "run" / "best.pt")))
    with pytest.raises(KptrackError, match="--image"):
        run_viz(VizConfig(image=str(tmp_path / "none.png"), out=str(tmp_path), model=str(model)))
    three = make_color_dot_model(tmp_path / "three.onnx", DOT_COLORS[:3], ("a", "b", "c"))
    with pytest.raises(KptrackError, match="predicts 3 keypoints"):
        run_viz(VizConfig(image=img, out=str(tmp_path), model=str(three)))
    with pytest.raises(KptrackError, match="--dataset"):
        run_viz(VizConfig(image=img, out=str(tmp_path), model=str(model), dataset=str(tmp_path / "nope")))


def test_the_figures_show_the_chosen_tracker_presets_pass(setup, tmp_path):
    obj, data, model, _ = setup
    sample = BopDataset(data, "train_synth", object=obj)[0]
    fast = run_viz(VizConfig(image=str(sample.image_path), out=str(tmp_path / "f"), model=str(model), dataset=str(data)))
    acc = run_viz(VizConfig(image=str(sample.image_path), out=str(tmp_path / "a"), model=str(model), dataset=str(data),
                            preset="accurate"))
    np.testing.assert_allclose(acc.keypoints_uv, fast.keypoints_uv)  # the same crop and network
    assert acc.pose is not None and fast.pose is not None
    # the accurate preset's pose is the fast one refined on the image's edges: moved, and still on the object
    assert np.linalg.norm(acc.pose.t_m2c - fast.pose.t_m2c) > 1e-6
    assert rotation_error_deg(acc.pose.R_m2c, sample.R_m2c) < 3.0
    assert np.linalg.norm(acc.pose.t_m2c - sample.t_m2c) < 0.03 * sample.t_m2c[2]
    with pytest.raises(KptrackError, match="--preset quick: unknown tracker preset"):
        run_viz(VizConfig(image=str(sample.image_path), out=str(tmp_path / "q"), model=str(model), preset="quick"))
    assert not (tmp_path / "q").exists()
