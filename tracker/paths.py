"""Where kptrack finds what it ships and what it caches.

The shipped models live in the checkout's ``models/`` folder (the README installs kptrack in
editable mode, so the package's files stay beside them). :func:`resolve_model` turns a
``--model`` value, or its absence, into an existing file, or one clear error naming the file and
the fix, whatever the current folder is.
"""

from __future__ import annotations

import os
from pathlib import Path

from tracker.errors import KptrackError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = Path("models") / "default" / "model.onnx"


def default_model_path() -> Path:
    """The shipped ``models/default/model.onnx``: of the checkout kptrack runs from, else of the
    current folder. The checkout's path is returned (missing) when neither has it."""
    for base in (REPO_ROOT, Path.cwd()):
        if (base / DEFAULT_MODEL).is_file():
            return base / DEFAULT_MODEL
    return REPO_ROOT / DEFAULT_MODEL


def resolve_model(model: str | Path | None, flag: str = "--model") -> Path:
    """An existing model file: ``model`` as given, or the shipped default when it is None."""
    if model is not None:
        path = Path(model).expanduser()
        if not path.is_file():
            raise KptrackError(f"{flag} {path}: model file not found. Pass an exported .onnx (kptrack export), "
                               f"or leave {flag} out for the shipped default model.")
        return path
    path = default_model_path()
    if not path.is_file():
        raise KptrackError(
            f"{path}: the shipped default model is missing. Train and export it (`kptrack synth --out data/default`, "
            "`kptrack train --data data/default --out runs/default`, `kptrack export --checkpoint runs/default/best.pt "
            f"--out {DEFAULT_MODEL}`), or pass {flag} M.onnx."
        )
    return path


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/kptrack`` (default ``~/.cache/kptrack``): rendered demo sequences."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kptrack"
