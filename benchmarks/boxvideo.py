"""OpenCV's box.mp4 (issue #11): fetch the real video, read its reference labels, fit its camera.

The video is the one of OpenCV's tutorial "Real Time pose estimation of a textured object": a hand
moves a printed cookie box (258 x 189 x 75 mm, the tutorial's box.ply in cm); 640 x 480, 455 frames.
Debian's ``opencv-doc`` package carries it as ``usr/share/doc/opencv-doc/opencv4/html/box.mp4.gz``.
:func:`fetch_box_video` takes it from there (``apt-get download opencv-doc``, then the member is
read out of the .deb: an ar archive whose ``data.tar.*`` holds the files, as ``dpkg -x`` would
unpack them) into a cache, or checks a copy the user gives. The video is never committed.

Reference labels (``benchmarks/data/opencv_box/labels.csv``): rows ``frame,name,x,y``; frame is
the 0-based video frame, name a keypoint of the box's object directory (``kptrack object init
--box 258x189x75``), x, y frame pixels (pixel centres at integers). :func:`fit_focal` fits the one
focal length (fx = fy, principal point at the image centre, no distortion) that best explains the
labels of several frames, each frame with its own pose.

Commands: ``python -m benchmarks.boxvideo_cli {fetch,camera,peer} --help`` (:mod:`benchmarks.boxvideo_cli`).
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import lzma
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracker.atomic import atomic_write
from tracker.errors import KptrackError

log = logging.getLogger(__name__)

DEB_PACKAGE = "opencv-doc"
DEB_MEMBER = "usr/share/doc/opencv-doc/opencv4/html/box.mp4.gz"
VIDEO_SIZE = (640, 480)
VIDEO_FRAMES = 455
BOX_MM = (258.0, 189.0, 75.0)
GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


# ----------------------------------------------------------------------------- the video
def default_video_path(cache_dir: Path) -> Path:
    """Where :func:`fetch_box_video` keeps the video: ``cache_dir/opencv_box/box.mp4``."""
    return Path(cache_dir) / "opencv_box" / "box.mp4"


def video_info(path: Path) -> tuple[int, int, int]:
    """(width, height, frames) of a video, frames counted by decoding (container counts can be off by one)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise KptrackError(f"{path}: OpenCV cannot open this video. Pass box.mp4 from opencv-doc, or leave --video out "
                           "to fetch it.")
    w, h, n = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), 0
    while cap.grab():
        n += 1
    cap.release()
    return w, h, n


def check_box_video(path: Path) -> Path:
    """``path`` if it is OpenCV's box.mp4 (640 x 480, 455 frames), else KptrackError naming what differs."""
    path = Path(path)
    if not path.is_file():
        raise KptrackError(f"--video {path}: file not found. Leave --video out to fetch box.mp4 from Debian's opencv-doc.")
    w, h, n = video_info(path)
    if (w, h) != VIDEO_SIZE or n != VIDEO_FRAMES:
        raise KptrackError(f"{path}: {w}x{h}, {n} frames, but OpenCV's box.mp4 is 640x480 with 455 frames. Pass the "
                           "tutorial's video (opencv-doc: usr/share/doc/opencv-doc/opencv4/html/box.mp4.gz, gunzipped).")
    return path


