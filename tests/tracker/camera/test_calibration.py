"""Tests for tracker.camera.calibration on chessboard images synthesised with known intrinsics and poses."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

import tracker.camera.calibration as cal
from tracker import geometry as g
from tracker.camera import Camera
from tracker.camera.calibration import (
    CalibrateConfig,
    board_points,
    calibrate,
    calibrate_source,
    collect_views,
    find_board,
    parse_board,
    select_views,
    view_descriptor,
)
from tracker.cli import main as cli_main
from tracker.commands import calibrate as calibrate_cmd
from tracker.errors import KptrackError

BOARD = (8, 5)  # inner corners: a 9 x 6-square board
SQUARE = 25.0  # mm
W, H = 480, 360
TRUE = Camera.from_intrinsics(430.0, 425.0, 243.2, 176.4, W, H)
TEX_SQ = 32  # texture pixels per square
SS = 2  # supersampling factor for anti-aliased rendering


def _texture():
    """Board texture: (cols+1) x (rows+1) squares plus a one-square white margin.
    Returns (image, A) with A mapping board mm (X, Y, 1) to texture pixels (x, y, 1)."""
    cols, rows = BOARD
    nx, ny = cols + 3, rows + 3  # squares incl. margin
    tex = np.full((ny * TEX_SQ, nx * TEX_SQ), 255, np.uint8)
    for j in range(rows + 1):
        for i in range(cols + 1):
            if (i + j) % 2 == 0:
                tex[(j + 1) * TEX_SQ : (j + 2) * TEX_SQ, (i + 1) * TEX_SQ : (i + 2) * TEX_SQ] = 0
    # inner corner (0, 0) sits between squares 1 and 2, i.e. at texture pixel edge 2 * TEX_SQ,
    # whose pixel-centre coordinate is 2 * TEX_SQ - 0.5
    k = TEX_SQ / SQUARE
    A = np.array([[k, 0, 2 * TEX_SQ - 0.5], [0, k, 2 * TEX_SQ - 0.5], [0, 0, 1.0]])
    return tex, A


def _poses(n, rng):
    cols, rows = BOARD
    centre = np.array([(cols - 1) * SQUARE / 2, (rows - 1) * SQUARE / 2, 0.0])
    out = []
    for _ in range(n):
        R = g.so3_exp([rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), rng.uniform(-0.4, 0.4)])
        p = np.array([rng.uniform(-50, 50), rng.uniform(-35, 35), rng.uniform(330, 430)])
        out.append((R, p - R @ centre))
    return out


def _render(cam: Camera, poses, background=128):
    """Anti-aliased images of the board: render at SS x resolution (with lens distortion if the
    camera has it), then INTER_AREA downsample; the camera's pixel-centre scaling keeps it exact."""
    tex, A = _texture()
    big = cam.scaled(SS)
    ys, xs = np.mgrid[0 : big.height, 0 : big.width].astype(np.float64)
    pix = np.stack([xs.ravel(), ys.ravel()], -1)
    ideal = big.undistort_points(pix)  # distorted pixel -> ideal pinhole pixel (pose independent)
    ideal_h = np.hstack([ideal, np.ones((len(ideal), 1))])
    images = []
    for R, t in poses:
        H_board2img = big.K @ np.column_stack([R[:, 0], R[:, 1], t])
        H_img2tex = A @ np.linalg.inv(H_board2img)
        q = ideal_h @ H_img2tex.T
        mx = (q[:, 0] / q[:, 2]).reshape(big.height, big.width).astype(np.float32)
        my = (q[:, 1] / q[:, 2]).reshape(big.height, big.width).astype(np.float32)
        img = cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=background)
        small = cv2.resize(img, (cam.width, cam.height), interpolation=cv2.INTER_AREA)
        images.append(cv2.cvtColor(small, cv2.COLOR_GRAY2BGR))
    return images


def _write_folder(path, images):
    path.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        cv2.imwrite(str(path / f"{i}.png"), im)
    return path


@pytest.fixture(scope="module")
def board_images():
    rng = np.random.default_rng(5)
    poses = _poses(10, rng)
    return poses, _render(TRUE, poses)


# ------------------------------------------------------------------ pieces
def test_parse_board():
    assert parse_board("9x6") == (9, 6)
    assert parse_board(" 7X5 ") == (7, 5)
    for bad in ["9", "9by6", "1x6", "x", "9x6x2"]:
        with pytest.raises(KptrackError, match="--board"):
            parse_board(bad)


def test_board_points_order_matches_detector(board_images):
    poses, images = board_images
    R, t = poses[0]
    corners = find_board(images[0], BOARD)
    assert corners is not None and corners.shape == (BOARD[0] * BOARD[1], 2)
    obj = board_points(BOARD, SQUARE)
    assert obj.shape == (40, 3) and obj.dtype == np.float32
    expected = g.project(obj, R, t, TRUE.K)
    # the detector may start from either end of a board; both are valid labellings
    err = min(np.abs(corners - expected).max(), np.abs(corners[::-1] - expected).max())
    assert err < 0.1  # subpixel corners agree with the true projection


