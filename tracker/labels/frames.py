"""Which frames of a video or image folder to label, and reading them.

Frame indices are those of ``kptrack track``: 0-based positions in the video, or in the image
folder's natural sort order (:func:`tracker.pipeline.source.list_images`), so labels and
tracked poses meet on the same index.
"""

from __future__ import annotations

import logging
from typing import Iterable

import numpy as np

from tracker.camera.resolve import is_live
from tracker.errors import KptrackError
from tracker.pipeline.source import open_source

log = logging.getLogger(__name__)


def parse_frame_list(spec: str) -> list[int]:
    """``--frames`` -> sorted unique indices. Comma-separated integers and inclusive ranges
    ``a-b`` or ``a-b:step``, e.g. ``0,10,20-40:10`` -> [0, 10, 20, 30, 40]."""
    out: set[int] = set()
    for part in str(spec).replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part:
                rng, _, step = part.partition(":")
                a, b = (int(x) for x in rng.split("-"))
                s = int(step) if step else 1
                if a < 0 or b < a or s < 1:
                    raise ValueError
                out.update(range(a, b + 1, s))
            else:
                v = int(part)
                if v < 0:
                    raise ValueError
                out.add(v)
        except ValueError:
            raise KptrackError(f"--frames {spec}: {part!r} is not a frame index or range. "
                               "Give indices >= 0 and ranges a-b or a-b:step, e.g. --frames 0,10,20-40:10.") from None
    if not out:
        raise KptrackError(f"--frames {spec}: no frame given. E.g. --frames 0,10,20-40:10.")
    return sorted(out)


def read_frames(source: str, wanted: Iterable[int] | None = None, every: int | None = None) -> tuple[dict[int, np.ndarray], int]:
    """Read the chosen frames of a video file or image folder in one pass.

    wanted: explicit indices; every: also every ``every``-th frame from 0. Returns ({index:
    (H, W, 3) uint8 BGR}, frames read: the source's length, or with ``every`` None, at least
    one past the last wanted index). Raises KptrackError naming the source
    for a live camera or stream, and for an index beyond the source's last frame (nothing is
    written before the check).
    """
    if is_live(str(source)):
        raise KptrackError(f"{source}: annotate labels frames of a video file or an image folder, not a live camera or stream. "
                           "Record a clip first (e.g. kptrack track --out clip.avi) and pass it.")
    if every is not None and every < 1:
        raise KptrackError(f"--every {every}: must be >= 1 (1 = every frame).")
    want = set(wanted or ())
    last = max(want) if want else -1
    frames: dict[int, np.ndarray] = {}
    n = 0
    with open_source(source) as src:
        for fr in src:
            n = fr.index + 1
            if fr.index in want or (every and fr.index % every == 0):
                frames[fr.index] = fr.image
            if every is None and fr.index >= last:
                break  # n is then a lower bound, enough: every wanted index was reached
    missing = sorted(want - frames.keys())
    if missing:
        beyond = [i for i in missing if i >= n]
        if beyond:
            raise KptrackError(
                f"{source}: frame {beyond[0]} is beyond the video, which has {n} frames (0..{n - 1}). "
                f"Choose frames below {n} in --frames or the points file ({len(beyond)} such frame(s): "
                f"{', '.join(map(str, beyond[:10]))}{' ...' if len(beyond) > 10 else ''})."
            )
        raise KptrackError(f"{source}: frame(s) {', '.join(map(str, missing[:10]))} could not be decoded. "
                           "Choose other frames, or re-encode the video (e.g. ffmpeg -i in -c:v mjpeg out.avi).")
    return frames, n
