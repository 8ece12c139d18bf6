"""Processes and devices of a training run: single process, or DistributedDataParallel under torchrun.

Launch ``torchrun --nproc_per_node N -m tracker train ...``: torchrun sets ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``; each process trains on its own shard of every global batch under
DistributedDataParallel (NCCL on GPUs, gloo on CPUs) and only rank 0 validates and writes files.
Without torchrun everything here is a no-op around one process.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from tracker.errors import KptrackError

log = logging.getLogger(__name__)


@dataclass
class Dist:
    """This process's place in the run: rank, world size, local rank (its GPU on the node)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that validates and writes files."""
        return self.rank == 0


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def cpu_share(threads: int | None, workers: int | None, dist: Dist, device: torch.device) -> tuple[int, int]:
    """(torch threads, DataLoader workers) of one training process; given values are kept.

    On a GPU the data processes set the pace: up to 8 of them, half the process's cores, and
    torch keeps every core. On a CPU the step sets it, and a data process beside torch's threads
    oversubscribes the cores: on the 2-core development machine one worker beside 2 threads ran
    the lite step at 32-35 images/s, 0 workers (the batch made in the loop's own process) at 41-44
    (benchmarks/RESULTS.md, "Data processes on a CPU"). So on a CPU: no worker with at most 2 cores,
    else one (a batch's crops take a tenth of a one-core step), and torch gets the cores left."""
    per = max(1, cores() // dist.world)
    if device.type == "cuda":
        w = workers if workers is not None else min(8, max(1, per // 2))
        return threads or per, w
    w = workers if workers is not None else (0 if per <= 2 else 1)
    return threads or max(1, per - w), w


def init_distributed(device_arg: str) -> tuple[Dist, torch.device]:
    """(Dist, device) for ``--device`` (auto | cpu | cuda | cuda:N); joins the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = device_arg.startswith("cuda") or (device_arg == "auto" and torch.cuda.is_available())
    if device_arg.startswith("cuda") and not torch.cuda.is_available():
        raise KptrackError(f"--device {device_arg}: this torch has no usable CUDA GPU. Use --device cpu (or auto).")
    if world <= 1:
        dev = torch.device(device_arg if device_arg.startswith("cuda") else ("cuda" if use_cuda else "cpu"))
        return Dist(), dev
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Dist(rank, world, local), dev


def close_distributed(dist: Dist) -> None:
    """Leave the process group (if this run joined one)."""
    if dist.world > 1 and tdist.is_initialized():
        tdist.destroy_process_group()


def wrap_model(model: nn.Module, dist: Dist, device: torch.device) -> nn.Module:
    """The module to train: ``model`` itself, or under DistributedDataParallel with several processes."""
    if dist.world <= 1:
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def gather_bad_images(bad: set[int], dist: Dist) -> None:
    """Add every process's unreadable image indices to ``bad`` (in place)."""
    if dist.world > 1:
        allbad: list = [None] * dist.world
        tdist.all_gather_object(allbad, sorted(bad))
        for b in allbad:
            bad.update(b or [])


def barrier(dist: Dist) -> None:
    """Wait for every process (no-op in a single process)."""
    if dist.world > 1:
        tdist.barrier()


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 in hardware: a CUDA GPU that reports it (Ampere on),
    or a CPU whose oneDNN has bf16 kernels (AVX-512 BF16 or AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


#: ``--precision`` values of ``kptrack train`` and ``kptrack pretrain``.
PRECISIONS = ("fp32", "bf16")


def unknown_precision(precision: str) -> str:
    """The message that refuses a ``--precision`` value not in :data:`PRECISIONS`."""
    return f"--precision {precision!r}: use {' or '.join(PRECISIONS)}"


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse ``--precision bf16`` on a GPU without bfloat16 (one KptrackError naming the fix);
    on a CPU without bf16 units warn that it will train, but slower than fp32."""
    if precision != "bf16" or bf16_native(device):
        return
    if device.type == "cuda":
        raise KptrackError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support "
                           "(GPUs from Ampere on have). Use --precision fp32.")
    log.warning("--precision bf16: this CPU has no bfloat16 units (AVX-512 BF16 or AMX), so the steps are emulated "
                "and slower than fp32; --precision fp32 is faster here")


def precision_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context a training step's forward runs in: bfloat16 autocast on ``device`` for
    ``'bf16'`` (weights and optimizer stay float32), else none."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