def test_find_board_none_on_blank():
    assert find_board(np.full((120, 160, 3), 128, np.uint8), BOARD) is None


def test_find_board_downscaled_detection_maps_back(board_images, monkeypatch):
    _, images = board_images
    full = find_board(images[1], BOARD)
    monkeypatch.setattr(cal, "DETECT_MAX_SIDE", 240)  # force detection at half size
    half = find_board(images[1], BOARD)
    assert half is not None
    np.testing.assert_allclose(half, full, atol=0.05)


def test_view_descriptor_and_selection():
    cols, rows = BOARD
    grid = np.stack(np.meshgrid(np.arange(cols), np.arange(rows)), -1).reshape(-1, 2).astype(float)
    flat = 100 + grid * 20
    d = view_descriptor(flat, BOARD, (W, H))
    assert d[3] == pytest.approx(0, abs=1e-9) and d[4] == pytest.approx(0, abs=1e-9)
    assert d[0] == pytest.approx((100 + 3.5 * 20) / W)
    # a board whose bottom edge is shorter than its top is tilted: nonzero descriptor
    shrink = flat.copy().reshape(rows, cols, 2)
    shrink[..., 0] = 170 + (shrink[..., 0] - 170) * (1 - 0.05 * np.arange(rows))[:, None]
    assert view_descriptor(shrink.reshape(-1, 2), BOARD, (W, H))[3] > 0.1
    # farthest-point sampling skips duplicates
    descs = np.array([[0.5, 0.5, 0.3, 0, 0]] * 5 + [[0.2, 0.2, 0.2, 0.3, 0], [0.8, 0.8, 0.2, 0, -0.3]])
    pick = select_views(descs, 3)
    assert len(pick) == 3 and 5 in pick and 6 in pick
    assert select_views(descs, 10) == list(range(7))


