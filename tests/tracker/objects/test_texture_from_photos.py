"""`kptrack object texture`: a textured box rendered from known poses, with its corners projected
as the labels, gives back its texture on the faces the photos saw and the right coverage; bad
photos, bad labels and unwrappable meshes get one clear error each."""

import csv
import json
import types

import cv2
import numpy as np
import pytest

from tracker.camera import Camera
from tracker.cli import main
from tracker.errors import KptrackError
from tracker.formats.coco import CocoAnnotation, CocoImage, write_coco
from tracker.geometry import look_at
from tracker.objects import init_object, load_object
from tracker.objects.primitives import box_keypoints, box_mesh
from tracker.objects.texture_bake import atlas_uv
from tracker.render import Renderer, keypoint_visibility
from tracker.render.renderer import project_points

SIZE = (80.0, 60.0, 40.0)
# three views from the +x, +y, +z side: together they see the +x, +y and +z faces, which hold
# exactly half the box's area (opposite faces are equal), and nothing of the other three
EYES = [(260.0, 110.0, 120.0), (110.0, 250.0, 130.0), (120.0, 100.0, 260.0)]


def _texture(seed=3) -> np.ndarray:
    """300x200 BGR: six smooth, different 100x100 cells (the box's faces)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:100, 0:100].astype(np.float64)
    tex = np.zeros((200, 300, 3), np.uint8)
    for i in range(6):
        base = rng.uniform(60, 190, 3)
        k = rng.uniform(0.08, 0.2, 2)
        wave = np.sin(xx * k[0] + rng.uniform(0, 6)) * np.cos(yy * k[1] + rng.uniform(0, 6))
        cell = np.clip(base + 50 * wave[..., None] * rng.choice([-1, 1], 3), 0, 255).astype(np.uint8)
        cv2.circle(cell, (int(rng.integers(30, 70)), int(rng.integers(30, 70))), 18, rng.uniform(0, 255, 3).tolist(), -1)
        tex[(i // 3) * 100:(i // 3 + 1) * 100, (i % 3) * 100:(i % 3 + 1) * 100] = cv2.GaussianBlur(cell, (0, 0), 1.5)
    return tex


def _psnr(a, b) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A textured box (the truth), the same box plain (to texture), a camera, and three photos
    with COCO labels (the visible corners projected at the known poses)."""
    d = tmp_path_factory.mktemp("scene")
    tex = _texture()
    truth = load_object(init_object(box_mesh(SIZE, tex), keypoints=box_keypoints(SIZE), out_dir=d / "truth", name="box"))
    init_object(box_mesh(SIZE), keypoints=box_keypoints(SIZE), out_dir=d / "plain", name="box")
    cam = Camera.from_intrinsics(900.0, 900.0, 319.5, 239.5, 640, 480)
    cam.to_yaml(d / "camera.yaml")
    rend = Renderer(truth)
    rng = np.random.default_rng(0)
    (d / "labels" / "rgb").mkdir(parents=True)
    images, anns, poses, rows = [], [], [], []
    for i, eye in enumerate(EYES):
        R, t = look_at(np.array(eye), np.zeros(3), up=np.array([0.0, 0.0, 1.0]))
        bg = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)  # busy background: any bleed shows
        out = rend.render(cam, R, t, ambient=1.0, specular=0.0, background=bg)
        cv2.imwrite(str(d / "labels" / "rgb" / f"{i:06d}.png"), out.color)
        _, uv = project_points(truth.keypoints, cam.K, R, t)
        v = np.where(keypoint_visibility(truth.keypoints, cam, R, t, out.depth) == 2, 2, 0).astype(np.int8)
        images.append(CocoImage(i, f"rgb/{i:06d}.png", 640, 480))
        anns.append(CocoAnnotation(i, uv, v, (0.0, 0.0, 640.0, 480.0), 0.0))
        poses.append((R, t, out))
        rows += [(i, n, x, y) for n, (x, y), f in zip(truth.keypoint_names, uv, v) if f]
    write_coco(d / "labels" / "keypoints_coco.json", images, anns, truth.keypoint_names)
    with open(d / "points.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("frame", "name", "x", "y"), *rows])
    return types.SimpleNamespace(dir=d, tex=tex, truth=truth, cam=cam, poses=poses, anns=anns, images=images)


def _seen_cells(img):
    """The +x, +y, +z cells (0, 2, 4 of the 3 x 2 grid), 3 texels in from their edges (the 2 px
    next to the silhouette are left to the mesh colour on purpose)."""
    return [img[(c // 3) * 100 + 3:(c // 3 + 1) * 100 - 3, (c % 3) * 100 + 3:(c % 3 + 1) * 100 - 3] for c in (0, 2, 4)]


def test_texture_from_labelled_photos_recovers_the_seen_faces_and_the_coverage(scene, capsys):
    d = scene.dir
    assert main(["object", "texture", str(d / "truth"), "--labels", str(d / "labels"), "--camera", str(d / "camera.yaml"),
                 "--out", str(d / "out"), "--unseen", "median"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((d / "out" / "texture_report.json").read_text())
    assert abs(report["coverage_percent"] - 50.0) < 3.0 and report["coverage_percent"] <= 50.0 + 1e-6
    assert f"{report['coverage_percent']:.1f} % of the surface seen" in printed
    assert all(p["rms_px"] < 0.05 for p in report["photos"]) and not report["unwrapped_with_xatlas"]
    out = load_object(d / "out")
    assert out.texture.shape == scene.tex.shape and np.allclose(out.uv, scene.truth.uv)
    for got, want in zip(_seen_cells(out.texture), _seen_cells(scene.tex)):
        assert _psnr(got, want) >= 25.0
    unseen = out.texture[100:200, 3:97]  # the -y cell: no photo saw it -> one median colour
    assert np.ptp(unseen.reshape(-1, 3), axis=0).max() <= 1
    check = cv2.imread(str(d / "out" / "texture_check.jpg"))
    assert check.shape[1] == 6 * 256 and check.shape[0] > 256  # six sides, then the photos
    assert load_object(d / "truth").texture is not None  # the input is left as it was


def test_mesh_without_uv_gets_an_xatlas_atlas_and_reproduces_the_photos(scene, capsys):
    d = scene.dir
    pts = d / "points.csv"
    assert main(["object", "texture", str(d / "plain"), "--labels", str(pts), "--frames-from", str(d / "labels" / "rgb"),
                 "--camera", str(d / "camera.yaml"), "--out", str(d / "out_atlas"), "--size", "512"]) == 0
    report = json.loads((d / "out_atlas" / "texture_report.json").read_text())
    assert report["unwrapped_with_xatlas"] and abs(report["coverage_percent"] - 50.0) < 3.0
    out = load_object(d / "out_atlas")
    assert out.is_textured and max(out.texture.shape[:2]) <= 512
    rend = Renderer(out)
    for R, t, photo in scene.poses:
        again = rend.render(scene.cam, R, t, ambient=1.0, specular=0.0)
        inner = cv2.erode(photo.mask.view(np.uint8), np.ones((7, 7), np.uint8)) > 0
        assert _psnr(again.color[inner], photo.color[inner]) >= 25.0
    # unseen faces keep the plain mesh's colour (one colour per face)
    plain = load_object(d / "plain")
    R, t = look_at(np.array([-260.0, -110.0, -120.0]), np.zeros(3), up=np.array([0.0, 0.0, 1.0]))
    a = rend.render(scene.cam, R, t, ambient=1.0, specular=0.0)
    b = Renderer(plain).render(scene.cam, R, t, ambient=1.0, specular=0.0)
    inner = cv2.erode(b.mask.view(np.uint8), np.ones((7, 7), np.uint8)) > 0
    assert np.abs(a.color[inner].astype(int) - b.color[inner]).mean() < 3


def test_masks_keep_pixels_out_and_frames_choose_photos(scene, tmp_path, capsys):
    d = scene.dir
    base = ["object", "texture", str(d / "truth"), "--labels", str(d / "labels"), "--camera", str(d / "camera.yaml")]
    (tmp_path / "masks").mkdir()
    for i in (1, 2):  # photos 1 and 2 wholly masked (a hand over everything): only photo 0 counts
        cv2.imwrite(str(tmp_path / "masks" / f"{i:06d}.png"), np.full((480, 640), 255, np.uint8))
    assert main(base + ["--masks", str(tmp_path / "masks"), "--out", str(tmp_path / "masked")]) == 0
    assert main(base + ["--frames", "0", "--out", str(tmp_path / "one")]) == 0
    masked = json.loads((tmp_path / "masked" / "texture_report.json").read_text())
    one = json.loads((tmp_path / "one" / "texture_report.json").read_text())
    assert [p["surface_seen_percent"] for p in masked["photos"][1:]] == [0.0, 0.0]
    assert len(one["photos"]) == 1 and one["photos"][0]["photo"].endswith("000000.png")
    assert abs(masked["coverage_percent"] - one["coverage_percent"]) < 1e-9 and 20.0 < one["coverage_percent"] < 50.0
    cv2.imwrite(str(tmp_path / "masks" / "000000.png"), np.zeros((10, 10), np.uint8))
    assert main(base + ["--masks", str(tmp_path / "masks"), "--out", str(tmp_path / "bad")]) == 2
    assert "000000.png" in capsys.readouterr().err


def test_photos_through_a_distorting_lens(scene, tmp_path, capsys):
    """Photos taken through strong barrel distortion, the box off the image centre where the lens
    moves it by pixels, labels clicked on the photos: the pose is fitted on undistorted labels and
    each surface point is sampled where the lens put it."""
    cam = Camera(scene.cam.K, np.array([-0.4, 0.15, 0.0, 0.0, 0.0]), 640, 480)
    cam.to_yaml(tmp_path / "lens.yaml")
    # a distorted photo: each of its pixels shows what the pinhole photo shows at that pixel undistorted
    grid = np.stack(np.meshgrid(np.arange(640.0), np.arange(480.0)), -1).reshape(-1, 2)
    ideal = cam.undistort_points(grid).reshape(480, 640, 2).astype(np.float32)
    rend = Renderer(scene.truth)
    (tmp_path / "rgb").mkdir()
    images, anns = [], []
    for i, (R, t, _) in enumerate(scene.poses):
        t = t + np.array([55.0, 40.0, 0.0])  # off-centre: the lens moves it by several pixels
        pinhole = rend.render(scene.cam, R, t, ambient=1.0, specular=0.0, background=np.full((480, 640, 3), 30, np.uint8))
        cv2.imwrite(str(tmp_path / "rgb" / f"{i:06d}.png"), cv2.remap(pinhole.color, ideal, None, cv2.INTER_LINEAR))
        v = np.where(keypoint_visibility(scene.truth.keypoints, scene.cam, R, t, pinhole.depth) == 2, 2, 0).astype(np.int8)
        images.append(CocoImage(i, f"rgb/{i:06d}.png", 640, 480))
        anns.append(CocoAnnotation(i, cam.project(scene.truth.keypoints, R, t), v, (0.0, 0.0, 640.0, 480.0), 0.0))
    write_coco(tmp_path / "keypoints_coco.json", images, anns, scene.truth.keypoint_names)
    assert main(["object", "texture", str(scene.dir / "truth"), "--labels", str(tmp_path), "--camera", str(tmp_path / "lens.yaml"),
                 "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "texture_report.json").read_text())
    assert all(p["rms_px"] < 0.05 for p in report["photos"]) and abs(report["coverage_percent"] - 50.0) < 3.0
    out = load_object(tmp_path / "out")
    for got, want in zip(_seen_cells(out.texture), _seen_cells(scene.tex)):
        assert _psnr(got, want) >= 25.0


def test_bad_photos_and_labels(scene, tmp_path, capsys):
    d = scene.dir
    base = ["object", "texture", str(d / "truth"), "--camera", str(d / "camera.yaml")]
    # a photo whose size is not the camera's
    Camera.from_intrinsics(350.0, 350.0, 159.5, 119.5, 320, 240).to_yaml(tmp_path / "small.yaml")
    assert main(["object", "texture", str(d / "truth"), "--camera", str(tmp_path / "small.yaml"), "--labels", str(d / "labels"),
                 "--out", str(tmp_path / "o1")]) == 2
    err = capsys.readouterr().err
    assert "000000.png" in err and "640x480" in err and "320x240" in err
    # swapped clicks: two corners' labels exchanged on photo 1
    swapped = [CocoAnnotation(a.image_id, a.uv.copy(), a.v, a.bbox, a.area) for a in scene.anns]
    uv, v = swapped[1].uv, swapped[1].v
    i, j = np.flatnonzero(v > 0)[:2]
    uv[[i, j]] = uv[[j, i]]
    write_coco(d / "labels" / "swapped.json", scene.images, swapped, scene.truth.keypoint_names)
    assert main(base + ["--labels", str(d / "labels" / "swapped.json"), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "000001.png" in err and "RMS" in err and "Swapped" in err
    assert any(f"'{scene.truth.keypoint_names[k]}'" in err for k in (i, j))
    # labels of another object, and a points file without the frames it indexes
    write_coco(d / "labels" / "other.json", scene.images, scene.anns, [f"kp{k}" for k in range(8)])
    assert main(base + ["--labels", str(d / "labels" / "other.json"), "--out", str(tmp_path / "o4")]) == 2
    assert "kp0" in capsys.readouterr().err
    assert main(base + ["--labels", str(d / "points.csv"), "--out", str(tmp_path / "o5")]) == 2
    assert "--frames-from" in capsys.readouterr().err
    # an existing --out is never overwritten
    (tmp_path / "o3").mkdir()
    assert main(base + ["--labels", str(d / "labels"), "--out", str(tmp_path / "o3")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()
    assert not list(tmp_path.glob(".o*"))  # no temporary directory left behind


def test_a_mesh_xatlas_cannot_unwrap_is_refused():
    flat = types.SimpleNamespace(vertices=np.zeros((3, 3)), faces=np.array([[0, 1, 2]], np.int32), uv=None, texture=None,
                                 vertex_colors=None)
    with pytest.raises(KptrackError, match="flat.ply: xatlas cannot unwrap"):
        atlas_uv(flat, 256, name="flat.ply")
