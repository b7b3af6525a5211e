"""Backpropagation through time with surrogate gradients."""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy

from snnexp.errors import check
from snnexp.learners.base import Learner, configure, plain
from snnexp.learners.evaluation import EncodingAndActivity
from snnexp.learners.memory import WINDOWED, check_mode, check_model, run_checkpointed, segment_length, train_windows
from snnexp.metrics.activity import ActivityMonitor
from snnexp.models.base import SpikingModel

LOSSES = ("ce", "mse", "tet")


class BPTT(EncodingAndActivity, Learner):
    """Trains a spiking model end to end through its unrolled time steps.

    Each batch x [N, ...] is encoded to x_seq [T, N, ...], run through the
    model to out_seq [T, N, K], and averaged over time: the output layer's
    firing rate (readout "spikes") or mean membrane (readout "membrane").
    loss "ce": cross-entropy on that average times `logit_scale` (T: spike
    counts, whose softmax is sharper than that of rates in [0, 1]: Fashion-MNIST
    in 2 epochs 0.866 vs 0.830); "mse": mean squared error between the average
    and the one-hot label (Fang et al. 2021, for rates); "tet": temporal efficient
    training (Deng et al., ICLR 2022): the cross-entropy of every step's output
    (times `logit_scale`) averaged over the steps, (1 - tet_lambda) of it, plus
    tet_lambda x the mean squared distance of the outputs from `tet_means` (the
    authors' code: 1e-3 and 1.0). Prediction is from the average in every case.
    Logs {train,val,test}/{loss,acc}; on val/test also the firing rate of
    every spiking layer and synaptic operations per sample.
    memory: what training keeps of the unrolled steps (`snnexp.learners.memory`): "full", "checkpoint"
    (states every `memory_steps` steps, segments recomputed: the same gradients, to rounding), "tbptt" (windows of
    `memory_steps`, state carried detached) or "online" (SLTT); memory_steps null: about sqrt(T).
    tbptt and online step the optimizer themselves (a backward per window: manual optimization).
    """

    name = "bptt"

    def __init__(
        self,
        model: SpikingModel,
        encoder: Callable[..., Tensor],
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        loss: str = "ce",
        seed: int = 0,
        logit_scale: float = 1.0,
        tet_lambda: float = 1e-3,
        tet_means: float = 1.0,
        memory: str = "full",
        memory_steps: int | None = None,
    ):
        super().__init__(model, encoder, seed)
        check(loss in LOSSES, "learner.loss", loss, f"choose one of {list(LOSSES)}")
        check_mode(memory, memory_steps)
        check_model(memory, model)
        check(0 <= float(tet_lambda) <= 1, "learner.tet_lambda", tet_lambda, "must be in [0, 1]")
        # Plain values only: checkpoints must load with torch.load(weights_only=True) (resume).
        self.save_hyperparameters(plain(dict(num_classes=int(num_classes), loss=loss, seed=int(seed),
                                             logit_scale=float(logit_scale), tet_lambda=float(tet_lambda),
                                             tet_means=float(tet_means), memory=memory,
                                             memory_steps=None if memory_steps is None else int(memory_steps))),
                                  logger=False)
        self.memory = memory
        self.memory_steps = None if memory_steps is None else int(memory_steps)
        self.windowed = memory in WINDOWED
        self.automatic_optimization = not self.windowed
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.loss_name = loss
        self.logit_scale = float(logit_scale)
        self.tet_lambda, self.tet_means = float(tet_lambda), float(tet_means)
        self.num_classes = int(num_classes)
        self.acc = torch.nn.ModuleDict({s: MulticlassAccuracy(self.num_classes, average="micro")
                                        for s in ("train_", "val_", "test_")})
        self._monitor: ActivityMonitor | None = None

    def steps_kept(self, T: int) -> int:
        """full: all T steps wait for the backward; checkpoint: one segment of k, plus T/k stored states
        (counted as whole steps: an upper bound); tbptt and online: one window of k (online: 1)."""
        if self.memory == "full":
            return T
        k = segment_length(self.memory, self.memory_steps, T)
        return k + math.ceil(T / k) if self.memory == "checkpoint" else k

    def memory_advice(self) -> str:
        return ", or keep fewer steps with learner.memory=checkpoint or online (docs/memory.md)" \
            if self.memory in ("full", "checkpoint") else ""

    def forward(self, x: Tensor, stage: str = "test") -> Tensor:
        """[N, ...] images -> [N, K] time-averaged output."""
        return self.model(self.encoder(x, generator=self.generator(stage))).mean(0)

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        """The loss of the time-averaged output out [N, K] for labels y [N] (loss tet: its cross-entropy)."""
        if self.loss_name == "mse":
            return F.mse_loss(out, F.one_hot(y, self.num_classes).to(out.dtype))
        return F.cross_entropy(out * self.logit_scale, y)

    def sequence_loss(self, out_seq: Tensor, y: Tensor) -> Tensor:
        """The training loss of the model's output out_seq [T, N, K]: `loss` of its average, or TET's."""
        if self.loss_name != "tet":
            return self.loss(out_seq.mean(0), y)
        per_step = F.cross_entropy((out_seq * self.logit_scale).flatten(0, 1), y.repeat(out_seq.shape[0]))
        regular = F.mse_loss(out_seq, torch.full_like(out_seq, self.tet_means))
        return (1 - self.tet_lambda) * per_step + self.tet_lambda * regular

    def unused_keys(self) -> set[str]:
        return set() if self.memory in ("checkpoint", "tbptt") else {"memory_steps"}  # online: k = 1

    def train_forward(self, x_seq: Tensor, y: Tensor, backward: Callable[[Tensor], None]) -> tuple[Tensor, Tensor]:
        """(out_seq [T, N, K], loss) of one training batch x_seq [T, N, ...] in the memory mode. tbptt and
        online have called `backward` on each window's loss already (both come back detached); full and
        checkpoint leave the backward of `loss` to the caller."""
        k = segment_length(self.memory, self.memory_steps, x_seq.shape[0])
        if self.windowed:
            return train_windows(self.model, x_seq, k, lambda out_w: self.sequence_loss(out_w, y), backward)
        out_seq = run_checkpointed(self.model, x_seq, k) if self.memory == "checkpoint" else self.model(x_seq)
        return out_seq, self.sequence_loss(out_seq, y)

    def _shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        x_seq = self.encoder(x, generator=self.generator(stage))
        if stage == "train":
            out_seq, loss = self.train_forward(x_seq, y, self.manual_backward)
        else:
            out_seq = self.model(x_seq)
            loss = self.sequence_loss(out_seq, y)
        self.log_step(stage, out_seq.mean(0), loss, y)
        return loss

    def log_step(self, stage: str, out: Tensor, loss: Tensor, y: Tensor) -> None:
        """Log `stage`'s loss and accuracy of the time-averaged output out [N, K] (and count its samples)."""
        acc = self.acc[stage + "_"]
        acc(out, y)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self.log(f"{stage}/acc", acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        if self._monitor is not None:
            self._monitor.add_samples(len(y))

    def training_step(self, batch, batch_idx):
        if self.automatic_optimization:
            return self._shared_step(batch, "train")
        opt = self.optimizers()  # tbptt, online: a backward per window, one optimizer step per batch
        opt.zero_grad()
        loss = self._shared_step(batch, "train")
        opt.step()
        return loss

    def on_train_epoch_end(self) -> None:
        if not self.automatic_optimization and (sched := self.lr_schedulers()) is not None:
            sched.step()  # Lightning steps epoch-wise schedulers only under automatic optimization

    def validation_step(self, batch, batch_idx):
        self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._shared_step(batch, "test")

    def configure_optimizers(self):
        return configure(self.optimizer_factory, self.scheduler_factory, self.parameters())
