"""Points files: hand or scripted 2D keypoint labels, one row per (frame, keypoint), for
``kptrack annotate --points FILE`` (the headless import).

Two forms, the same four fields::

    CSV   header ``frame,name,x,y`` (any column order; other columns are ignored), one row per label
    JSON  a list of ``{"frame": int, "name": str, "x": float, "y": float}``

``frame`` is the frame index in the source (0-based: position in the video, or in the image
folder's natural sort order, as ``kptrack track`` counts frames); ``name`` a keypoint name of
the object (its keypoints.json); ``x, y`` float pixels of the frame as it is stored (not
undistorted), pixel centres at integer coordinates (OpenCV). A keypoint that is not visible is
simply not listed.

:func:`read_points` checks every row (fields, numbers, known names, one row per frame and name)
and raises :class:`~tracker.errors.KptrackError` naming the file, the row and the fix before
anything is written. :func:`write_points_csv` writes the CSV form.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from tracker.atomic import atomic_write
from tracker.errors import KptrackError

POINTS_FIELDS = ("frame", "name", "x", "y")


@dataclass(frozen=True)
class LabelPoint:
    """One label: frame index, keypoint name, x, y float pixels; ``where`` names its row for messages."""

    frame: int
    name: str
    x: float
    y: float
    where: str = ""


def _rows(path: Path) -> list[tuple[str, dict]]:
    """(where, raw dict) per row of a CSV or JSON points file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KptrackError(f"--points {path}: no such file. Pass a CSV (frame,name,x,y) or JSON points file.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise KptrackError(f"--points {path}: cannot read it ({e}). Pass a UTF-8 CSV or JSON points file.") from None
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise KptrackError(f"--points {path}: not valid JSON ({e}). Write a list of {{frame, name, x, y}} objects.") from None
        if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
            raise KptrackError(f"--points {path}: expected a JSON list of {{\"frame\", \"name\", \"x\", \"y\"}} objects.")
        return [(f"item {i}", r) for i, r in enumerate(doc)]
    reader = csv.DictReader(text.splitlines())
    missing = [f for f in POINTS_FIELDS if f not in (reader.fieldnames or [])]
    if missing:
        raise KptrackError(
            f"--points {path}: the CSV header lacks {', '.join(missing)} (found: {', '.join(reader.fieldnames or []) or 'nothing'}). "
            "The first line must be frame,name,x,y."
        )
    return [(f"line {i + 2}", r) for i, r in enumerate(reader)]


def read_points(path: str | Path, names: Sequence[str] | None = None) -> list[LabelPoint]:
    """Read and check a points file (see the module docstring).

    names: the object's keypoint names; a row naming another keypoint is an error that lists them.
    Raises KptrackError naming the file and row for a missing field, a non-integer or negative
    frame, a non-finite coordinate, an unknown name or a second row for the same frame and name.
    """
    path = Path(path)
    known = None if names is None else set(names)
    out: list[LabelPoint] = []
    seen: dict[tuple[int, str], str] = {}
    for where, r in _rows(path):
        try:
            frame_raw, name, x, y = (r.get(f) for f in POINTS_FIELDS)
            if any(v is None or (isinstance(v, str) and not v.strip()) for v in (frame_raw, name, x, y)):
                raise ValueError("a field is empty")
            frame_f = float(frame_raw)
            if not frame_f.is_integer() or frame_f < 0:
                raise ValueError(f"frame {frame_raw!r} is not a non-negative integer")
            x, y = float(x), float(y)
        except (TypeError, ValueError) as e:
            raise KptrackError(f"--points {path}, {where}: {e}; each row needs frame (int >= 0), name, x, y (pixels).") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise KptrackError(f"--points {path}, {where}: x, y must be finite pixels, got {x}, {y}. Fix or drop the row.")
        name = str(name).strip()
        if known is not None and name not in known:
            raise KptrackError(
                f"--points {path}, {where}: the object has no keypoint {name!r} (its keypoints: {', '.join(names)}). "
                "Rename the row to one of these, or pass the --object the labels were made for."
            )
        key = (int(frame_f), name)
        if key in seen:
            raise KptrackError(f"--points {path}, {where}: frame {key[0]} keypoint {name!r} is labelled twice (also {seen[key]}). "
                               "Keep one of the rows.")
        seen[key] = where
        out.append(LabelPoint(int(frame_f), name, x, y, where))
    return out


def write_points_csv(path: str | Path, points: Iterable[LabelPoint]) -> Path:
    """Write points as CSV with the header ``frame,name,x,y`` (floats at full precision), atomically."""
    path = Path(path)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(POINTS_FIELDS)
    for p in points:
        w.writerow([int(p.frame), p.name, repr(float(p.x)), repr(float(p.y))])
    with atomic_write(path) as f:
        f.write(buf.getvalue().encode("utf-8"))
    return path
