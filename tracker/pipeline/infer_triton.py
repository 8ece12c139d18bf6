"""Heatmap inference on an NVIDIA Triton Inference Server, over gRPC: ``--backend triton://HOST:PORT/MODEL``.

Cropping, decoding, solving and drawing stay in the client; only the normalised crops
``(N, 3, S, S)`` float32 go to the server and the heatmaps ``(N, K, H, H)`` float32 come back, so
one server (on a GPU machine) can serve many cameras, its dynamic batcher merging their requests.
The repository is written by ``kptrack export --triton-repo`` (:mod:`export.triton_repo`).

:class:`TritonHeatmapModel` has the interface of
:class:`~tracker.pipeline.infer.OnnxHeatmapModel` (``meta``, ``provider``, ``__call__``,
``warmup``). The metadata comes from the local model file the caller names (the one exported to the
repository); on connecting, the server's model is checked against it: one input and the heatmap
output with the same names, FP32, input ``(-1, 3, S, S)`` and output ``(-1, K, H, H)``.

tritonclient is an optional extra (``pip install 'kptrack[triton]'``), imported on first use.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlparse

import numpy as np

from tracker.errors import KptrackError
from tracker.formats.modelmeta import ModelMeta

log = logging.getLogger(__name__)

SCHEME = "triton://"
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class TritonUrl:
    """``triton://HOST:PORT/MODEL`` parsed: host, port (gRPC), model name."""

    host: str
    port: int
    model: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{SCHEME}{self.host}:{self.port}/{self.model}"


def parse_triton_url(url: str) -> TritonUrl:
    """Parse ``triton://HOST:PORT/MODEL`` (PORT: Triton's gRPC port, 8001 by default)."""
    bad = KptrackError(f"--backend {url}: expected triton://HOST:PORT/MODEL, e.g. triton://127.0.0.1:8001/kptrack_default.")
    if not url.startswith(SCHEME):
        raise bad
    u = urlparse(url)
    try:
        port = u.port or 8001
    except ValueError:
        raise bad from None
    model = u.path.strip("/")
    if not u.hostname or not model or "/" in model:
        raise bad
    return TritonUrl(u.hostname, port, model)


def _grpcclient():
    try:
        # lazily: tritonclient is the optional `triton` extra, needed only with --backend triton://
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException
    except ImportError:
        raise KptrackError("--backend triton://...: tritonclient is not installed. Install the extra: "
                           "`pip install 'kptrack[triton]'` (or `pip install 'tritonclient[grpc]'`).") from None
    return grpcclient, InferenceServerException


def _check_tensor(url: TritonUrl, what: str, got, name: str, dims: tuple[int, ...]) -> None:
    """got: the server's TensorMetadata; dims: the expected shape without the batch axis."""
    shape = [int(d) for d in got.shape]
    want = [-1, *dims]
    if got.name != name or got.datatype != "FP32" or shape != want:
        raise KptrackError(
            f"--backend {url}: the server's {what} is {got.name!r} {got.datatype} {shape}, but the model's metadata says "
            f"{name!r} FP32 {want} (batch axis dynamic). Serve the repository written by "
            "`kptrack export --model MODEL.onnx --triton-repo DIR` for this --model."
        )


class TritonHeatmapModel:
    """A kptrack heatmap network served by Triton.

    url: ``triton://HOST:PORT/MODEL``. meta: the model's ModelMeta (from the local file).
    input_name / output_name: the graph's tensor names the server must expose.
    timeout_s: each call's deadline (connecting and checking included).
    """

    def __init__(self, url: str, meta: ModelMeta, input_name: str = "input", output_name: str = "heatmaps",
                 timeout_s: float = CONNECT_TIMEOUT_S):
        grpc, self._error = _grpcclient()
        self._grpc = grpc
        self.url = parse_triton_url(url)
        self.meta, self.input_name, self.output_name, self.timeout_s = meta, input_name, output_name, float(timeout_s)
        self.provider = f"triton {self.url.address}/{self.url.model}"
        self.device = "triton"
        self.client = grpc.InferenceServerClient(self.url.address)
        try:
            live = self.client.is_server_live(client_timeout=self.timeout_s)
        except self._error as e:
            self.client.close()
            raise KptrackError(f"--backend {self.url}: no Triton server answers at {self.url.address} within "
                               f"{self.timeout_s:g} s ({_brief(e)}). Start it, or check HOST:PORT (Triton's gRPC port).") from None
        if not live:
            raise KptrackError(f"--backend {self.url}: the Triton server at {self.url.address} is not live yet; retry when it is.")
        self._check_model()
        log.info("model %s on Triton at %s", self.url.model, self.url.address)
        if meta.visibility:  # the repository serves the heatmap output alone (export.triton_repo)
            log.warning("%s has a visibility output; through Triton its heatmaps are not gated by it (the local "
                        "ONNX Runtime backend gates them)", self.url.model)

    def _check_model(self) -> None:
        try:
            ready = self.client.is_model_ready(self.url.model, client_timeout=self.timeout_s)
            md = self.client.get_model_metadata(self.url.model, client_timeout=self.timeout_s) if ready else None
        except self._error as e:
            raise KptrackError(f"--backend {self.url}: cannot read model {self.url.model!r} ({_brief(e)}).") from None
        if md is None:
            raise KptrackError(f"--backend {self.url}: the server has no ready model {self.url.model!r}. "
                               "Check the MODEL part of the URL and the server's model repository.")
        if len(md.inputs) != 1 or not md.outputs:
            raise KptrackError(f"--backend {self.url}: the server's model has inputs {[i.name for i in md.inputs]} and outputs "
                               f"{[o.name for o in md.outputs]}; a kptrack model has one input and the heatmap output.")
        m = self.meta
        _check_tensor(self.url, "input", md.inputs[0], self.input_name, (3, m.input_size, m.input_size))
        out = next((o for o in md.outputs if o.name == self.output_name), md.outputs[-1])
        _check_tensor(self.url, "output", out, self.output_name, (m.num_keypoints, m.heatmap_size, m.heatmap_size))

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        return self.meta.keypoint_names

    def __call__(self, crops: np.ndarray, affines: np.ndarray | None = None, frame_index: int | None = None) -> np.ndarray:
        """crops: (N, S, S, 3) uint8 BGR -> (N, K, H, H) float32 heatmaps (affines, frame_index: ignored)."""
        crops = np.asarray(crops)
        s = self.meta.input_size
        if crops.ndim != 4 or crops.shape[1:] != (s, s, 3) or crops.dtype != np.uint8:
            raise ValueError(f"crops must be (N, {s}, {s}, 3) uint8, got {crops.shape} {crops.dtype}")
        x = self.meta.normalise(crops)
        inp = self._grpc.InferInput(self.input_name, list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        try:
            res = self.client.infer(self.url.model, [inp], outputs=[self._grpc.InferRequestedOutput(self.output_name)],
                                    client_timeout=self.timeout_s)
        except self._error as e:
            raise KptrackError(f"--backend {self.url}: inference failed ({_brief(e)}).") from None
        return res.as_numpy(self.output_name)

    def warmup(self, n: int = 5, batch: int = 1) -> None:
        """Run n inferences on a grey crop (connection and server-side allocations ready before timing)."""
        crops = np.full((batch, self.meta.input_size, self.meta.input_size, 3), 127, np.uint8)
        for _ in range(max(0, n)):
            self(crops)

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return f"TritonHeatmapModel({str(self.url)!r}, K={self.meta.num_keypoints})"


def _brief(e: Exception) -> str:
    return " ".join(str(e).split())[:200]
