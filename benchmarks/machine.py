"""What a benchmark ran on: the machine (:func:`machine_info`), the checkout's commit
(:func:`git_commit`) and the process's peak memory (:func:`peak_rss_mb`), for the results table."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import onnxruntime as ort

try:
    import resource
except ImportError:  # not on Windows: peak RSS is then not reported
    resource = None  # type: ignore[assignment]

REPO_ROOT = Path(__file__).resolve().parents[1]


def _first_line_value(path: str, prefix: str, sep: str) -> str | None:
    """The text after ``sep`` on the first line of ``path`` starting with ``prefix`` (case-insensitive), or None."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.lower().startswith(prefix.lower()):
                return line.split(sep, 1)[1].strip()
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    """Describe this machine for the results table: CPU model, cores, RAM, OS, python, onnxruntime."""
    cpu = _first_line_value("/proc/cpuinfo", "model name", ":") or platform.processor() or platform.machine()
    mem = _first_line_value("/proc/meminfo", "MemTotal:", ":")
    ram_gb = round(int(mem.split()[0]) / 1024**2, 1) if mem else None
    pretty = _first_line_value("/etc/os-release", "PRETTY_NAME=", "=")
    os_name = pretty.strip('"') + f" ({platform.release()})" if pretty else platform.platform()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": cores,
        "ram_gb": ram_gb,
        "os": os_name,
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "ort_providers_available": list(ort.get_available_providers()),
        "gpu": gpu_name(),
        "argv": " ".join(sys.argv),
    }


def gpu_name() -> str | None:
    """The first GPU's name from ``nvidia-smi``, or None (no driver, no GPU)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10)
        name = out.stdout.strip().splitlines()
        return name[0] if out.returncode == 0 and name else None
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit() -> str | None:
    """The short commit hash of the checkout these benchmarks run from, or None (not a git checkout)."""
    try:
        p = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        return p.stdout.strip() or None if p.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def peak_rss_mb() -> float | None:
    """This process's peak resident memory so far, MB (None where ``resource`` is missing)."""
    if resource is None:
        return None
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 1024.0**2
