"""kptrack's benchmarks: the end-to-end runner behind ``kptrack bench``, the peer pipelines it
compares against, and (as ``test_bench_*.py``) the pytest-benchmark stage benchmarks."""
