"""No NaN or inf goes unnoticed: in the input, the loss or the gradients.

One NaN pixel under direct coding turns every weight into NaN after one optimizer step, and
the run goes on with chance accuracy; under Poisson coding NaN pixels become silence and inf
pixels fire at every step. So every batch (train, val, test) is checked before the encoder sees it,
and after each backward the gradients are checked before the optimizer may apply them.

`nonfinite` (conf/config.yaml) says what a non-finite loss or gradient does: `stop` (default) ends the
run as failed, naming the epoch and step, with checkpoints/last.ckpt still holding the last finished
epoch; `skip` drops that batch's update and counts it in results.json (`train/skipped_batches`).
Non-finite input always stops the run: it is the data that is wrong, not one update.

Cost: one reduction over the input batch and one over the gradients' norms per training batch, each
read back to the host (on CUDA a synchronisation per batch); nothing in the per-time-step loop.
"""
from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from snnexp.errors import ConfigError, check

MODES = ("stop", "skip")


class NonFiniteInput(ConfigError):
    """A batch of the dataset holds NaN or inf values."""


class NonFiniteUpdate(ConfigError):
    """A loss or gradient became NaN or inf (nonfinite=stop)."""


class NonFiniteGuard(Callback):
    def __init__(self, mode: str = "stop"):
        check(mode in MODES, "nonfinite", mode, f"must be one of {list(MODES)}")
        self.mode = mode
        self.skipped = 0

    # -- input: every stage, before the encoder
    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        check_input(batch, "training", trainer.current_epoch, batch_idx)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        check_input(batch, "validation", trainer.current_epoch, batch_idx)

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        check_input(batch, "test", None, batch_idx)

    # -- updates: after backward, before the optimizer applies the gradients
    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: Any, optimizer: torch.optim.Optimizer) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not grads or math.isfinite(float(torch.stack(torch._foreach_norm(grads)).sum())):
            return  # one reduction per step: the norms' sum is finite exactly when every gradient is
        where = f"epoch {trainer.current_epoch}, step {trainer.global_step}"
        if self.mode == "skip":
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.grad = None  # the optimizer leaves a parameter without a gradient as it is
            self.skipped += 1
            return
        loss = trainer.callback_metrics.get("train/loss")
        raise NonFiniteUpdate(
            f"non-finite gradients at {where} (the last logged train/loss: {_value(loss)}): the run stops "
            f"(nonfinite=stop) before they reach the weights; {_checkpoint_note(trainer)}. Lower "
            f"learner.optimizer.lr or clip with trainer.gradient_clip_val, or set nonfinite=skip to drop such updates")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.optimizers:  # a NaN loss gives NaN gradients: on_before_optimizer_step saw them already
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if self.mode == "stop" and isinstance(loss, torch.Tensor) and not bool(torch.isfinite(loss).all()):
            raise NonFiniteUpdate(  # a learner with no gradient step (STDP) reports its loss all the same
                f"a non-finite training loss ({_value(loss)}) at epoch {trainer.current_epoch}, batch {batch_idx}: "
                f"the run stops (nonfinite=stop); {_checkpoint_note(trainer)}")

    def results(self) -> dict[str, int]:
        return {"train/skipped_batches": self.skipped} if self.mode == "skip" else {}


def check_input(batch: Any, stage: str, epoch: int | None, batch_idx: int) -> None:
    """NonFiniteInput naming the stage, epoch and batch unless the batch's inputs are all finite."""
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or bool(torch.isfinite(x).all()):
        return
    nan, inf = int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
    at = f"epoch {epoch}, " if epoch is not None else ""
    raise NonFiniteInput(
        f"the dataset's {stage} batch {batch_idx} ({at}shape {list(x.shape)}) holds {nan} NaN and {inf} inf values; "
        f"snnexp refuses non-finite input (NaN would spread to every weight; under Poisson coding it would turn "
        f"silently into silence or constant firing): clean or re-create the dataset files")


def _value(loss: Any) -> str:
    return "none" if loss is None else f"{float(loss):.4g}"


def _checkpoint_note(trainer: pl.Trainer) -> str:
    done = trainer.current_epoch  # epochs finished before this one
    return (f"checkpoints/last.ckpt holds epoch {done - 1}, the last finished one" if done > 0
            else "no epoch had finished, so there is no checkpoint")
