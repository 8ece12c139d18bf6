"""train/schedule: warm-up, cosine and step learning-rate factors, and the optimizer a config asks for."""

import copy
import math

import pytest
import torch

from train.config import TrainConfig
from train.schedule import LrLambda, adam, build_optimizer, lr_factor


def test_warmup_then_cosine_to_min_lr_frac():
    cfg = TrainConfig(data="d", out="o", iters=1000, warmup=50, min_lr_frac=0.02)
    assert lr_factor(cfg, 0) == pytest.approx(1 / 50) and lr_factor(cfg, 49) == pytest.approx(1.0)
    assert lr_factor(cfg, 50) == pytest.approx(1.0)
    assert lr_factor(cfg, 525) == pytest.approx(0.02 + 0.98 * 0.5)  # half way through the decay
    assert lr_factor(cfg, 1000) == pytest.approx(0.02)
    # warm-up is capped at a tenth of the run
    short = TrainConfig(data="d", out="o", iters=100, warmup=50)
    assert lr_factor(short, 9) == pytest.approx(1.0) and lr_factor(short, 10) == pytest.approx(1.0)


def test_step_and_constant_schedules():
    step = TrainConfig(data="d", out="o", iters=100, warmup=0, schedule="step")
    assert [lr_factor(step, i) for i in (0, 74, 75, 89, 90, 99)] == [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    const = TrainConfig(data="d", out="o", iters=100, warmup=0, schedule="constant")
    assert {lr_factor(const, i) for i in range(100)} == {1.0}


def test_optimizer_and_schedule_follow_the_config():
    model = torch.nn.Conv2d(3, 2, 3)
    cfg = TrainConfig(data="d", out="o", iters=10, warmup=0, lr=1e-3, optimizer="adam")
    opt, sched = build_optimizer(cfg, model)
    assert isinstance(opt, torch.optim.Adam) and isinstance(sched.lr_lambdas[0], LrLambda)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 * lr_factor(cfg, 0))
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * 0.1))))
    rms, _ = build_optimizer(TrainConfig(data="d", out="o"), model)
    assert isinstance(rms, torch.optim.RMSprop)


def test_adam_resumes_the_state_of_the_per_tensor_loop_and_steps_alike():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(6, 4), torch.nn.Linear(6, 4)
    b.load_state_dict(a.state_dict())
    loop = torch.optim.Adam(a.parameters(), lr=1e-2, foreach=False)
    x = torch.randn(8, 6)
    for _ in range(3):  # a state from the per-tensor loop, as older checkpoints hold
        loop.zero_grad()
        a(x).square().sum().backward()
        loop.step()
    b.load_state_dict(a.state_dict())
    ours = adam(b.parameters(), 1e-2)
    ours.load_state_dict(copy.deepcopy(loop.state_dict()))  # as from a checkpoint: no shared tensors
    for net, opt in ((a, loop), (b, ours)):
        opt.zero_grad()
        net(x).square().sum().backward()
        opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert ours.defaults["fused"] or torch.__version__ < (2, 4)  # fused on a CPU from torch 2.4 on
