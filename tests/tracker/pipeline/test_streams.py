"""Many streams in one process: one batched ONNX Runtime session, each stream's poses equal to
running it alone, outputs per stream, and two streams writing one file refused."""

import numpy as np
import pytest

pytest.importorskip("torch")

from kptrack_testing import DOT_COLORS, dot_gt_pose, make_color_dot_model, write_dot_video  # noqa: E402

from tracker.camera import Camera  # noqa: E402
from tracker.cli import main  # noqa: E402
from tracker.errors import KptrackError  # noqa: E402
from tracker.formats.bop_results import read_results_csv  # noqa: E402
from tracker.objects import load_object  # noqa: E402
from tracker.pipeline.session import TrackConfig  # noqa: E402
from tracker.pipeline.sinks import read_jsonl  # noqa: E402
from tracker.pipeline.streams import StreamsConfig, source_name, stream_paths, track_streams  # noqa: E402

W, H = 320, 240


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("streams")
    obj = load_object("default")
    cam = Camera.from_fov(60.0, W, H)
    model = make_color_dot_model(d / "dots.onnx", DOT_COLORS[: obj.num_keypoints], obj.keypoint_names)
    a = write_dot_video(d / "a.avi", obj, cam, 50, hidden=lambda i: 20 <= i < 26)
    b = write_dot_video(d / "b.avi", obj, cam, 40, pose_of=lambda i: dot_gt_pose(i + 30))  # shorter, other poses
    cam.to_yaml(d / "camera.yaml")
    return {"model": str(model), "a": str(a), "b": str(b)}


def _common(clips):
    return ["--model", clips["model"], "--device", "cpu", "--threads", "1"]


def test_two_batched_streams_give_each_stream_the_poses_it_gets_alone(clips, tmp_path, capsys):
    for name in ("a", "b"):
        assert main(["track", "--source", clips[name], "--poses", str(tmp_path / f"alone_{name}.csv"), "--loop", "sequential",
                     *_common(clips)]) == 0
    assert main(["track", "--source", clips["a"], "--source", clips["b"], "--poses", str(tmp_path / "multi_{name}.csv"),
                 "--out", str(tmp_path / "multi_{i}.avi"), *_common(clips)]) == 0
    printed = capsys.readouterr().out
    calls, batch = next(line for line in printed.splitlines() if line.startswith("inference:")).split(", mean batch ")
    assert float(batch.split()[0]) >= 1.0  # one shared session (how the streams group into calls varies; test_batching holds the rule)
    for name, n in (("a", 50), ("b", 40)):
        alone, multi = read_results_csv(tmp_path / f"alone_{name}.csv"), read_results_csv(tmp_path / f"multi_{name}.csv")
        assert [r.im_id for r in multi] == [r.im_id for r in alone] and len(alone) >= n - 10
        for x, y in zip(alone, multi):
            assert np.array_equal(x.R_m2c, y.R_m2c) and np.array_equal(x.t_m2c, y.t_m2c)
        assert [d["index"] for d in read_jsonl(tmp_path / f"multi_{name}.jsonl")] == list(range(n))
    assert (tmp_path / "multi_0.avi").stat().st_size > 0 and (tmp_path / "multi_1.avi").stat().st_size > 0


def test_two_sources_with_one_output_path_is_one_clear_error(clips, tmp_path):
    cfg = StreamsConfig(TrackConfig(source=clips["a"], model=clips["model"], device="cpu"), (clips["a"], clips["b"]),
                        poses=(str(tmp_path / "same.csv"),))
    with pytest.raises(KptrackError, match=r"--poses .*same.csv: --source .*a.avi and --source .*b.avi would both write it"):
        track_streams(cfg)
    assert not (tmp_path / "same.csv").exists()
    with pytest.raises(KptrackError, match="given 3 times for 2"):
        stream_paths("--out", ["x.avi", "y.avi", "z.avi"], ["a", "b"])
    with pytest.raises(KptrackError, match="would both write it"):
        stream_paths("--out", ["x.avi", "./x.avi"], ["a", "b"])


def test_output_patterns_and_source_names():
    assert stream_paths("--poses", ["p_{i}_{name}.csv"], ["/v/cam.mp4", "0", "rtsp://h:554/live/1"]) == [
        "p_0_cam.csv", "p_1_0.csv", "p_2_h_554_live_1.csv"]
    assert stream_paths("--poses", [], ["a", "b"]) == [None, None]
    assert source_name("frames/") == "frames"
