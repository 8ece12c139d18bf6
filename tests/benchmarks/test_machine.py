"""The machine description the results table starts with."""

from __future__ import annotations

from benchmarks.machine import machine_info


def test_machine_info():
    m = machine_info()
    assert m["cores"] >= 1 and m["python"] and "onnxruntime" in m