def _ar_members(blob: bytes) -> dict[str, bytes]:
    """The members of an ar archive (a .deb): name -> bytes."""
    if not blob.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive")
    out, pos = {}, 8
    while pos + 60 <= len(blob):
        head = blob[pos:pos + 60]
        name = head[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(head[48:58].decode("ascii").strip())
        out[name] = blob[pos + 60:pos + 60 + size]
        pos += 60 + size + (size % 2)
    return out


def read_deb_member(deb: Path, member: str) -> bytes:
    """The bytes of file ``member`` (e.g. 'usr/share/...') inside Debian package ``deb``.

    Reads the package's ``data.tar.xz`` / ``.gz`` / plain ``.tar`` (zstd, which newer Ubuntu packages
    use, is left to ``dpkg-deb --fsys-tarfile``). Raises KptrackError naming the package and member."""
    deb = Path(deb)
    try:
        members = _ar_members(deb.read_bytes())
    except (OSError, ValueError) as e:
        raise KptrackError(f"{deb}: not a readable Debian package ({e}). Delete it and fetch again.") from e
    data_name = next((n for n in members if n.startswith("data.tar")), None)
    if data_name is None:
        raise KptrackError(f"{deb}: no data.tar member; not a Debian binary package. Delete it and fetch again.")
    raw = members[data_name]
    if data_name.endswith(".xz"):
        raw = lzma.decompress(raw)
    elif data_name.endswith(".gz"):
        raw = gzip.decompress(raw)
    elif data_name != "data.tar":
        raw = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for name in (member, "./" + member):
            try:
                f = tar.extractfile(name)
            except KeyError:
                continue
            if f is not None:
                return f.read()
    raise KptrackError(f"{deb}: has no {member}. This opencv-doc version does not ship box.mp4; pass --video PATH.")


def apt_download(package: str, folder: Path) -> Path:
    """``apt-get download package`` into ``folder``; returns the .deb. KptrackError when apt cannot."""
    try:
        subprocess.run(["apt-get", "download", package], cwd=folder, check=True, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise KptrackError("apt-get not found: fetching box.mp4 needs a Debian/Ubuntu system. Download "
                           "opencv-doc's .deb elsewhere and pass --deb FILE, or pass --video box.mp4.") from e
    except subprocess.CalledProcessError as e:
        raise KptrackError(f"apt-get download {package} failed: {e.stderr.strip()[-300:]}. Run `apt-get update` first, "
                           "or pass --deb FILE / --video box.mp4.") from e
    debs = sorted(Path(folder).glob(f"{package}_*.deb"))
    if not debs:
        raise KptrackError(f"apt-get download {package} wrote no .deb in {folder}. Pass --deb FILE or --video box.mp4.")
    return debs[-1]


def fetch_box_video(cache_dir: Path, video: Path | None = None, deb: Path | None = None) -> Path:
    """OpenCV's box.mp4, checked (640 x 480, 455 frames); returns its path.

    video: a copy the user has; it is checked and returned as is (nothing is copied).
    Otherwise the cached ``cache_dir/opencv_box/box.mp4`` when present, else it is unpacked from
    ``deb`` (an opencv-doc .deb) or from one ``apt-get download opencv-doc`` fetches into a
    temporary folder, gunzipped and written atomically into the cache."""
    if video is not None:
        return check_box_video(Path(video))
    out = default_video_path(cache_dir)
    if out.is_file():
        return check_box_video(out)
    with tempfile.TemporaryDirectory() as tmp:
        deb_path = Path(deb) if deb is not None else apt_download(DEB_PACKAGE, Path(tmp))
        blob = read_deb_member(deb_path, DEB_MEMBER)
        try:
            data = gzip.decompress(blob)
        except OSError as e:
            raise KptrackError(f"{deb_path}: {DEB_MEMBER} is not gzip data ({e}). Pass --video box.mp4.") from e
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(out) as f:
                f.write(data)
        except OSError as e:
            raise KptrackError(f"{out}: cannot write the video ({e}). Pass --cache DIR on a writable disk.") from e
    log.info("wrote %s (%d bytes)", out, len(data))
    try:
        return check_box_video(out)
    except KptrackError:
        shutil.move(str(out), str(out) + ".bad")
        raise


# ----------------------------------------------------------------------------- labels
def read_labels(path: Path, names: list[str] | None = None) -> dict[int, dict[str, np.ndarray]]:
    """Labels CSV ``frame,name,x,y`` -> {frame: {name: (2,) float64 px}}. With ``names``, a name
    not among them is a KptrackError naming the row."""
    path = Path(path)
    if not path.is_file():
        raise KptrackError(f"{path}: labels file not found. It ships as benchmarks/data/opencv_box/labels.csv.")
    out: dict[int, dict[str, np.ndarray]] = {}
    with open(path, newline="") as f:
        for i, row in enumerate(csv.DictReader(f), start=2):
            try:
                frame, name, xy = int(row["frame"]), row["name"].strip(), np.array([float(row["x"]), float(row["y"])])
            except (KeyError, TypeError, ValueError) as e:
                raise KptrackError(f"{path}:{i}: expected columns frame,name,x,y with numbers ({e}).") from e
            if names is not None and name not in names:
                raise KptrackError(f"{path}:{i}: keypoint {name!r} is not one of the object's {names}.")
            out.setdefault(frame, {})[name] = xy
    return out


# ----------------------------------------------------------------------------- focal length
def camera_matrix(f: float, width: int, height: int) -> np.ndarray:
    """K (3, 3) with fx = fy = f px and the principal point at the image centre ((w-1)/2, (h-1)/2)."""
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def frame_rms(points_mm: np.ndarray, uv: np.ndarray, K: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Pose of one frame from n >= 4 correspondences (points_mm (n, 3) model mm, uv (n, 2) px) by
    SQPnP then Levenberg-Marquardt. Returns (RMS reprojection px, rvec (3,), tvec (3,) mm)."""
    X = np.ascontiguousarray(points_mm, np.float64)
    x = np.ascontiguousarray(uv, np.float64)
    ok, r, t = cv2.solvePnP(X, x, K, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return float("inf"), np.zeros(3), np.zeros(3)
    r, t = cv2.solvePnPRefineLM(X, x, K, None, r, t)
    proj = cv2.projectPoints(X, r, t, K, None)[0].reshape(-1, 2)
    return float(np.sqrt(np.mean(np.sum((proj - x) ** 2, axis=1)))), r.ravel(), t.ravel()


@dataclass(frozen=True)
class FocalFit:
    """Result of :func:`fit_focal`: f px, the RMS over all labelled points at f, per-frame RMS."""

    f: float
    rms: float
    frame_rms: dict[int, float]


def fit_focal(frames: dict[int, tuple[np.ndarray, np.ndarray]], width: int, height: int,
              f_range: tuple[float, float] = (200.0, 3000.0), scan_steps: int = 57, tol: float = 0.05) -> FocalFit:
    """The focal length (px; fx = fy, principal point at the image centre, no distortion) that
    minimises the reprojection RMS over all frames, each frame posed on its own.

    frames: {frame: (points_mm (n, 3), uv (n, 2) px)} with n >= 4 (frames with fewer are skipped).
    Method: a geometric scan of ``scan_steps`` values over ``f_range``, then golden-section search
    in the bracket around the best scanned value down to ``tol`` px. The objective is the RMS over
    all labelled points of every frame (each frame's pose by SQPnP + LM at that f)."""
    use = {k: v for k, v in frames.items() if len(v[0]) >= 4}
    if len(use) < 2:
        raise KptrackError(f"fit_focal: {len(use)} frames with >= 4 labelled points; label at least 2 (better 6+).")

    def total(f: float) -> float:
        K = camera_matrix(f, width, height)
        sq = [frame_rms(X, x, K)[0] ** 2 * len(X) for X, x in use.values()]
        return float(np.sqrt(sum(sq) / sum(len(X) for X, _ in use.values())))

    fs = np.geomspace(f_range[0], f_range[1], scan_steps)
    k = int(np.argmin([total(f) for f in fs]))
    f = _golden(total, fs[max(k - 1, 0)], fs[min(k + 1, len(fs) - 1)], tol)
    K = camera_matrix(f, width, height)
    return FocalFit(float(f), total(f), {i: frame_rms(X, x, K)[0] for i, (X, x) in sorted(use.items())})


def _golden(fun, a: float, b: float, tol: float) -> float:
    """Argmin of a unimodal ``fun`` on [a, b] by golden-section search, to ``tol``."""
    c, d = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
    fc, fd = fun(c), fun(d)
    while b - a > tol:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - GOLDEN * (b - a)
            fc = fun(c)
        else:
            a, c, fc = c, d, fd
            d = a + GOLDEN * (b - a)
            fd = fun(d)
    return (a + b) / 2.0


def fit_focal_and_z_scale(frames: dict[int, tuple[np.ndarray, np.ndarray]], width: int, height: int,
                          scale_range: tuple[float, float] = (0.8, 1.25), tol: float = 1e-3) -> tuple[FocalFit, float]:
    """:func:`fit_focal` with the model's z coordinates scaled by a factor s fitted too: for a box
    whose third side (z, e.g. the 75 mm of box.ply) is the least sure of its measures.

    frames: as for fit_focal (points_mm (n, 3) model mm, uv (n, 2) px). Golden-section search on s
    over ``scale_range`` of the RMS at each s's best focal length. Returns (the FocalFit at the best
    s, s); the fitted side is s times the given one."""
    zs = np.array([1.0, 1.0, 0.0])

    def scaled(s: float) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        return {k: (X * (zs + s * np.array([0.0, 0.0, 1.0])), x) for k, (X, x) in frames.items()}

    s = _golden(lambda s: fit_focal(scaled(s), width, height, tol=0.5).rms, *scale_range, tol)
    return fit_focal(scaled(s), width, height), float(s)
