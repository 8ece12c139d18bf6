"""Backgrounds from the user's own scene: `--backgrounds` takes a video file and samples frames
spread over it; folders of images still work; bad videos get one clear error."""

import cv2
import numpy as np
import pytest

from tracker.errors import KptrackError
from train.synth import SynthConfig, run_synth
from train.synth.backgrounds import BackgroundImages, VideoFrame, list_background_images, video_frames


def _frame_colour(i: int) -> tuple[int, int, int]:
    """A BGR colour that encodes the frame index i (0..39) in its blue and green channels."""
    return (20 + 5 * i, 230 - 5 * i, 128)


def _write_video(path, n=40, w=96, h=64, colour=_frame_colour):
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (w, h))
    assert vw.isOpened()
    for i in range(n):
        vw.write(np.full((h, w, 3), colour(i), np.uint8))
    vw.release()
    return path


def test_video_frames_are_spread_over_the_video_and_decode_to_those_frames(tmp_path):
    video = _write_video(tmp_path / "scene.mp4")
    frames = video_frames(video, max_frames=5)
    assert [f.index for f in frames] == [0, 10, 20, 29, 39]
    for f in frames:
        img = cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (64, 96, 3)
        assert np.abs(img.reshape(-1, 3).mean(0) - _frame_colour(f.index)).max() < 6  # mp4v + JPEG loss
    assert len(list_background_images(video)) == 40  # fewer frames than the cap: all of them


def test_background_images_crop_video_frames(tmp_path):
    frames = video_frames(_write_video(tmp_path / "scene.mp4"), max_frames=8)
    bg = BackgroundImages(frames)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(20):
        img = bg(rng, 32, 48)
        assert img.shape == (32, 48, 3) and img.dtype == np.uint8
        dist = {f.index: np.abs(img.reshape(-1, 3).mean(0) - _frame_colour(f.index)).max() for f in frames}
        nearest = min(dist, key=dist.get)
        assert dist[nearest] < 6  # a crop of one of the sampled frames
        seen.add(nearest)
    assert len(seen) >= 3


def test_synth_takes_a_video_as_backgrounds(tmp_path):
    video = _write_video(tmp_path / "scene.mp4", n=12, colour=lambda i: (0, 0, 200))  # a red scene
    split = run_synth(SynthConfig(out=str(tmp_path / "data"), num=2, seed=0, workers=1, width=64, height=64,
                                  backgrounds=str(video), progress=False, occluder_prob=0.0))
    for p in sorted(split.glob("*/rgb/*.jpg")):
        img = cv2.imread(str(p)).astype(int)
        mask = cv2.imread(str(p.parent.parent / "mask_visib" / f"{p.stem}_000000.png"), cv2.IMREAD_GRAYSCALE) > 0
        b, g, r = np.median(img[~mask], axis=0)
        assert r > g + 60 and r > b + 60  # the background is the video's red scene


def test_bad_background_sources(tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(KptrackError, match="broken.mp4"):
        list_background_images(tmp_path / "broken.mp4")
    with pytest.raises(KptrackError, match="does not exist"):
        list_background_images(tmp_path / "missing.mp4")
    with pytest.raises(KptrackError, match="--backgrounds"):
        SynthConfig(out=str(tmp_path / "o"), backgrounds=str(tmp_path / "missing.mp4")).validate()
    one = tmp_path / "one.png"
    cv2.imwrite(str(one), np.zeros((8, 8, 3), np.uint8))
    assert list_background_images(one) == [one]
    assert repr(VideoFrame(tmp_path / "v.mp4", 3)).endswith("v.mp4#3")
