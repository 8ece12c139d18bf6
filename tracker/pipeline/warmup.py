"""A word while numba compiles, so the first run on a fresh install does not sit silent.

The numba kernels (decoding, the LM solver, the renderer) are compiled on the first run after an
install or an update and loaded from numba's on-disk cache afterwards. Compiling takes about ten
seconds on a small CPU, so :func:`announce_compilation` listens for numba's compile events and,
on the first one, logs a single line saying what is happening, then how long it took. A run whose
kernels load from the cache says nothing.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Iterator

from numba.core import event

log = logging.getLogger(__name__)


class _CompileNotice(event.Listener):
    def __init__(self) -> None:
        self.t0: float | None = None

    def on_start(self, ev) -> None:
        if self.t0 is None:
            self.t0 = time.perf_counter()
            log.info("compiling the numba kernels (first run after installing or updating kptrack, about 10 s; "
                     "later runs load them from the cache)")

    def on_end(self, ev) -> None:
        pass


@contextlib.contextmanager
def announce_compilation() -> Iterator[None]:
    """Within the block, the first numba compilation is announced, and its end (see above)."""
    notice = _CompileNotice()
    event.register("numba:compile", notice)
    try:
        yield
    finally:
        event.unregister("numba:compile", notice)
        if notice.t0 is not None:
            log.info("kernels compiled and cached in %.1f s", time.perf_counter() - notice.t0)
