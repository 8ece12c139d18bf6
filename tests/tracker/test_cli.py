"""The one entry point: commands come from the kptrack.commands entry points, every option says
what it does, and running a command loads only that command's module."""

import argparse
import subprocess
import sys

from tracker.cli import ORDER, build_parser, command_modules


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                yield from ((f"{name} {n}", s) for n, s in _subparsers(sub))


def test_every_command_is_installed():
    assert set(ORDER) <= set(command_modules())


def test_every_option_has_a_help_text():
    missing = []
    for name, sub in _subparsers(build_parser()):
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not (action.help or "").strip():
                missing.append(f"kptrack {name} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, missing


def test_running_track_imports_neither_torch_nor_training_code():
    code = ("import sys; from tracker.cli import build_parser; build_parser(['track', '--source', 'x']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'train', 'export', 'benchmarks')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
