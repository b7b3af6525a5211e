"""Training callbacks the experiment adds to every run (or on request)."""
from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback


@torch.no_grad()
def accuracy(learner: pl.LightningModule, loader: Any) -> float:
    """Accuracy of `learner(x, stage="test")` (time-averaged class scores [N, K]) over `loader`,
    with the evaluation generator re-seeded first: the same input spikes as the learner's own test."""
    was_training = learner.training
    learner.eval()
    learner.reseed_evaluation()
    correct = torch.zeros((), device=learner.device)
    total = 0
    try:
        for x, y in loader:
            y = y.to(learner.device)
            correct += (learner(x.to(learner.device), stage="test").argmax(-1) == y).sum()
            total += len(y)
    finally:
        learner.reseed_evaluation()
        learner.train(was_training)
    return float(correct) / max(total, 1)


class TestEveryEpoch(Callback):
    """`test_every_epoch=true`: the test accuracy after every training epoch, for papers that report
    the maximum over training (Fang et al. 2021) or the epoch chosen on validation.

    Logs `test_epoch/acc` per epoch (metrics.csv) and `summary()` gives, for results.json:
    `test/acc_max` (the best epoch's test accuracy: what "max over training" papers report),
    `test/acc_at_best_val` and `val/acc_max` (the epoch with the highest val/acc: a fair pick) and
    `best_val_epoch`. Its history is kept in the checkpoint, so a resumed run continues it.
    """

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        acc = accuracy(pl_module, trainer.datamodule.test_dataloader())
        val = trainer.callback_metrics.get("val/acc")
        self.history.append({"epoch": trainer.current_epoch, "test_acc": acc,
                             "val_acc": float(val) if val is not None else math.nan})
        pl_module.log("test_epoch/acc", acc)

    def summary(self) -> dict[str, Any]:
        if not self.history:
            return {}
        best_test = max(self.history, key=lambda h: h["test_acc"])
        out: dict[str, Any] = {"test/acc_max": best_test["test_acc"], "test/acc_max_epoch": best_test["epoch"],
                               "test/acc_per_epoch": [h["test_acc"] for h in self.history]}
        with_val = [h for h in self.history if math.isfinite(h["val_acc"])]
        if with_val:
            best_val = max(with_val, key=lambda h: h["val_acc"])  # ties: the earliest epoch
            out.update({"val/acc_max": best_val["val_acc"], "test/acc_at_best_val": best_val["test_acc"],
                        "best_val_epoch": best_val["epoch"]})
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
