"""Atomic file writes: a temporary file beside the target, fsync, then rename.

A full disk, a read-only folder or a crash mid-write leaves the previous file intact (a
checkpoint, an exported model): the rename happens only after the new bytes are on disk.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator


@contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """Yield a binary file to write ``path``'s new content into; it replaces ``path`` on success.

    Any exception (an OSError from the writer, say) removes the temporary file and propagates;
    callers turn OSError into their own KptrackError naming the file and the fix.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
