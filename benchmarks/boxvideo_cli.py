"""``python -m benchmarks.boxvideo_cli {fetch,camera,peer}``: OpenCV's box.mp4 benchmark (issue #11).

* ``fetch``: box.mp4 into the cache (``apt-get download opencv-doc``; or ``--deb FILE``/``--video PATH``).
* ``camera``: fit the focal length to the reference labels and write camera.yaml.
* ``peer``: peer (a), the tutorial's ORB + FLANN + PnP-RANSAC, registered on one frame of the
  ``texture`` split at the pose its labels give; prints its fps, the frames with a pose and its
  corner error against the ``heldout`` labels.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from benchmarks.boxvideo import camera_matrix, fetch_box_video, fit_focal, fit_focal_and_z_scale, frame_rms, read_labels
from benchmarks.peers import FeaturePeer, FeaturePeerConfig
from tracker.camera import Camera
from tracker.camera.yaml_io import write_camera_yaml
from tracker.errors import KptrackError
from tracker.objects.object_dir import load_object
from tracker.paths import REPO_ROOT, default_cache_dir

log = logging.getLogger(__name__)
DATA = REPO_ROOT / "benchmarks" / "data" / "opencv_box"


@dataclass(frozen=True)
class PeerRun:
    """Peer (a) on the whole video: frames, poses found, wall and process CPU seconds over all
    frames (registration not timed), per-corner errors px on held-out labelled frames, held-out frames scored and posed."""

    frames: int
    posed: int
    seconds: float
    cpu_seconds: float
    corner_errors: np.ndarray
    heldout_frames: int
    heldout_posed: int
    registered: int


def _labelled(obj, labels: dict[int, dict[str, np.ndarray]]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{frame: (points_mm (n, 3), uv (n, 2))} from labels and the object's named keypoints."""
    idx = {n: i for i, n in enumerate(obj.keypoint_names)}
    return {f: (obj.keypoints[[idx[n] for n in pts]], np.array(list(pts.values()))) for f, pts in labels.items()}


def run_peer(video: Path, obj, camera: Camera, labels: dict[int, dict[str, np.ndarray]], register_frame: int,
             heldout: list[int], config: FeaturePeerConfig = FeaturePeerConfig()) -> PeerRun:
    """Register peer (a) on ``register_frame`` at its labels' pose (SQPnP + LM), then run it on
    every frame of ``video``; errors are |project(label's keypoint, peer pose) - label| px."""
    corr = _labelled(obj, labels)
    if register_frame not in corr or len(corr[register_frame][0]) < 4:
        raise KptrackError(f"--register {register_frame}: needs >= 4 labelled corners in the labels file.")
    K = np.asarray(camera.K, np.float64)
    _, rvec, tvec = frame_rms(*corr[register_frame], K)
    cap = cv2.VideoCapture(str(video))
    peer, n, posed, secs, cpu, errs, h_posed = FeaturePeer(obj, camera, config), 0, 0, 0.0, 0.0, [], 0
    cap.set(cv2.CAP_PROP_POS_FRAMES, register_frame)
    ok, reg = cap.read()
    if not ok:
        raise KptrackError(f"{video}: cannot read frame {register_frame}.")
    n_reg = peer.register(cv2.Rodrigues(rvec)[0], tvec, image=reg)
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    held = set(heldout)
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        t0, c0 = time.perf_counter(), time.process_time()
        pose = peer(frame)
        secs, cpu = secs + time.perf_counter() - t0, cpu + time.process_time() - c0
        if pose is not None:
            posed += 1
            if n in held and n in corr:
                h_posed += 1
                X, uv = corr[n]
                errs.append(np.linalg.norm(camera.project(X, pose.R_m2c, pose.t_m2c) - uv, axis=1))
        n += 1
    cap.release()
    return PeerRun(n, posed, secs, cpu, np.concatenate(errs) if errs else np.zeros(0), len(held & set(corr)), h_posed, n_reg)


def _cmd_fetch(a: argparse.Namespace) -> None:
    path = fetch_box_video(Path(a.cache), Path(a.video) if a.video else None, Path(a.deb) if a.deb else None)
    print(f"box.mp4: {path} (640x480, 455 frames)")


