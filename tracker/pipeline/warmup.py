"""A word while numba compiles, so the first run on a fresh install does not sit silent.

The numba kernels (decoding, the LM solver, the renderer) are compiled on the first run after an
install or an update and loaded from numba's on-disk cache afterwards. Compiling takes about ten
seconds on a small CPU, so :func:`announce_compilation` listens for numba's compile events and,
on the first one, logs a single line saying what is happening, then how long it took and how
many kernel specialisations were compiled. A run whose kernels load from the cache says nothing.
The :class:`CompileReport` it yields keeps those figures (``seconds`` None: nothing compiled), for
the time-to-first-frame benchmark.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Iterator

from numba.core import event

log = logging.getLogger(__name__)


@dataclass
class CompileReport:
    """seconds: from the first compile event to the end of the block (None: nothing compiled);
    kernels: compilations finished in the block (one per kernel and argument-type signature)."""

    seconds: float | None = None
    kernels: int = 0


class _CompileNotice(event.Listener):
    def __init__(self) -> None:
        self.t0: float | None = None
        self.depth = 0
        self.kernels = 0

    def on_start(self, ev) -> None:
        self.depth += 1
        if self.t0 is None:
            self.t0 = time.perf_counter()
            log.info("compiling the numba kernels (first run after installing or updating kptrack, about 10 s; "
                     "later runs load them from the cache)")

    def on_end(self, ev) -> None:
        self.depth -= 1
        if self.depth == 0:  # a kernel's compile events nest (its callees compile inside it)
            self.kernels += 1


@contextlib.contextmanager
def announce_compilation() -> Iterator[CompileReport]:
    """Within the block, the first numba compilation is announced, and its end (see above)."""
    notice = _CompileNotice()
    report = CompileReport()
    event.register("numba:compile", notice)
    try:
        yield report
    finally:
        event.unregister("numba:compile", notice)
        if notice.t0 is not None:
            report.seconds, report.kernels = time.perf_counter() - notice.t0, notice.kernels
            log.info("kernels compiled and cached in %.1f s (%d kernel specialisations)", report.seconds, report.kernels)
