"""Small meshes and object files for the tests: a textured tetrahedron (OBJ, GLB), a two-coloured
box, the primitive box and cylinder objects with a symmetry preset, keypoints.json writing, and
the text of a KptrackError."""

import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import trimesh

from tracker.errors import KptrackError
from tracker.objects import ObjectModel
from tracker.objects.primitives import box_keypoints, box_mesh, cylinder_keypoints, cylinder_mesh
from tracker.objects.symmetry import parse_symmetry

# A tetrahedron with one texture quadrant per vertex: its vertex colours are known exactly.
TET_V = np.array([[0, 0, 0], [100, 0, 0], [0, 80, 0], [0, 0, 60]], float)
TET_F = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
TET_UV = np.array([[0.25, 0.75], [0.75, 0.75], [0.25, 0.25], [0.75, 0.25]])  # v up: TL, TR, BL, BR
QUAD_BGR = np.array([[0, 0, 255], [0, 255, 0], [255, 0, 0], [0, 255, 255]], np.uint8)  # red green blue yellow


def quad_texture(colors=QUAD_BGR, n=64):
    t = np.zeros((n, n, 3), np.uint8)
    h = n // 2
    t[:h, :h], t[:h, h:], t[h:, :h], t[h:, h:] = colors
    return t


def write_textured_obj(d: Path) -> Path:
    cv2.imwrite(str(d / "tex.png"), quad_texture())
    (d / "tex.mtl").write_text("newmtl mat0\nKd 1 1 1\nmap_Kd tex.png\n")
    lines = ["mtllib tex.mtl"] + [f"v {x} {y} {z}" for x, y, z in TET_V] + [f"vt {u} {v}" for u, v in TET_UV]
    lines += ["usemtl mat0"] + [f"f {a + 1}/{a + 1} {b + 1}/{b + 1} {c + 1}/{c + 1}" for a, b, c in TET_F]
    (d / "tet.obj").write_text("\n".join(lines) + "\n")
    return d / "tet.obj"


def write_textured_glb(path: Path, translations=((0, 0, 0),), second_texture=None) -> Path:
    """A binary glTF of the tetrahedron (one node per translation). With second_texture
    (BGR colours of 4 quadrants), the second node uses a second mesh/material/texture."""
    textures = [quad_texture()] + ([quad_texture(second_texture)] if second_texture is not None else [])
    blobs = [TET_V.astype("<f4").tobytes(),
             np.stack([TET_UV[:, 0], 1 - TET_UV[:, 1]], 1).astype("<f4").tobytes(),  # glTF uv: v down
             TET_F.astype("<u4").tobytes()] + [cv2.imencode(".png", t)[1].tobytes() for t in textures]
    views, buf = [], b""
    for b in blobs:
        views.append({"buffer": 0, "byteOffset": len(buf), "byteLength": len(b)})
        buf += b + b"\0" * (-len(b) % 4)
    n_mat = len(textures)
    meshes = [{"primitives": [{"attributes": {"POSITION": 0, "TEXCOORD_0": 1}, "indices": 2, "material": m}]} for m in range(n_mat)]
    hdr = {
        "asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": list(range(len(translations)))}],
        "nodes": [{"mesh": min(i, n_mat - 1), "translation": list(map(float, t))} for i, t in enumerate(translations)],
        "meshes": meshes,
        "materials": [{"name": f"quad{m}", "pbrMetallicRoughness": {"baseColorTexture": {"index": m}}} for m in range(n_mat)],
        "textures": [{"source": m} for m in range(n_mat)],
        "images": [{"bufferView": 3 + m, "mimeType": "image/png"} for m in range(n_mat)],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 4, "type": "VEC3", "min": TET_V.min(0).tolist(), "max": TET_V.max(0).tolist()},
            {"bufferView": 1, "componentType": 5126, "count": 4, "type": "VEC2"},
            {"bufferView": 2, "componentType": 5125, "count": 12, "type": "SCALAR"},
        ],
        "bufferViews": views, "buffers": [{"byteLength": len(buf)}],
    }
    js = json.dumps(hdr).encode()
    js += b" " * (-len(js) % 4)
    out = struct.pack("<4sII", b"glTF", 2, 12 + 8 + len(js) + 8 + len(buf))
    out += struct.pack("<I4s", len(js), b"JSON") + js + struct.pack("<I4s", len(buf), b"BIN\0") + buf
    path.write_bytes(out)
    return path


def colored_box(extents=(100.0, 60.0, 40.0)) -> trimesh.Trimesh:
    """A box with its 4 low-x corners blue, the rest red (trimesh colours are RGBA)."""
    b = trimesh.creation.box(extents)
    c = np.tile([255, 0, 0, 255], (len(b.vertices), 1)).astype(np.uint8)
    c[b.vertices[:, 0] < 0] = [0, 0, 255, 255]
    b.visual.vertex_colors = c
    return b


def write_keypoints(path: Path, names, points) -> Path:
    path.write_text(json.dumps({"names": list(names), "points_mm": np.asarray(points).tolist()}))
    return path


BOX_CORNERS = np.array([[x, y, z] for x in (-50, 50) for y in (-30, 30) for z in (-20, 20)], float)


def kptrack_error_text(fn, *args, **kw) -> str:
    """The message of the KptrackError that ``fn(*args, **kw)`` must raise."""
    with pytest.raises(KptrackError) as e:
        fn(*args, **kw)
    return str(e.value)


BOX_MM = (80.0, 60.0, 40.0)


def primitive_object(name: str, mesh, keypoints, symmetry: str | None = None) -> ObjectModel:
    """An object of a primitive mesh (tracker.objects.primitives) with its keypoints (names, points)
    and the symmetries of a --symmetry preset (None: none)."""
    disc, cont = parse_symmetry(symmetry, mesh.vertices) if symmetry else ([], [])
    return ObjectModel.from_mesh(name, mesh.vertices, mesh.faces, *keypoints, symmetries_discrete=disc,
                                 symmetries_continuous=cont)


def box_object(name: str = "box", symmetry: str | None = None) -> ObjectModel:
    """The tests' 80x60x40 mm box, its eight corners as keypoints."""
    return primitive_object(name, box_mesh(BOX_MM), box_keypoints(BOX_MM), symmetry)


def cylinder_object(name: str = "cyl", symmetry: str | None = "cylinder:z") -> ObjectModel:
    """The tests' cylinder, 30 mm radius, 100 mm tall, symmetric about z unless told otherwise."""
    return primitive_object(name, cylinder_mesh(30.0, 100.0), cylinder_keypoints(30.0, 100.0), symmetry)
