"""Backpropagation through time with surrogate gradients."""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy

from snnexp.errors import check
from snnexp.learners.base import Learner, configure, plain
from snnexp.learners.evaluation import EncodingAndActivity
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
    ):
        super().__init__(model, encoder, seed)
        check(loss in LOSSES, "learner.loss", loss, f"choose one of {list(LOSSES)}")
        check(0 <= float(tet_lambda) <= 1, "learner.tet_lambda", tet_lambda, "must be in [0, 1]")
        # Plain values only: checkpoints must load with torch.load(weights_only=True) (resume).
        self.save_hyperparameters(plain(dict(num_classes=int(num_classes), loss=loss, seed=int(seed),
                                             logit_scale=float(logit_scale), tet_lambda=float(tet_lambda),
                                             tet_means=float(tet_means))), logger=False)
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
        return T  # every step's activations wait for the backward

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

    def _shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        out_seq = self.model(self.encoder(x, generator=self.generator(stage)))
        out = out_seq.mean(0)
        loss = self.sequence_loss(out_seq, y)
        acc = self.acc[stage + "_"]
        acc(out, y)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self.log(f"{stage}/acc", acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        if self._monitor is not None:
            self._monitor.add_samples(len(y))
        return loss

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._shared_step(batch, "test")

    def configure_optimizers(self):
        return configure(self.optimizer_factory, self.scheduler_factory, self.parameters())