def test_collect_views_live_drops_near_duplicates(board_images):
    _, images = board_images
    frames = [(i, images[i // 3]) for i in range(12)]  # each view repeated 3 times
    v = collect_views(frames, BOARD, max_views=40, live=True)
    assert v.found == 12 and len(v.corners) == 4
    assert v.frame_indices == [0, 3, 6, 9]
    v2 = collect_views(frames, BOARD, max_views=2, live=True)
    assert len(v2.corners) == 2 and v2.frames_searched == 4  # stops as soon as it has enough
    v3 = collect_views(frames, BOARD, max_views=3, live=False, stride=2)
    assert v3.frames_searched == 6 and v3.found == 6 and len(v3.corners) == 3


# ------------------------------------------------------------------ end to end
def test_calibrate_image_folder_recovers_intrinsics(tmp_path, board_images):
    _, images = board_images
    folder = _write_folder(tmp_path / "imgs", images + [np.full((H, W, 3), 90, np.uint8)])  # one blank frame
    res = calibrate_source(str(folder), BOARD, SQUARE, max_views=40)
    c = res.camera
    assert res.boards_found == 10 and res.frames_searched == 11
    assert c.size == (W, H)
    assert c.fx == pytest.approx(TRUE.fx, rel=0.01)
    assert c.fy == pytest.approx(TRUE.fy, rel=0.01)
    assert abs(c.cx - TRUE.cx) < 3 and abs(c.cy - TRUE.cy) < 3
    assert res.rms < 0.3


def test_calibrate_with_lens_distortion(tmp_path):
    true = Camera.from_intrinsics(430.0, 425.0, 243.2, 176.4, W, H, [-0.25, 0.08, 0.0, 0.0, 0.0])
    rng = np.random.default_rng(11)
    images = _render(true, _poses(10, rng))
    res = calibrate_source(str(_write_folder(tmp_path / "d", images)), BOARD, SQUARE, max_views=10)
    c = res.camera
    assert c.fx == pytest.approx(true.fx, rel=0.03)
    assert c.fy == pytest.approx(true.fy, rel=0.03)
    assert c.dist[0] == pytest.approx(-0.25, abs=0.03)
    assert c.dist[1] == pytest.approx(0.08, abs=0.05)
    assert c.dist[4] == 0.0  # k3 fixed by default
    # the lens model as a whole agrees with the truth, also near the image corners
    pts = np.array([[110.0, 70.0], [370.0, 75.0], [240.0, 176.0], [115.0, 280.0], [20.0, 20.0], [460.0, 340.0]])
    np.testing.assert_allclose(c.undistort_points(pts), true.undistort_points(pts), atol=1.0)
    # --k3 frees the term (it then fits something nonzero)
    with_k3 = calibrate_source(str(tmp_path / "d"), BOARD, SQUARE, max_views=10, k3=True).camera
    assert with_k3.dist[4] != 0.0
    assert with_k3.fx == pytest.approx(true.fx, rel=0.03)


def test_calibrate_video_and_max_views(tmp_path, board_images):
    _, images = board_images
    path = tmp_path / "board.avi"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    assert vw.isOpened()
    for im in images:
        vw.write(im)
    vw.release()
    res = calibrate_source(str(path), BOARD, SQUARE, max_views=6)
    assert len(res.frame_indices) == 6 and res.boards_found == 10
    assert res.camera.fx == pytest.approx(TRUE.fx, rel=0.04)


def test_cli_writes_loadable_yaml(tmp_path, board_images, capsys):
    _, images = board_images
    folder = _write_folder(tmp_path / "imgs", images)
    out = tmp_path / "cam" / "cam.yaml"
    rc = cli_main(["calibrate", "--source", str(folder), "--board", "8x5", "--square", "25", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "RMS reprojection error" in text and str(out) in text
    c = Camera.from_yaml(out)
    assert c.fx == pytest.approx(TRUE.fx, rel=0.02) and c.dist.shape == (5,) and c.dist[4] == 0.0


def test_too_few_boards(tmp_path, board_images):
    _, images = board_images
    blanks = [np.full((H, W, 3), 100, np.uint8)] * 3
    folder = _write_folder(tmp_path / "few", images[:3] + blanks)
    with pytest.raises(KptrackError) as e:
        calibrate_source(str(folder), BOARD, SQUARE)
    msg = str(e.value)
    assert str(folder) in msg and "found in 3 of 6" in msg and "at least 5" in msg


def test_wrong_board_size_gives_clear_error(tmp_path, board_images):
    _, images = board_images
    folder = _write_folder(tmp_path / "wrong", images[:5])
    rc = cli_main(["calibrate", "--source", str(folder), "--board", "9x6", "--out", str(tmp_path / "c.yaml")])
    assert rc == 2  # KptrackError -> one line, exit 2
    assert not (tmp_path / "c.yaml").exists()


@pytest.mark.parametrize(
    "source, kwargs, match",
    [
        ("{tmp}/does_not_exist", {}, "no such file or folder"),
        ("{tmp}/empty_dir", {}, "no images"),
        ("{tmp}/imgs", dict(max_views=3), "--max-views"),
        ("{tmp}/imgs", dict(square_mm=0.0), "--square"),
    ],
)
def test_bad_inputs(tmp_path, source, kwargs, match):
    (tmp_path / "empty_dir").mkdir()
    _write_folder(tmp_path / "imgs", [np.zeros((10, 10, 3), np.uint8)])
    args = dict(square_mm=25.0, max_views=40) | kwargs
    with pytest.raises(KptrackError, match=match):
        calibrate_source(source.format(tmp=tmp_path), BOARD, args["square_mm"], args["max_views"])


def _command_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    calibrate_cmd.add_arguments(p)
    return p


def test_run_from_args_namespace(tmp_path, board_images, capsys):
    _, images = board_images
    folder = _write_folder(tmp_path / "imgs", images[:6])
    ns = _command_parser().parse_args(["--source", str(folder), "--board", "8x5", "--square", "25", "--out", str(tmp_path / "o.yaml")])
    assert calibrate_cmd.run(ns) == 0
    assert Camera.from_yaml(tmp_path / "o.yaml").size == (W, H)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("calibrated from 6 views (6 boards in 6 frames searched)")
    assert lines[-1] == f"wrote {tmp_path / 'o.yaml'}"


def test_command_builds_frozen_config():
    ns = _command_parser().parse_args(["--source", "0", "--out", "cam.yaml", "--k3"])
    cfg = calibrate_cmd.config_from_args(ns)
    assert cfg == CalibrateConfig(source="0", out=Path("cam.yaml"), board=(9, 6), square_mm=25.0, max_views=40, show=False, k3=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.k3 = False
    with pytest.raises(KptrackError, match="--board"):
        calibrate_cmd.config_from_args(_command_parser().parse_args(["--source", "0", "--out", "c.yaml", "--board", "9"]))


def test_every_command_option_has_help():
    for action in _command_parser()._actions:
        if action.dest != "help":
            assert action.help, action.dest


def test_calibrate_config_writes_yaml(tmp_path, board_images):
    _, images = board_images
    folder = _write_folder(tmp_path / "imgs", images[:6])
    out = tmp_path / "sub" / "cam.yaml"
    res = calibrate(CalibrateConfig(source=str(folder), out=out, board=BOARD, square_mm=SQUARE))
    assert Camera.from_yaml(out) == res.camera
    assert len(res.frame_indices) == 6


def test_synthetic_renderer_is_faithful(board_images):
    """The test renderer itself: detected corners sit on the true projections (so the
    calibration tests measure the calibrator, not a biased image)."""
    poses, images = board_images
    obj = board_points(BOARD, SQUARE)
    errs = []
    for (R, t), im in zip(poses, images):
        c = find_board(im, BOARD)
        e = g.project(obj, R, t, TRUE.K)
        errs.append(min(np.abs(c - e).max(), np.abs(c[::-1] - e).max()))
    assert max(errs) < 0.15, errs
    assert math.isfinite(float(np.mean(errs)))
