"""Child process of the cross-process resume test: ``python -m tests.recipes.resume_child MODE TREE OUT``.

MODE is "straight" (train to the end), "crash" (die in the middle of the second epoch) or "resume"
(continue OUT's run); each ends by saving the model's state dict to ``OUT.pt`` and the epochs it
trained to ``OUT.epochs``. The config is
the CIFAR-10-LT benchmark's (random sampler, mixup, logit-adjusted loss, step schedule with
warm-up, image tree held as a tensor through the decoded-image cache) at toy size.
"""
import sys
from pathlib import Path

import torch

from ltzoo.engine.config import TrainConfig
from ltzoo.engine.data import build_datasets
from ltzoo.recipes.supervised import train_supervised
from tests.recipes.interrupt import CrashAt, Interrupt


def main(mode: str, tree: str, out: str) -> None:
    cfg = TrainConfig(model="small_cnn", data="cifar10", data_root=tree, imb_ratio=4, epochs=3, batch_size=16,
                      lr=0.05, warmup_epochs=1, warmup_mode="epoch", schedule="step", milestones=[2],
                      loss="logit_adjusted", mixer="mixup", mixer_args={"alpha": 1.0}, sampler="random",
                      eval_every=3, num_threads=1, progress=False, save_model=False, device="cpu",
                      output_dir=out)
    train, test, _ = build_datasets(cfg)
    epochs = EpochsTrained()
    try:
        result = train_supervised(cfg, train, test, resume=mode == "resume",
                                  callbacks=[epochs, CrashAt(1, 1)] if mode == "crash" else [epochs])
    except Interrupt:
        return
    torch.save(result["model"].state_dict(), out + ".pt")
    Path(out + ".epochs").write_text(" ".join(map(str, sorted(epochs.seen))))


class EpochsTrained:
    """Remembers the (0-based) epochs this process ran steps of."""

    def __init__(self):
        self.seen = set()

    def on_step_end(self, info):
        self.seen.add(info["epoch"])


if __name__ == "__main__":
    main(*sys.argv[1:4])
