"""benchmarks/boxvideo.py: the .deb unpacking and cache logic (on a fake package, nothing
downloaded), the labels reader and the focal-length fit on synthetic projections."""

from __future__ import annotations

import gzip
import io
import tarfile

import cv2
import numpy as np
import pytest

from benchmarks import boxvideo as bv
from tracker.errors import KptrackError


def _ar(members: dict[str, bytes]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members.items():
        head = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        out += head + data + (b"\n" if len(data) % 2 else b"")
    return out


def _tar_xz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _fake_deb(path, files):
    path.write_bytes(_ar({"debian-binary": b"2.0\n", "control.tar.xz": _tar_xz({"./control": b"x"}),
                          "data.tar.xz": _tar_xz(files)}))
    return path


def _small_video(path, n=3, size=(64, 48)):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for i in range(n):
        w.write(np.full((size[1], size[0], 3), 40 * i, np.uint8))
    w.release()
    return path.read_bytes()


def test_read_deb_member_returns_the_file(tmp_path):
    deb = _fake_deb(tmp_path / "opencv-doc_1_all.deb", {"./" + bv.DEB_MEMBER: b"payload", "./usr/other": b"no"})
    assert bv.read_deb_member(deb, bv.DEB_MEMBER) == b"payload"
    with pytest.raises(KptrackError, match="has no"):
        bv.read_deb_member(deb, "usr/share/missing.gz")
    bad = tmp_path / "bad.deb"
    bad.write_bytes(b"not an archive")
    with pytest.raises(KptrackError, match="not a readable Debian package"):
        bv.read_deb_member(bad, bv.DEB_MEMBER)


def test_fetch_unpacks_into_cache_and_checks_the_video(tmp_path, monkeypatch):
    video = _small_video(tmp_path / "v.avi")
    deb = _fake_deb(tmp_path / "opencv-doc_1_all.deb", {"./" + bv.DEB_MEMBER: gzip.compress(video)})
    monkeypatch.setattr(bv, "apt_download", lambda *a: pytest.fail("apt-get must not run when --deb is given"))
    cache = tmp_path / "cache"
    with pytest.raises(KptrackError, match="64x48, 3 frames"):
        bv.fetch_box_video(cache, deb=deb)
    out = bv.default_video_path(cache)
    assert not out.exists() and out.with_name("box.mp4.bad").read_bytes() == video  # kept aside, not served


def test_fetch_uses_the_cache_or_the_given_video(tmp_path, monkeypatch):
    monkeypatch.setattr(bv, "apt_download", lambda *a: pytest.fail("no download when the video is cached"))
    monkeypatch.setattr(bv, "video_info", lambda p: (640, 480, 455))
    out = bv.default_video_path(tmp_path)
    out.parent.mkdir(parents=True)
    out.write_bytes(b"cached")
    assert bv.fetch_box_video(tmp_path) == out
    given = tmp_path / "mine.mp4"
    given.write_bytes(b"x")
    assert bv.fetch_box_video(tmp_path / "other", video=given) == given
    with pytest.raises(KptrackError, match="not found"):
        bv.fetch_box_video(tmp_path, video=tmp_path / "missing.mp4")


def test_read_labels_and_bad_names(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text("frame,name,x,y\n0,kp0,1.5,2\n0,kp1,3,4\n12,kp0,5,6\n")
    lab = bv.read_labels(p, ["kp0", "kp1"])
    assert sorted(lab) == [0, 12] and np.allclose(lab[0]["kp1"], [3, 4])
    with pytest.raises(KptrackError, match="kp1"):
        bv.read_labels(p, ["kp0"])


def _box_corners(size):
    h = np.asarray(size) / 2
    return np.array([[sx * h[0], sy * h[1], sz * h[2]] for sz in (-1, 1) for sx in (-1, 1) for sy in (-1, 1)])


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_fit_focal_recovers_a_known_focal_length(noise):
    rng = np.random.default_rng(3)
    X = _box_corners(bv.BOX_MM)
    K = bv.camera_matrix(700.0, 640, 480)
    frames = {}
    for i in range(6):
        rvec = rng.normal(size=3) * 0.6
        tvec = np.array([rng.uniform(-60, 60), rng.uniform(-40, 40), rng.uniform(450, 700)])
        uv = cv2.projectPoints(X, rvec, tvec, K, None)[0].reshape(-1, 2) + rng.normal(scale=noise, size=(8, 2))
        frames[i] = (X, uv)
    fit = bv.fit_focal(frames, 640, 480)
    assert abs(fit.f - 700.0) < (0.5 if noise == 0 else 25.0)
    assert fit.rms < np.sqrt(2) * noise + 0.05 and len(fit.frame_rms) == 6
    wrong = bv.camera_matrix(1578.0, 640, 480)  # the tutorial's value fits worse
    assert np.mean([bv.frame_rms(X, uv, wrong)[0] for X, uv in frames.values()]) > fit.rms + 0.5


def test_fit_focal_needs_two_frames():
    X = _box_corners(bv.BOX_MM)
    with pytest.raises(KptrackError, match="at least 2"):
        bv.fit_focal({0: (X, np.zeros((8, 2)))}, 640, 480)


def test_fit_focal_and_z_scale_finds_a_thicker_box():
    rng = np.random.default_rng(5)
    true, model = _box_corners((258.0, 189.0, 81.0)), _box_corners(bv.BOX_MM)
    K = bv.camera_matrix(600.0, 640, 480)
    frames = {}
    for i in range(5):
        rvec, tvec = rng.normal(size=3) * 0.5, np.array([rng.uniform(-50, 50), rng.uniform(-30, 30), rng.uniform(500, 700)])
        frames[i] = (model, cv2.projectPoints(true, rvec, tvec, K, None)[0].reshape(-1, 2))
    plain = bv.fit_focal(frames, 640, 480)
    fit, s = bv.fit_focal_and_z_scale(frames, 640, 480)
    assert abs(s * 75.0 - 81.0) < 0.3 and abs(fit.f - 600.0) < 3.0
    assert fit.rms < 0.05 < plain.rms
