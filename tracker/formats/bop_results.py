"""BOP results CSV: one estimated pose per row, written as it goes and read back checked.

Format (BOP challenge): header ``scene_id,im_id,obj_id,score,R,t,time``; ``R`` is 9
space-separated numbers (row-major ``R_m2c``), ``t`` 3 space-separated numbers in mm
(``t_m2c``), ``time`` seconds per image (-1 when unknown). Poses are model-to-camera,
``x_cam = R_m2c @ x_model + t_m2c``. A row with ``score <= 0`` is no estimate (BOP's meaning;
``kptrack eval`` skips it), so its R and t are not checked; a row with ``score > 0`` claims a
pose and must hold a finite rotation and translation.

Numbers are written with Python's shortest round-trip repr, so a float64 pose written and read
back is bit-identical.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from tracker.errors import KptrackError

RESULTS_HEADER = ("scene_id", "im_id", "obj_id", "score", "R", "t", "time")
# Largest |R^T R - I| entry a claimed rotation may have: CSVs of other methods round R to about
# 6 decimals (1e-6 off); anything near 1e-3 is a scaled, sheared or garbled matrix.
ROTATION_TOL = 1e-3


@dataclass(frozen=True)
class BopResult:
    """One row of a BOP results CSV. R_m2c: (3, 3) float64; t_m2c: (3,) float64 mm; time: s (-1 unknown)."""

    scene_id: int
    im_id: int
    obj_id: int
    score: float
    R_m2c: np.ndarray
    t_m2c: np.ndarray
    time: float = -1.0


def _numbers(x: np.ndarray) -> str:
    return " ".join(repr(float(v)) for v in np.asarray(x, dtype=np.float64).ravel())


def _result_row(r: BopResult) -> list[str]:
    return [
        str(int(r.scene_id)),
        str(int(r.im_id)),
        str(int(r.obj_id)),
        repr(float(r.score)),
        _numbers(r.R_m2c),
        _numbers(r.t_m2c),
        repr(float(r.time)),
    ]


class ResultsCsvWriter:
    """Streaming BOP results CSV writer: writes the header at once and flushes every row, so a
    crashed or interrupted run still leaves every pose it computed. Use as a context manager."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "w", newline="", encoding="utf-8")
        except OSError as e:
            raise KptrackError(f"{self.path}: cannot write results CSV ({e.strerror}). Choose a writable path.") from None
        self._w = csv.writer(self._f, lineterminator="\n")
        self._w.writerow(RESULTS_HEADER)
        self._f.flush()
        self.rows = 0

    def write(self, result: BopResult) -> None:
        self._w.writerow(_result_row(result))
        self._f.flush()
        self.rows += 1

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> "ResultsCsvWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_results_csv(path: str | Path, results: Iterable[BopResult]) -> Path:
    """Write a whole BOP results CSV. Returns the path."""
    with ResultsCsvWriter(path) as w:
        for r in results:
            w.write(r)
    return Path(path)


def read_results_csv(path: str | Path) -> list[BopResult]:
    """Read a BOP results CSV (header ``scene_id,im_id,obj_id,score,R,t,time``; ``time`` optional).

    Raises KptrackError naming the file and line for a malformed row, and for a row with
    score > 0 whose R is not a rotation or whose R or t is not finite (see the module docstring).
    """
    path = Path(path)
    try:
        f = open(path, "r", newline="", encoding="utf-8")
    except FileNotFoundError:
        raise KptrackError(f"{path}: results CSV not found. Check the --poses path.") from None
    with f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:6]] != list(RESULTS_HEADER[:6]):
            raise KptrackError(
                f"{path}: not a BOP results CSV; the header must be '{','.join(RESULTS_HEADER)}', got {header!r}."
            )
        has_time = len(header) > 6
        out = []
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                R = np.array([float(x) for x in row[4].split()], dtype=np.float64)
                t = np.array([float(x) for x in row[5].split()], dtype=np.float64)
                if R.size != 9 or t.size != 3:
                    raise ValueError("R needs 9 numbers and t 3")
                r = BopResult(
                    scene_id=int(row[0]),
                    im_id=int(row[1]),
                    obj_id=int(row[2]),
                    score=float(row[3]),
                    R_m2c=R.reshape(3, 3),
                    t_m2c=t,
                    time=float(row[6]) if has_time and len(row) > 6 else -1.0,
                )
            except (ValueError, IndexError) as e:
                raise KptrackError(f"{path}:{lineno}: bad results row {row!r} ({e}). Fix or re-create the file.") from None
            _check_claimed_pose(path, lineno, r)
            out.append(r)
    return out


def _check_claimed_pose(path: Path, lineno: int, r: BopResult) -> None:
    """Raise KptrackError (file, line, fix) if a row with score > 0 holds a non-finite R or t,
    or an R that is not a rotation (orthonormal within ROTATION_TOL, det +1). Rows with
    score <= 0 (or NaN) are no estimate and pass whatever their R and t."""
    if not r.score > 0:
        return
    fix = "Write R as a row-major rotation matrix and t in mm, or give the row score <= 0 if the frame has no pose."
    if not (np.all(np.isfinite(r.R_m2c)) and np.all(np.isfinite(r.t_m2c))):
        raise KptrackError(f"{path}:{lineno}: the row has score {r.score!r} but its R or t holds NaN or infinity. {fix}")
    err = float(np.abs(r.R_m2c.T @ r.R_m2c - np.eye(3)).max())
    det = float(np.linalg.det(r.R_m2c))
    # orthonormal within ROTATION_TOL leaves det within ~2e-3 of +1 or -1: the det test only
    # has to tell a rotation from a reflection
    if err > ROTATION_TOL or abs(det - 1.0) > 10 * ROTATION_TOL:
        raise KptrackError(
            f"{path}:{lineno}: R is not a rotation (max |R^T R - I| = {err:.3g}, det {det:.4g}) in a row with "
            f"score {r.score!r}. {fix}"
        )