def _cmd_camera(a: argparse.Namespace) -> None:
    obj = load_object(a.object)
    corr = _labelled(obj, read_labels(Path(a.labels), list(obj.keypoint_names)))
    n = sum(len(v[0]) for v in corr.values())
    fit = fit_focal(corr, 640, 480)
    print(f"object's own size: f = {fit.f:.1f} px, RMS over {n} points in {len(corr)} frames {fit.rms:.2f} px")
    if a.fit_thickness:
        fit, s = fit_focal_and_z_scale(corr, 640, 480)
        z = np.ptp(obj.keypoints[:, 2])
        print(f"z side fitted too: {s * z:.1f} mm (the object's {z:.1f} mm x {s:.3f}): f = {fit.f:.1f} px, RMS {fit.rms:.2f} px")
    for i, r in fit.frame_rms.items():
        print(f"frame {i:3d}: {len(corr[i][0])} corners, RMS {r:.2f} px{'  <- over 3 px' if r > 3 else ''}")
    if a.out:
        out = Path(a.out)
        if out.exists() and not a.force:
            raise KptrackError(f"--out {out}: exists; pass --force to replace it.")
        write_camera_yaml(out, camera_matrix(fit.f, 640, 480), None, 640, 480)
        print(f"wrote {out} (f = {fit.f:.1f} px)")


def _cmd_peer(a: argparse.Namespace) -> None:
    obj = load_object(a.object)
    labels = read_labels(Path(a.labels), list(obj.keypoint_names))
    split = json.loads(Path(a.split).read_text())
    reg = a.register if a.register is not None else split["texture"][0]
    if reg in split["heldout"]:
        raise KptrackError(f"--register {reg}: a held-out frame; register on a frame of the 'texture' split.")
    video = fetch_box_video(Path(a.cache), Path(a.video) if a.video else None)
    r = run_peer(video, obj, Camera.from_yaml(a.camera), labels, reg, split["heldout"])
    e = r.corner_errors
    print(f"peer (a) ORB+FLANN+PnP-RANSAC on box.mp4, registered on frame {reg} ({r.registered} model points)")
    print(f"  frames with a pose: {r.posed}/{r.frames}; fps {r.frames / max(r.seconds, 1e-9):.1f} "
          f"({1000 * r.seconds / max(r.frames, 1):.1f} ms/frame wall, {1000 * r.cpu_seconds / max(r.frames, 1):.1f} ms CPU)")
    if len(e):
        print(f"  held-out frames posed: {r.heldout_posed}/{r.heldout_frames}; corner error px over {len(e)} corners: "
              f"median {np.median(e):.2f}, mean {np.mean(e):.2f}, <=5 px {100 * np.mean(e <= 5):.1f} %, "
              f"<=10 px {100 * np.mean(e <= 10):.1f} %")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.boxvideo_cli", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cache", default=str(default_cache_dir()), help="cache folder for box.mp4 (default %(default)s)")
    common.add_argument("--video", default=None, help="use this box.mp4 instead of the cached/fetched one")
    f = sub.add_parser("fetch", parents=[common], help="fetch box.mp4 into the cache and check it")
    f.add_argument("--deb", default=None, help="an opencv-doc .deb already downloaded (skips apt-get download)")
    lab = argparse.ArgumentParser(add_help=False)
    lab.add_argument("--object", required=True,
                     help="the box's object dir (kptrack object init --box 258x189x75 --out DIR)")
    lab.add_argument("--labels", default=str(DATA / "labels.csv"), help="reference labels CSV frame,name,x,y")
    c = sub.add_parser("camera", parents=[lab], help="fit the focal length to the labels; print per-frame RMS")
    c.add_argument("--out", default=None, help="write camera.yaml here (OpenCV FileStorage)")
    c.add_argument("--force", action="store_true", help="replace --out if it exists")
    c.add_argument("--fit-thickness", action="store_true",
                   help="fit the box's z side (box.ply's 75 mm) with f; per-frame RMS and --out then use that fit")
    pr = sub.add_parser("peer", parents=[common, lab], help="run peer (a) on box.mp4 and score it on held-out labels")
    pr.add_argument("--camera", default=str(DATA / "camera.yaml"), help="camera.yaml (from the camera command)")
    pr.add_argument("--split", default=str(DATA / "split.json"), help="split.json with 'texture' and 'heldout' frames")
    pr.add_argument("--register", type=int, default=None, help="registration frame, from the 'texture' split (default: its first frame)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 with the message on a KptrackError)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    a = build_parser().parse_args(argv)
    try:
        {"fetch": _cmd_fetch, "camera": _cmd_camera, "peer": _cmd_peer}[a.cmd](a)
    except KptrackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
