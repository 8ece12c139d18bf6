"""Held-out frames: the frames of a video kept for evaluation, which must never become training labels.

:func:`parse_exclude` reads them from what a user has at hand: a list on the command line
('3,10,40-60'), a text file of numbers, a JSON list, a split.json ({'heldout': [...]}; also
'held_out', 'test', 'eval', 'score' or 'frames'), or the COCO keypoints file ``kptrack annotate``
writes (its image ids, the frame indices). :func:`check_exclude` refuses a list naming frames the video
does not have: it was made for another video, and excluding nothing would leak the held-out set.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tracker.errors import KptrackError
from tracker.labels.store import labels_path


def _frame_of_image(im: dict) -> int:
    """A COCO image's video frame: its 'frame_index' / 'frame' field when it has one, else its id
    (``kptrack annotate`` numbers images by their frame in the video)."""
    for key in ("frame_index", "frame"):
        if isinstance(im.get(key), int):
            return int(im[key])
    return int(im["id"])


def _frames_from_json(doc, path: Path) -> set[int]:
    if isinstance(doc, list):
        return {int(x) for x in doc}
    if isinstance(doc, dict) and isinstance(doc.get("images"), list):  # COCO (kptrack annotate)
        return {_frame_of_image(im) for im in doc["images"]}
    if isinstance(doc, dict):  # split.json: the held-out list under one of these keys
        for key in ("heldout", "held_out", "test", "eval", "score", "frames"):
            if isinstance(doc.get(key), list):
                return {int(x) for x in doc[key]}
    raise KptrackError(f"--exclude {path}: not a frame list. Give a JSON list of frame indices, a split.json with a "
                       "'heldout' (or 'test') list, or the COCO file from `kptrack annotate`.")


def parse_exclude(spec: str) -> set[int]:
    """Held-out frame indices from ``spec``: '3,10,40-60' (ranges inclusive), a .txt of numbers, a
    JSON list, a split.json ({'heldout' | 'test' | ...: [...]}), or a COCO keypoints file or the
    ``kptrack annotate`` folder holding it (its image ids: see :func:`_frame_of_image`)."""
    s = str(spec).strip()
    p = labels_path(s) if Path(s).is_dir() else Path(s)  # an annotate folder: its labels file
    if p.is_file():
        try:
            text = p.read_text(encoding="utf-8")
            if p.suffix.lower() == ".json":
                return _frames_from_json(json.loads(text), p)
            return {int(x) for x in re.findall(r"-?\d+", text)}
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise KptrackError(f"--exclude {p}: cannot read a frame list from it ({e}). Fix the file.") from None
    out: set[int] = set()
    for part in filter(None, (x.strip() for x in s.split(","))):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise KptrackError(f"--exclude {spec}: {part!r} is neither a frame number, a range like 40-60, nor an existing file.")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        out.update(range(min(a, b), max(a, b) + 1))
    return out


def check_exclude(frames: set[int], n_frames: int, video: str, spec: str) -> None:
    """One clear error when the held-out list names frames the video does not have (0..n_frames-1)."""
    bad = sorted(f for f in frames if f < 0 or f >= n_frames)
    if bad:
        shown = ", ".join(map(str, bad[:8])) + (" ..." if len(bad) > 8 else "")
        raise KptrackError(f"--exclude {spec}: names frame(s) {shown} but {video} has frames 0..{n_frames - 1}. "
                           "Pass the held-out list made for this video (the order of --exclude follows --video).")
