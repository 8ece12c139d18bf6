"""BOP ``models_info.json``: one object's entry (``diameter``, bounding box, symmetries).

The file maps object ids to entries (``{"1": {"diameter": ..., "symmetries_discrete": ...}}``,
Hodan et al., "BOP: Benchmark for 6D Object Pose Estimation", ECCV 2018); kptrack's object
directories hold one object, id 1. Reading it is shared by the object loader and by
``--symmetry FILE``, which differ only in what they tell the user to do about a bad file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracker.errors import KptrackError
from tracker.formats.jsonfile import read_json


def read_models_info(path: str | Path, fix: str) -> dict[str, Any]:
    """The entry of object "1" (else the first one) of a BOP models_info.json.

    fix: the sentence that tells the user what to do, appended to every error (a missing file,
    unreadable JSON, no object entry)."""
    p = Path(path)
    data = read_json(p, f"models_info.json not found. {fix}", fix)
    info = data.get("1", data[sorted(data)[0]]) if isinstance(data, dict) and data else None
    if not isinstance(info, dict):
        raise KptrackError(f"{p}: expected BOP model info {{\"1\": {{\"diameter\": ...}}}}. {fix}")
    return info
