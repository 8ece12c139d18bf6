"""Serve a kptrack Triton model repository on a CPU-only machine, with the tritonserver that the
``nvidia-pytriton`` wheel bundles: ``python export/triton_serve.py --repo DIR --grpc-port 8001``.

Why this exists: the wheel's tritonserver (2.51) runs on CPU but bundles only the Python backend,
not the ONNX Runtime one, so each model of the repository is served through pytriton's Python
binding, which runs the repository's own ``1/model.onnx`` with ONNX Runtime (CPU) under the
repository's tensor names, dims and ``max_batch_size``, with dynamic batching. On a machine with a
full Triton (``nvcr.io/nvidia/tritonserver`` images), serve the same folder directly with
``tritonserver --model-repository DIR`` and the ``config.pbtxt`` of :mod:`export.triton_repo`
(see the README). Clients cannot tell the two apart: same model names, tensors and protocol.

Two halves:

* run as a script (in a Python that has ``nvidia-pytriton`` and ``onnxruntime``; nvidia-pytriton
  0.7 pins numpy < 2, so it usually lives in its own virtual environment): serves until SIGINT /
  SIGTERM. It imports nothing from kptrack, so that environment needs no kptrack install.
  Triton's Python backend stub loads the interpreter's shared libpython; the script puts that
  interpreter's library folder on ``LD_LIBRARY_PATH`` first (without it the stub fails with a
  confusing multiprocessing error).
* :func:`local_triton_server`, for tests and benchmarks: starts the script in a child process
  on 127.0.0.1, waits until the model is ready, yields its ``triton://`` URL, stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Iterator

READY_TIMEOUT_S = 90.0


def find_triton_python() -> str | None:
    """A Python that can run the server: ``$KPTRACK_TRITON_PYTHON``, else this interpreter if it has
    pytriton, else None."""
    env = os.environ.get("KPTRACK_TRITON_PYTHON")
    if env:
        return env if Path(env).exists() else None
    return sys.executable if importlib.util.find_spec("pytriton") is not None else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_triton_server(repo: str | Path, model: str, python: str, grpc_port: int | None = None) -> Iterator[str]:
    """Start the server on 127.0.0.1 in a child process; once every model of ``repo`` is ready, yield
    ``triton://127.0.0.1:PORT/model``; stop it (SIGTERM, then SIGKILL after 20 s) on leaving.

    Raises RuntimeError (with the server's log tail) if it does not become ready in READY_TIMEOUT_S.
    """
    # lazily: tritonclient is the optional `triton` extra
    import tritonclient.grpc as grpcclient

    port = grpc_port or free_port()
    http, metrics = free_port(), free_port()
    cmd = [python, str(Path(__file__).resolve()), "--repo", str(repo), "--grpc-port", str(port), "--http-port", str(http),
           "--metrics-port", str(metrics)]
    log = open(Path(repo) / f"server-{port}.log", "w+b")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
    names = sorted({model} | {p.parent.parent.name for p in Path(repo).glob("*/1/model.onnx")})
    try:
        t0 = time.monotonic()
        while True:
            with contextlib.suppress(Exception):
                if all(client.is_model_ready(m, client_timeout=1.0) for m in names):
                    break
            if proc.poll() is not None or time.monotonic() - t0 > READY_TIMEOUT_S:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"Triton server did not become ready (exit {proc.poll()}):\n{tail}")
            time.sleep(0.2)
        yield f"triton://127.0.0.1:{port}/{model}"
    finally:
        client.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt


def _max_batch(config: Path) -> int:
    m = re.search(r"max_batch_size:\s*(\d+)", config.read_text())
    return int(m.group(1)) if m else 32


def _infer_fn(session, input_name: str, output_name: str):
    def infer(**inputs):
        return {output_name: session.run([output_name], {input_name: inputs[input_name]})[0]}
    return infer


def serve(repo: Path, grpc_port: int, http_port: int, metrics_port: int, threads: int | None) -> None:
    """Serve every ``repo/<name>/1/model.onnx`` until SIGINT/SIGTERM (see the module docstring)."""
    for sig in (signal.SIGINT, signal.SIGTERM):  # both stop it, also where SIGINT came in ignored (a background job)
        signal.signal(sig, _stop)
    libdir = sysconfig.get_config_var("LIBDIR") or str(Path(sys.base_prefix) / "lib")
    os.environ["LD_LIBRARY_PATH"] = libdir + (os.pathsep + os.environ["LD_LIBRARY_PATH"] if os.environ.get("LD_LIBRARY_PATH") else "")
    # lazily: these live in the server's own environment, never in kptrack's dependencies
    import numpy as np
    import onnxruntime as ort
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig

    models = sorted(p.parent.parent for p in repo.glob("*/1/model.onnx"))
    if not models:
        raise SystemExit(f"{repo}: no <name>/1/model.onnx inside; write it with `kptrack export --model M --triton-repo {repo}`.")
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    cfg = TritonConfig(grpc_address="127.0.0.1", http_address="127.0.0.1", grpc_port=grpc_port, http_port=http_port,
                       metrics_port=metrics_port, exit_on_error=True)
    with Triton(config=cfg) as triton:
        for folder in models:
            sess = ort.InferenceSession(str(folder / "1" / "model.onnx"), sess_options=so, providers=["CPUExecutionProvider"])
            i, o = sess.get_inputs()[0], sess.get_outputs()[-1]
            triton.bind(model_name=folder.name, infer_func=batch(_infer_fn(sess, i.name, o.name)),
                        inputs=[Tensor(name=i.name, dtype=np.float32, shape=tuple(i.shape[1:]))],
                        outputs=[Tensor(name=o.name, dtype=np.float32, shape=tuple(o.shape[1:]))],
                        config=ModelConfig(max_batch_size=_max_batch(folder / "config.pbtxt"),
                                           batcher=DynamicBatcher(max_queue_delay_microseconds=200)))
        triton.serve()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="serve a kptrack Triton model repository with pytriton's bundled tritonserver (CPU)")
    p.add_argument("--repo", required=True, help="the repository folder written by `kptrack export --triton-repo`")
    p.add_argument("--grpc-port", type=int, default=8001, help="gRPC port (clients: triton://127.0.0.1:PORT/MODEL)")
    p.add_argument("--http-port", type=int, default=8000, help="HTTP port")
    p.add_argument("--metrics-port", type=int, default=8002, help="metrics port")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads per model")
    a = p.parse_args(argv)
    serve(Path(a.repo), a.grpc_port, a.http_port, a.metrics_port, a.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
