import math

import pytest
import torch

from ltzoo.engine.checkpoint import load_checkpoint, save_checkpoint
from ltzoo.engine.schedule import build_scheduler, lr_multiplier


def test_warmup_then_cosine_to_min():
    f = lr_multiplier("cosine", total_steps=100, steps_per_epoch=10, warmup_epochs=1, min_lr_ratio=0.1,
                      warmup_mode="iteration")
    assert [f(t) for t in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    assert f(9) == pytest.approx(1.0) and f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert f(100) == pytest.approx(0.1)
    values = [f(t) for t in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def _ldam_drw_lr(epoch0: int, lr: float = 0.1) -> float:
    """LDAM-DRW's adjust_learning_rate written out (1-based epoch; x0.1 at 160 and at 180 as the BMLS paper)."""
    epoch = epoch0 + 1
    if epoch <= 5:
        return lr * epoch / 5
    if epoch > 180:
        return lr * 0.01
    if epoch > 160:
        return lr * 0.1
    return lr


def test_fidelity_warmup_per_epoch_as_ldam_drw():
    spe = 7
    f = lr_multiplier("step", total_steps=200 * spe, steps_per_epoch=spe, warmup_epochs=5, milestones=[160, 180])
    for t in range(200 * spe):
        assert 0.1 * f(t) == pytest.approx(_ldam_drw_lr(t // spe)), t
    # the per-iteration ramp stays an option: it differs within the first epoch
    g = lr_multiplier("step", total_steps=200 * spe, steps_per_epoch=spe, warmup_epochs=5, milestones=[160, 180],
                      warmup_mode="iteration")
    assert [g(t) for t in range(3)] == pytest.approx([1 / 35, 2 / 35, 3 / 35]) and f(0) == f(6) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="warmup_mode"):
        lr_multiplier("step", 10, 1, warmup_mode="batch")


def test_fidelity_train_config_defaults_to_epoch_warmup(make_cfg, digits):
    from ltzoo.engine.distributed import DistInfo
    from ltzoo.engine.parts import build_parts

    cfg = make_cfg(warmup_epochs=2, schedule="constant", epochs=3, lr=0.1)
    assert cfg.warmup_mode == "epoch"
    parts = build_parts(cfg, digits[0], digits[0].class_counts, DistInfo(0, 1, 0, torch.device("cpu")))
    seen = []
    for _ in range(3 * parts.steps_per_epoch):
        seen.append(parts.optimizer.param_groups[0]["lr"])
        parts.optimizer.step()
        parts.scheduler.step()
    spe = parts.steps_per_epoch
    assert seen == pytest.approx([0.05] * spe + [0.1] * spe + [0.1] * spe)


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
