"""One heatmap network shared by many streams: the crops that are waiting at the same moment go
through one batched inference call.

:class:`BatchingBackend` wraps a :class:`~tracker.pipeline.infer.HeatmapBackend` (whose model has a
dynamic batch axis: ``export/onnx_export.py`` exports ``input`` and the heatmaps with a dynamic
axis 0, and :class:`~tracker.pipeline.infer.OnnxHeatmapModel` takes (N, S, S, 3) crops) and is
itself one, so every stream's :class:`~tracker.pipeline.tracker.Tracker` uses it unchanged. Each
stream runs on its own thread and marks the span of a frame with :meth:`BatchingBackend.stepping`.

The batching rule (dynamic batching, as inference servers do it, with no timer): a request waits
until every stream that is inside a step, and not already in a running call, has a request
waiting, or is done with its step; then one waiting thread takes all waiting requests, runs them
as one (sum N, S, S, 3) call, and hands each its slice of the heatmaps. So when N streams are in
step with each other (one frame each per tick) each tick is one call of batch N; a stream still
cropping or solving is waited for, a stream reading its next frame or writing its outputs is not.
At most ``max_concurrent`` calls run at once: with 1 the streams move in lockstep (a batch infers,
then every stream crops, decodes and solves while the network idles); with 2 they settle into
two groups whose inference and Python work alternate, so the two cores stay busier (on a 2-core
machine batching alone saved no CPU per crop: ONNX Runtime's CPU time per crop is flat from batch
1 to 8, so the streams gain only from that overlap). The heatmaps of a
crop do not depend on the other crops in its batch (ONNX Runtime's CPU kernels compute each batch
item alone; a test holds each stream's poses equal to running it alone).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import numpy as np

from tracker.pipeline.infer import HeatmapBackend


class _Request:
    __slots__ = ("crops", "affines", "index", "heat", "error", "done")

    def __init__(self, crops: np.ndarray, affines: np.ndarray | None, index: int | None):
        self.crops, self.affines, self.index = crops, affines, index
        self.heat: np.ndarray | None = None
        self.error: BaseException | None = None
        self.done = False


class BatchingBackend:
    """A HeatmapBackend that batches concurrent calls from stream threads into one call of ``model``.

    model: the shared backend (its ``meta`` and ``provider`` are this one's; it must allow calls from
    several threads at once when max_concurrent > 1, as an ONNX Runtime session does).
    max_concurrent: calls that may run at the same time (module docstring). Counters: ``calls``
    (batched calls made) and ``crops`` (crops sent); ``crops / calls`` is the mean batch size.
    """

    def __init__(self, model: HeatmapBackend, max_concurrent: int = 1):
        self.model = model
        self.max_concurrent = max(1, int(max_concurrent))
        self.meta = model.meta
        self.provider = str(getattr(model, "provider", "?"))
        self.path = getattr(model, "path", "model")
        self.calls = 0
        self.crops = 0
        self._cond = threading.Condition()
        self._pending: list[_Request] = []
        self._stepping = 0
        self._running = 0  # batches in flight
        self._in_flight = 0  # requests in those batches

    @property
    def mean_batch(self) -> float:
        return self.crops / self.calls if self.calls else float("nan")

    @contextlib.contextmanager
    def stepping(self) -> Iterator[None]:
        """Mark the calling stream as inside a frame step: batches wait for its request too."""
        with self._cond:
            self._stepping += 1
        try:
            yield
        finally:
            with self._cond:
                self._stepping -= 1
                self._cond.notify_all()

    def __call__(self, crops: np.ndarray, affines: np.ndarray | None = None, frame_index: int | None = None) -> np.ndarray:
        """Heatmaps (N, K, H, H) float32 for ``crops`` (N, S, S, 3) uint8, computed in a batch with the
        other streams' waiting crops. affines (N, 2, 3) and frame_index are passed on when every
        request in the batch has affines (frame_index only when all requests share it)."""
        req = _Request(np.asarray(crops), None if affines is None else np.asarray(affines), frame_index)
        with self._cond:
            self._pending.append(req)
            self._cond.notify_all()
            while not req.done:
                if self._running < self.max_concurrent and len(self._pending) >= max(1, self._stepping - self._in_flight):
                    batch, self._pending = self._pending, []
                    self._running += 1
                    self._in_flight += len(batch)
                    break
                self._cond.wait()
            else:
                return self._result(req)
        try:
            self._run(batch)
        finally:
            with self._cond:  # counters under the lock: two calls may end at once
                self._running -= 1
                self._in_flight -= len(batch)
                self.calls += 1
                self.crops += sum(len(r.crops) for r in batch)
                self._cond.notify_all()
        return self._result(req)

    def _run(self, batch: list[_Request]) -> None:
        """One call of the shared model for every request of ``batch``; each gets its slice (or the error)."""
        try:
            crops = batch[0].crops if len(batch) == 1 else np.concatenate([r.crops for r in batch])
            affines = None
            if all(r.affines is not None for r in batch):
                affines = batch[0].affines if len(batch) == 1 else np.concatenate([r.affines for r in batch])
            index = batch[0].index if all(r.index == batch[0].index for r in batch) else None
            heat = np.asarray(self.model(crops, affines, index))
            start = 0
            for r in batch:
                n = len(r.crops)
                r.heat = heat[start:start + n]
                start += n
        except BaseException as e:  # every waiting stream gets the failure, as it would alone
            for r in batch:
                r.error = e
        finally:
            for r in batch:
                r.done = True

    @staticmethod
    def _result(req: _Request) -> np.ndarray:
        if req.error is not None:
            raise req.error
        return req.heat

    def warmup(self, n: int = 5, batch: int = 1) -> None:
        """Warm the shared model up (see the wrapped backend's ``warmup``)."""
        warm = getattr(self.model, "warmup", None)
        if warm is not None:
            warm(n, batch)
