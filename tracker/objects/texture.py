"""Textures of object meshes: bilinear lookup, reading texture images, atlas packing.

uv convention (OBJ/trimesh, v up): texture pixel column ``u * (Wt - 1)``, row
``(1 - v) * (Ht - 1)``; uv outside [0, 1] means the texture repeats. Images are BGR uint8.

Textures come from the OBJ material image or the glTF PBR ``baseColorTexture`` (times
``baseColorFactor``), decoded by trimesh through Pillow; without Pillow they are read here with
OpenCV from the MTL ``map_Kd`` or the glTF buffers (:func:`material_images`). Several textured
geometries are packed into one atlas, stacked vertically (:func:`pack_atlas`).
"""

from __future__ import annotations

import base64
import json
import logging
import struct
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)


def sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 BGR: bilinear texture colour at each uv (repeating outside [0, 1]).

    texture: (Ht, Wt, 3) uint8 BGR; uv: (N, 2), column ``u * (Wt - 1)``, row ``(1 - v) * (Ht - 1)``.
    """
    h, w = texture.shape[:2]
    uv = np.asarray(uv, dtype=np.float64)
    u = np.where((uv[:, 0] < 0) | (uv[:, 0] > 1), np.mod(uv[:, 0], 1.0), uv[:, 0])
    v = np.where((uv[:, 1] < 0) | (uv[:, 1] > 1), np.mod(uv[:, 1], 1.0), uv[:, 1])
    x, y = u * (w - 1), (1.0 - v) * (h - 1)
    x0, y0 = np.clip(np.floor(x).astype(int), 0, w - 1), np.clip(np.floor(y).astype(int), 0, h - 1)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    t = texture.astype(np.float64)
    c = (t[y0, x0] * (1 - fx) * (1 - fy) + t[y0, x1] * fx * (1 - fy) + t[y1, x0] * (1 - fx) * fy + t[y1, x1] * fx * fy)
    return np.clip(np.rint(c), 0, 255).astype(np.uint8)


def read_image_bgr(path: Path) -> np.ndarray | None:
    """A texture image file as (Ht, Wt, 3) uint8 BGR (16-bit, grey and alpha images converted),
    or None (logged) when it cannot be read."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        log.warning("%s: could not read the texture image; using vertex colours only", path)
        return None
    if img.dtype != np.uint8:  # 16-bit PNGs
        img = (img / 257.0).astype(np.uint8) if img.dtype == np.uint16 else np.clip(img * 255.0, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = np.ascontiguousarray(img[:, :, :3])
    return img


def pil_to_bgr(img) -> np.ndarray | None:
    """A Pillow image (what trimesh gives when Pillow is installed) as (H, W, 3) uint8 BGR, or None."""
    if img is None or not hasattr(img, "convert"):
        return None
    return np.ascontiguousarray(np.asarray(img.convert("RGB"))[:, :, ::-1])


def _obj_material_images(path: Path) -> dict[str, Path]:
    """Material name -> map_Kd image path from the MTL files an OBJ references."""
    out: dict[str, Path] = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        if line.lower().startswith("mtllib"):
            mtl = path.parent / line.split(None, 1)[1].strip()
            try:
                mtext = mtl.read_text(errors="replace")
            except (OSError, IndexError):
                continue
            current = None
            for ml in mtext.splitlines():
                tok = ml.strip().split()
                if not tok:
                    continue
                if tok[0].lower() == "newmtl":
                    current = " ".join(tok[1:])
                elif tok[0].lower() == "map_kd" and current is not None and len(tok) > 1:
                    out[current] = mtl.parent / tok[-1]  # options like -s come before the file
    return out


def _gltf_material_images(path: Path) -> dict[str, np.ndarray]:
    """Material name (or index as str) -> base-colour texture, BGR uint8, from a GLB/glTF."""
    raw = path.read_bytes()
    blob = b""
    if raw[:4] == b"glTF":
        off, header = 12, None
        while off + 8 <= len(raw):
            n, kind = struct.unpack_from("<I4s", raw, off)
            chunk = raw[off + 8 : off + 8 + n]
            if kind == b"JSON":
                header = json.loads(chunk.decode("utf-8"))
            elif kind.startswith(b"BIN"):
                blob = chunk
            off += 8 + n
    else:
        header = json.loads(raw.decode("utf-8"))
    if not header:
        return {}

    def buffer_bytes(i: int) -> bytes:
        b = header["buffers"][i]
        if "uri" not in b:
            return blob
        uri = b["uri"]
        if uri.startswith("data:"):
            return base64.b64decode(uri.split(",", 1)[1])
        return (path.parent / uri).read_bytes()

    def image(i: int) -> np.ndarray | None:
        im = header["images"][i]
        if "bufferView" in im:
            bv = header["bufferViews"][im["bufferView"]]
            data = buffer_bytes(bv.get("buffer", 0))[bv.get("byteOffset", 0) : bv.get("byteOffset", 0) + bv["byteLength"]]
        elif im.get("uri", "").startswith("data:"):
            data = base64.b64decode(im["uri"].split(",", 1)[1])
        elif "uri" in im:
            data = (path.parent / im["uri"]).read_bytes()
        else:
            return None
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        return img

    out: dict[str, np.ndarray] = {}
    for mi, mat in enumerate(header.get("materials", [])):
        tex = mat.get("pbrMetallicRoughness", {}).get("baseColorTexture")
        if tex is None:
            continue
        src = header["textures"][tex["index"]].get("source")
        if src is None:
            continue
        img = image(src)
        if img is not None:
            out[str(mi)] = img
            if mat.get("name"):
                out[mat["name"]] = img
    return out


def material_images(path: Path) -> dict[str, np.ndarray]:
    """Material name -> texture (Ht, Wt, 3) uint8 BGR of an OBJ (MTL ``map_Kd``) or GLB/glTF
    (base-colour texture), read with OpenCV: for when trimesh could not decode the images
    (no Pillow). Empty for other formats or undecodable glTF textures (logged)."""
    suffix = path.suffix.lower()
    if suffix == ".obj":
        out = {}
        for name, p in _obj_material_images(path).items():
            img = read_image_bgr(p)
            if img is not None:
                out[name] = img
        return out
    if suffix in (".glb", ".gltf"):
        try:
            return _gltf_material_images(path)
        except Exception:  # a texture we cannot decode must not stop the mesh from loading
            log.warning("%s: could not decode the glTF textures; using vertex colours only", path, exc_info=True)
    return {}


def pack_atlas(uvs: list[np.ndarray], textures: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack the distinct part textures vertically into one image (2 replicated rows between
    them, so bilinear lookups at an edge do not bleed into the neighbour) and remap uv.

    uvs: per part (n_i, 2) uv in [0, 1]; textures: per part (Ht_i, Wt_i, 3) uint8 BGR (parts
    sharing one texture object share its atlas rows). Returns uv (sum n_i, 2) float32 into the
    atlas and the atlas (H, W, 3) uint8 BGR.
    """
    pad = 2
    unique: dict[int, np.ndarray] = {}
    for tex in textures:
        unique.setdefault(id(tex), tex)
    W = max(t.shape[1] for t in unique.values())
    H = sum(t.shape[0] for t in unique.values()) + pad * (len(unique) - 1)
    atlas = np.zeros((H, W, 3), np.uint8)
    row0: dict[int, int] = {}
    y = 0
    for key, t in unique.items():
        h, w = t.shape[:2]
        atlas[y : y + h, :w] = t
        atlas[y : y + h, w:] = t[:, -1:]
        if y + h < H:
            atlas[y + h : y + h + pad] = atlas[y + h - 1]
        row0[key] = y
        y += h + pad
    out = []
    for uv, tex in zip(uvs, textures):
        h, w = tex.shape[:2]
        u = np.clip(uv[:, 0].astype(np.float64), 0, 1)
        vv = np.clip(uv[:, 1].astype(np.float64), 0, 1)
        col = u * (w - 1)
        row = row0[id(tex)] + (1.0 - vv) * (h - 1)
        out.append(np.stack([col / max(W - 1, 1), 1.0 - row / max(H - 1, 1)], axis=1))
    return np.concatenate(out).astype(np.float32), atlas
