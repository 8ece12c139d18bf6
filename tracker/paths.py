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
#: The built-in objects (``--object NAME``) and their shipped models.
BUILTIN_OBJECTS = ("default", "bottle")


def builtin_model(object_name: str = "default") -> Path:
    """``models/<name>/model.onnx``, relative: the shipped model of a built-in object."""
    return Path("models") / object_name / "model.onnx"


def default_model_path(object_name: str = "default") -> Path:
    """The shipped ``models/<object>/model.onnx`` (default: the drill's): of the checkout kptrack
    runs from, else of the current folder. The checkout's path is returned (missing) when neither
    has it."""
    rel = builtin_model(object_name)
    for base in (REPO_ROOT, Path.cwd()):
        if (base / rel).is_file():
            return base / rel
    return REPO_ROOT / rel


def training_commands(object_name: str) -> str:
    """The commands that make a built-in object's shipped model (its models/<name>/README.md has more)."""
    d, r, m = f"data/{object_name}", f"runs/{object_name}", builtin_model(object_name)
    return (f"`kptrack synth --object {object_name} --out {d} --num 20000 --seed 0`, "
            f"`kptrack train --data {d} --object {object_name} --preset lite --out {r}`, "
            f"`kptrack export --checkpoint {r}/best.pt --out {m}`; the full recipe is in models/{object_name}/README.md")


def resolve_model(model: str | Path | None, flag: str = "--model", object_name: str = "default") -> Path:
    """An existing model file: ``model`` as given, or, when it is None, the shipped model of the
    built-in object ``object_name`` (``default`` or ``bottle``)."""
    if model is not None:
        path = Path(model).expanduser()
        if not path.is_file():
            raise KptrackError(f"{flag} {path}: model file not found. Pass an exported .onnx (kptrack export), "
                               f"or leave {flag} out for the shipped default model.")
        return path
    path = default_model_path() if object_name == "default" else default_model_path(object_name)
    if not path.is_file() and object_name != "default":
        raise KptrackError(f"{path}: the {object_name} model has not been trained yet. Train and export it "
                           f"({training_commands(object_name)}), or pass {flag} M.onnx.")
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
