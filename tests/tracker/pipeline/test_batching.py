"""BatchingBackend: concurrent requests from stream threads become one call, each gets its own slice."""

import threading

import numpy as np

from tracker.formats.modelmeta import ModelMeta
from tracker.pipeline.batching import BatchingBackend


class Recorder:
    """A backend whose heatmap value is each crop's first pixel, recording the batch sizes."""

    def __init__(self, fail=False):
        self.meta = ModelMeta(keypoint_names=("a", "b"))
        self.provider = "recorder"
        self.sizes = []
        self.fail = fail

    def __call__(self, crops, affines=None, frame_index=None):
        self.sizes.append(len(crops))
        if self.fail:
            raise RuntimeError("backend down")
        return np.broadcast_to(crops[:, :1, :1, :1].astype(np.float32).transpose(0, 3, 1, 2), (len(crops), 2, 4, 4)).copy()


def _run_streams(batcher, n):
    """n threads, each inside a step, each sending one crop of value i; returns what each got."""
    barrier, got = threading.Barrier(n), {}

    def worker(i):
        with batcher.stepping():
            barrier.wait()
            try:
                got[i] = batcher(np.full((1, 8, 8, 3), i, np.uint8))
            except RuntimeError as e:
                got[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return got


def test_streams_inside_a_step_share_one_call_and_get_their_own_heatmaps():
    rec = Recorder()
    batcher = BatchingBackend(rec)
    got = _run_streams(batcher, 4)
    assert rec.sizes == [4] and batcher.calls == 1 and batcher.mean_batch == 4
    for i in range(4):
        assert got[i].shape == (1, 2, 4, 4) and np.all(got[i] == i)


def test_a_call_outside_any_step_runs_alone_and_a_failure_reaches_every_waiting_stream():
    rec = Recorder()
    assert BatchingBackend(rec)(np.zeros((2, 8, 8, 3), np.uint8)).shape == (2, 2, 4, 4) and rec.sizes == [2]
    got = _run_streams(BatchingBackend(Recorder(fail=True)), 3)
    assert all(isinstance(e, RuntimeError) for e in got.values()) and len(got) == 3


def test_two_calls_may_run_at_once_and_every_stream_still_gets_its_own_slice():
    import time

    class Slow(Recorder):
        def __call__(self, crops, affines=None, frame_index=None):
            time.sleep(0.02)
            return super().__call__(crops, affines, frame_index)

    rec = Slow()
    batcher = BatchingBackend(rec, max_concurrent=2)
    got = _run_streams(batcher, 6)
    assert sum(rec.sizes) == 6 and batcher.crops == 6 and batcher.calls == len(rec.sizes)
    for i in range(6):
        assert np.all(got[i] == i)
