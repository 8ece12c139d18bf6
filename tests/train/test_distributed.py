"""DistributedDataParallel: two CPU processes under gloo stay identical and write one run folder."""

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from kp_tinydata import write_tiny_bop
from tracker.objects import load_object
from train import distributed
from train.checkpoint import load_checkpoint
from train.config import TrainConfig
from train.loop import train

FAST = dict(batch=2, workers=0, threads=1, width=0.25, val_every=2, log_every=1, warmup=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_tiny_bop(tmp_path_factory.mktemp("tiny"), load_object("default"), n=6, size=96, corrupt=(2,))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, data: str, out: str, sums: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    res = train(TrainConfig(data=data, out=out, iters=2, device="cpu", **FAST))
    vec = torch.cat([p.detach().flatten() for p in res.model.parameters()])
    np.save(Path(sums) / f"rank{rank}.npy", vec.numpy())


def test_ddp_two_cpu_processes_gloo(data, tmp_path):
    import torch.multiprocessing as mp

    out, sums = tmp_path / "run", tmp_path / "sums"
    sums.mkdir()
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(data), str(out), str(sums)), nprocs=2, join=True)
    p0, p1 = np.load(sums / "rank0.npy"), np.load(sums / "rank1.npy")
    np.testing.assert_array_equal(p0, p1)  # gradients were all-reduced: the replicas stayed identical
    assert load_checkpoint(out)["iteration"] == 2
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["best.pt", "config.json", "last.pt", "log.csv"]
    single = TrainConfig(data=str(data), out=str(tmp_path / "single"), iters=2, device="cpu", **FAST)
    ref = train(single)
    # two processes each took their own shard of a 2 x batch global batch: not the single-process run
    assert not np.array_equal(p0, torch.cat([p.detach().flatten() for p in ref.model.parameters()]).numpy())


@pytest.mark.parametrize("ncores, world, device, expected", [
    (2, 1, "cpu", (2, 0)),    # no data process beside torch's threads on a 2-core machine
    (8, 1, "cpu", (7, 1)),    # one, and torch gets the other cores
    (8, 2, "cpu", (3, 1)),    # each of two processes gets half the cores
    (16, 1, "cuda", (16, 8)), # a GPU run's data processes set its pace: half the cores, at most 8
    (1, 1, "cpu", (1, 0)),
])
def test_cpu_share_avoids_oversubscribing_a_cpu(monkeypatch, ncores, world, device, expected):
    monkeypatch.setattr(distributed, "cores", lambda: ncores)
    assert distributed.cpu_share(None, None, distributed.Dist(world=world), torch.device(device)) == expected
    # what the user asked for is kept
    assert distributed.cpu_share(3, 2, distributed.Dist(world=world), torch.device(device)) == (3, 2)
    assert distributed.cpu_share(None, 1, distributed.Dist(world=1), torch.device("cpu"))[0] == max(1, ncores - 1)
