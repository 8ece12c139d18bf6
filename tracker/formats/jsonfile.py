"""Reading a user's JSON file with one clear error: :func:`read_json`.

A missing file and an unreadable or malformed one each become a KptrackError that names the
file and says what to do, never a traceback from ``json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tracker.errors import KptrackError


def read_json(path: str | Path, missing: str, fix: str) -> Any:
    """The parsed contents of ``path``.

    missing: the message after the path when the file does not exist (what it is and how to get
    one); fix: the sentence appended when it cannot be read or is not JSON."""
    p = Path(path)
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise KptrackError(f"{p}: {missing}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KptrackError(f"{p}: not a readable JSON file ({e}). {fix}") from None
