"""The one command-line entry point: ``kptrack <command> ...`` (also ``python -m tracker``).

Commands are not listed here. Each package contributes its own through the entry-point group
``kptrack.commands`` (see pyproject.toml): the entry point's name is the command, its value a
module with

* ``HELP``: one line for ``kptrack --help``;
* ``add_arguments(parser)``: the command's options, each with a help text;
* ``run(args) -> int``: parses ``args`` into the command's frozen config and makes one library call.

So tracker/ never imports train/, export/ or benchmarks/ to offer their commands. Only the module
of the command being run is imported (``kptrack track`` never loads torch); ``kptrack --help``
imports them all. User errors (:class:`tracker.errors.KptrackError`) print one line and exit 2;
Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from importlib.metadata import entry_points
from types import ModuleType

from tracker.errors import KptrackError

GROUP = "kptrack.commands"
# The order of `kptrack --help`: the user's path from a mesh to a tracked video.
ORDER = ("object", "synth", "pretrain", "train", "export", "visibility", "score", "viz", "track", "demo", "eval", "bench", "calibrate")


def command_modules(only: str | None = None) -> dict[str, ModuleType]:
    """{command name: its module} for the installed entry points; just ``only``'s when it is one of them."""
    eps = {ep.name: ep for ep in entry_points(group=GROUP)}
    if not eps:
        raise KptrackError(f"no kptrack commands are installed (entry-point group {GROUP}). "
                           "Reinstall the package: pip install -e .")
    names = [only] if only in eps else sorted(eps, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    return {n: importlib.import_module(eps[n].value) for n in names}


def _first_command(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser. With ``argv`` naming one installed command, only that command's module is loaded."""
    ap = argparse.ArgumentParser(prog="kptrack", description="Real-time 6-DoF object pose tracking from heatmap keypoints.")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, mod in command_modules(_first_command(argv or [])).items():
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return ap


def quiet_native_logs(argv: list[str]) -> None:
    """Keep OpenCV's and FFmpeg's own stderr lines (``[ WARN:0@...]``, ``[mpeg4 @ 0x...] ...``) off
    the user's terminal: kptrack reports what matters itself (a video that ends early, a frame that
    does not decode). ``-v`` keeps them. Set before OpenCV opens a capture, which reads them."""
    if "-v" in argv or "--verbose" in argv:
        return
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    quiet_native_logs(argv)
    try:
        args = build_parser(argv).parse_args(argv)
    except KptrackError as e:
        print(f"kptrack: error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args._run(args) or 0)
    except KptrackError as e:
        print(f"kptrack {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kptrack {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
