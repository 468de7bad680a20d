import math

import pytest
import torch

from ltzoo.train import build_scheduler, lr_multiplier
from ltzoo.train.checkpoint import load_checkpoint, save_checkpoint


def test_warmup_then_cosine_to_min():
    f = lr_multiplier("cosine", total_steps=100, steps_per_epoch=10, warmup_epochs=1, min_lr_ratio=0.1)
    assert [f(t) for t in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    assert f(9) == pytest.approx(1.0) and f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert f(100) == pytest.approx(0.1)
    values = [f(t) for t in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_step_schedule_milestones_in_epochs():
    f = lr_multiplier("step", total_steps=200 * 5, steps_per_epoch=5, warmup_epochs=0, milestones=[160, 180], gamma=0.1)
    assert f(160 * 5 - 1) == 1.0
    assert f(160 * 5) == pytest.approx(0.1) and f(180 * 5) == pytest.approx(0.01)


def test_fixmatch_and_constant():
    f = lr_multiplier("fixmatch", total_steps=16, steps_per_epoch=1)
    assert f(0) == 1.0 and f(16) == pytest.approx(math.cos(7 * math.pi / 16))
    assert lr_multiplier("constant", 5, 1)(4) == 1.0
    with pytest.raises(ValueError, match="schedule"):
        lr_multiplier("poly", 5, 1)


def test_scheduler_state_round_trips_weights_only(tmp_path):
    def make():
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.2)
        return opt, build_scheduler(opt, "cosine", epochs=4, steps_per_epoch=3, warmup_epochs=1)

    opt, sched = make()
    for _ in range(5):
        opt.step()
        sched.step()
    save_checkpoint(tmp_path / "s.pt", {"s": sched.state_dict()})
    opt2, sched2 = make()
    sched2.load_state_dict(load_checkpoint(tmp_path / "s.pt")["s"])
    opt.step(), sched.step(), opt2.step(), sched2.step()
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
