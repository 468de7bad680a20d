"""The batched tensor loader, precision and memory format of the training forward, and the sync-free epoch loop."""
import numpy as np
import pytest
import torch

import ltzoo
from ltzoo.data.batch_augment import BatchAugment
from ltzoo.data.in_memory import InMemoryImages
from ltzoo.engine.builders import build_loss
from ltzoo.engine.epoch import train_one_epoch
from ltzoo.engine.objective import TrainForward, compute_loss
from ltzoo.engine.tensor_loader import TensorBatchLoader


def _data(n=40):
    images = torch.arange(n, dtype=torch.uint8)[:, None, None, None].expand(n, 3, 8, 8).contiguous()
    targets = torch.arange(n) % 4
    return InMemoryImages(images, targets, BatchAugment())  # no augmentation: pixel value = index


def test_batches_follow_the_sampler_with_labels_and_pairs():
    data = _data()
    sampler = ltzoo.create_sampler("random", labels=data.targets.numpy(), seed=1)
    loader = TensorBatchLoader(data, sampler, batch_size=16, drop_last=True)
    order = list(iter(sampler))
    batches = list(loader)
    assert len(loader) == len(batches) == 2
    for b, (x, y) in enumerate(batches):
        idx = order[b * 16:(b + 1) * 16]
        assert torch.allclose(x[:, 0, 0, 0], torch.tensor(idx, dtype=torch.float32) / 255)
        assert y.tolist() == [i % 4 for i in idx]
    pairs = ltzoo.create_sampler("bmls", labels=data.targets.numpy(), seed=2, batch_size=8)
    x_i, y_i, x_j, y_j = next(iter(TensorBatchLoader(data, pairs, batch_size=8)))
    assert x_i.shape == x_j.shape == (8, 3, 8, 8) and bool((y_i < y_j).all())  # a < b mixed labels
    assert len(TensorBatchLoader(data, sampler, batch_size=16, drop_last=False)) == 3


def test_augmentation_draws_come_from_the_loader_generator():
    images = torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8)
    data = InMemoryImages(images, torch.zeros(32, dtype=torch.int64), BatchAugment(8, padding=2, flip=True))
    sampler = ltzoo.create_sampler("random", labels=np.zeros(32, dtype=np.int64), seed=0)
    loader = TensorBatchLoader(data, sampler, batch_size=8)
    runs = []
    for _ in range(2):
        loader.generator = torch.Generator().manual_seed(7)
        runs.append(torch.cat([x for x, _ in loader]))
    assert torch.equal(runs[0], runs[1])
    loader.generator = torch.Generator().manual_seed(8)
    assert not torch.equal(torch.cat([x for x, _ in loader]), runs[0])


def test_fidelity_bf16_step_loss_within_1e2_of_fp32_on_a_fixed_batch():
    torch.manual_seed(0)
    model = ltzoo.create_model("resnet32", num_classes=10)
    x, y = torch.randn(16, 3, 32, 32), torch.arange(16) % 10
    loss_fn = build_loss("ce", model, [10] * 10)
    fp32 = compute_loss(TrainForward(model), loss_fn, (x, y)).loss
    model_cl = model.to(memory_format=torch.channels_last)
    bf16 = compute_loss(TrainForward(model_cl, "bf16", channels_last=True), loss_fn, (x, y))
    assert bf16.output.dtype == torch.float32  # the loss is computed in fp32
    assert abs(float(bf16.loss.detach()) - float(fp32.detach())) < 1e-2
    with pytest.raises(ValueError, match="precision"):
        TrainForward(model, "int8")


def _epoch(sync_every, lr=0.1, poison=False):
    torch.manual_seed(0)
    model = ltzoo.create_model("small_cnn", num_classes=4)
    data = _data(64)
    sampler = ltzoo.create_sampler("random", labels=data.targets.numpy(), seed=0)
    loader = TensorBatchLoader(data, sampler, batch_size=8)
    loader.generator = torch.Generator().manual_seed(0)
    loss_fn = build_loss("ce", model, [16] * 4)
    if poison:
        loss_fn = _NaNAfter(loss_fn, 3)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    stats = train_one_epoch(TrainForward(model), loss_fn, loader, opt, None, torch.device("cpu"),
                            sync_every=sync_every)
    return model, stats


class _NaNAfter(torch.nn.Module):
    def __init__(self, inner, calls):
        super().__init__()
        self.inner, self.calls, self.seen = inner, calls, 0

    def forward(self, logits, target):
        self.seen += 1
        out = self.inner(logits, target)
        return out * float("nan") if self.seen > self.calls else out


def test_fidelity_sync_free_loop_on_cpu_matches_the_per_step_loop_and_still_catches_nan():
    """The GPU loop (loss read back every 4 steps only) run on the CPU: same weights and loss as every step."""
    m1, s1 = _epoch(sync_every=1)
    m4, s4 = _epoch(sync_every=4)
    assert s1 == s4
    for k, v in m1.state_dict().items():
        assert torch.equal(v, m4.state_dict()[k]), k
    with pytest.raises(FloatingPointError, match="iteration"):
        _epoch(sync_every=4, poison=True)
