"""The first run says it is compiling kernels (once), and a cached run says nothing."""

import logging

from numba import njit

from tracker.pipeline.warmup import announce_compilation


def test_compilation_is_announced_once(caplog):
    @njit  # a fresh function, never cached: this call compiles
    def f(x, y):
        return x * y + 1

    @njit
    def g(x):
        return x - 1

    with caplog.at_level(logging.INFO, logger="tracker.pipeline.warmup"), announce_compilation():
        f(2, 3)
        g(4)
    msgs = [r.getMessage() for r in caplog.records]
    assert sum("compiling the numba kernels" in m for m in msgs) == 1
    assert sum("compiled and cached in" in m for m in msgs) == 1


def test_nothing_is_said_when_nothing_compiles(caplog):
    @njit
    def h(x):
        return x + 2

    h(1)  # compiled before the block
    with caplog.at_level(logging.INFO, logger="tracker.pipeline.warmup"), announce_compilation():
        h(5)
    assert not caplog.records


def test_report_gives_the_time_and_the_number_of_specialisations():
    @njit
    def k(x):
        return x * 3

    with announce_compilation() as rep:
        k(1)
        k(1.5)  # a second specialisation (float64)
        k(2)  # cached in memory: no compilation
    assert rep.seconds is not None and rep.seconds > 0 and rep.kernels == 2
    with announce_compilation() as again:
        k(3)
    assert again.seconds is None and again.kernels == 0
