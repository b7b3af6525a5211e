"""ANN->SNN conversion (Rueckauer et al. 2017): train the ANN by gradient descent, then convert it.

fit: the ANN counterpart of the experiment's model (its neurons as ReLU, BN allowed) learns from
analog images. After fit: BN folded, data-based normalisation, ReLU -> IF (reset by
subtraction), written into `model` (the SpikingModel the experiment built, so the raster and the
deploy target see the SNN). test: the ANN and, from one run of max(T_list) steps per batch, the
SNN at every T in T_list. The pure steps live in `snnexp.learners.conversion`.
"""
from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset
from torchmetrics.classification import MulticlassAccuracy

from snnexp.encoding.direct import direct_encode
from snnexp.encoding.poisson import poisson_encode
from snnexp.errors import check
from snnexp.learners.base import Learner, configure
from snnexp.learners.conversion import (activation_scales, ann_counterpart, fold_batchnorm, normalise,
                                        predictions_over_time, to_snn)
from snnexp.metrics.activity import ActivityMonitor
from snnexp.models.base import SpikingModel
from snnexp.neurons.base import set_step_mode
from snnexp.neurons.iaf import IF
from snnexp.viz.conversion import plot_acc_vs_T, write_table

log = logging.getLogger(__name__)
INPUTS = ("direct", "poisson")


class ANN2SNN(Learner):
    """Trains `ann` (the model's ANN counterpart), converts it into `model`, tests both.

    T_list: SNN time steps to evaluate. input "direct": the analog image is the input current at
    every step; "poisson": P(spike per step) = pixel intensity. percentile: normalisation
    percentile of positive activations (100 = max-norm, null = no normalisation). norm_samples:
    training samples used for it. max_pool "spiking": the ANN keeps the model's max-pools, the
    SNN gets SpikingMaxPool2d; "avg": the ANN trains with average pooling instead (linear, so
    exact in the SNN). bias=False: the ANN trains without biases (targets without them), so the
    SNN has none. neuron: the conversion neuron factory (IF with reset by subtraction). `encoder`
    (the `encoding` group) is not used. Logs train/val ANN loss and accuracy,
    ann/test/{loss,acc}, snn/test/acc/T<T> and test/acc (the SNN at the largest T), and the SNN's
    firing rates and SynOps per sample (test/rate/*, test/synops) at the largest T.
    """

    name = "ann2snn"
    uses_encoding = False  # learner.input feeds the SNN; the ANN trains on the images themselves

    def __init__(
        self,
        model: SpikingModel,
        encoder: Any,
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        neuron: Callable[[], nn.Module] | None = None,
        T_list: Sequence[int] = (8, 16, 32, 64, 128, 256),
        input: str = "direct",
        percentile: float | None = 99.9,
        norm_samples: int = 1000,
        max_pool: str = "spiking",
        bias: bool = True,
        seed: int = 0,
    ):
        super().__init__(model, encoder, seed)
        check(isinstance(getattr(model, "net", None), nn.Sequential), "model", type(model).__name__,
              "ann2snn converts a SpikingModel (layers in .net)")
        T_list = sorted({int(t) for t in T_list})
        check(len(T_list) > 0 and T_list[0] >= 1, "learner.T_list", T_list, "must list time steps >= 1")
        check(input in INPUTS, "learner.input", input, f"choose one of {list(INPUTS)}")
        check(percentile is None or 0 < float(percentile) <= 100, "learner.percentile", percentile,
              "must be in (0, 100] (100 = max-norm) or null")
        check(int(norm_samples) >= 1, "learner.norm_samples", norm_samples, "must be >= 1")
        # Plain values only: checkpoints must load with torch.load(weights_only=True) (resume).
        self.save_hyperparameters(dict(num_classes=int(num_classes), T_list=T_list, input=input, percentile=percentile,
                                       norm_samples=int(norm_samples), max_pool=max_pool, bias=bool(bias),
                                       seed=int(seed)), logger=False)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.neuron = neuron if neuron is not None else functools.partial(IF, reset="subtract")
        self.ann = ann_counterpart(model.net, max_pool=max_pool, bias=bool(bias))
        self.readout = model.readout
        self.T_list = T_list
        self.input = input
        self.percentile = None if percentile is None else float(percentile)
        self.norm_samples = int(norm_samples)
        self.bias = bool(bias)
        self.num_classes = int(num_classes)
        # Replaces the experiment's encoder: the ANN learns from analog images, this feeds the SNN.
        self.encoder = functools.partial(self.encode, T=T_list[-1])
        acc = functools.partial(MulticlassAccuracy, self.num_classes, average="micro")
        self.acc = nn.ModuleDict({s: acc() for s in ("train_", "val_", "ann_test_")})
        self.snn_acc = nn.ModuleDict({f"T{t}": acc() for t in T_list})
        self.scales: dict[int, float] = {}
        self.converted = False
        self.results: dict[str, Any] = {}
        self._monitor: ActivityMonitor | None = None
        self._eval_s = 0.0

    # -- the SNN's input -------------------------------------------------------------------
    def encode(self, x: Tensor, T: int, generator: torch.Generator | None = None) -> Tensor:
        """[N, ...] images in [0, 1] -> [T, N, ...] SNN input (learner.input)."""
        if self.input == "direct":
            return direct_encode(x, T)
        return poisson_encode(x, T, 1.0, generator)

    # -- the ANN: plain supervised training on analog images --------------------------------
    def forward(self, x: Tensor, stage: str = "test") -> Tensor:
        """[N, ...] images -> [N, K] ANN logits (during fit the ANN is what trains)."""
        return self.ann(x)

    def _ann_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        logits = self.ann(x)
        loss = F.cross_entropy(logits, y)
        acc = self.acc[stage.replace("/", "_") + "_"]
        acc(logits, y)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        self.log(f"{stage}/acc", acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def training_step(self, batch, batch_idx):
        return self._ann_step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._ann_step(batch, "val")

    def configure_optimizers(self):
        return configure(self.optimizer_factory, self.scheduler_factory, self.ann.parameters())

    # -- conversion -------------------------------------------------------------------------
    def restored(self, datamodule: pl.LightningDataModule) -> None:
        """The checkpoint holds the trained ANN; the SNN is its conversion, made again (deterministic:
        the normalisation samples are drawn with `seed`)."""
        datamodule.setup("fit")
        self.convert(datamodule.train_dataloader())

    def on_fit_end(self) -> None:
        self.convert(self.trainer.datamodule.train_dataloader())

    @torch.no_grad()
    def convert(self, loader: Any) -> None:
        """Fold BN, normalise on `norm_samples` training images, swap ReLU for IF; the SNN goes into `model.net`."""
        t0 = time.perf_counter()
        self.ann.eval()
        folded = fold_batchnorm(self.ann)
        spiking_out = self.readout == "spikes"
        if self.percentile is None:
            normalised = folded
        else:
            self.scales = activation_scales(folded, self._norm_batches(loader), self.percentile)
            normalised = normalise(folded, self.scales, output=spiking_out)
        self.model.net = to_snn(normalised, self.neuron, self.readout).to(self.device)
        self.model.step_mode = "s"  # the whole net per step: cache-friendly, and the prefix of every T
        set_step_mode(self.model.net, "s")
        self.model.eval()
        self.converted = True
        self.results["conversion/s"] = time.perf_counter() - t0
        log.info("converted: scales %s", self.scales)

    def _norm_batches(self, loader: DataLoader):
        """`norm_samples` training inputs drawn with a generator seeded by `seed` (not the global RNG)."""
        dataset = loader.dataset
        index = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(self.seed))
        subset = Subset(dataset, index[: self.norm_samples].tolist())
        for x, _ in DataLoader(subset, batch_size=loader.batch_size or 64, collate_fn=loader.collate_fn):
            yield x.to(self.device)

    def deployed_model(self) -> SpikingModel:
        """The SNN that `convert` will make, from the untrained ANN: the same layers and neurons (the
        scales come later), so a deploy target can refuse it before training."""
        return SpikingModel(list(to_snn(fold_batchnorm(self.ann), self.neuron, self.readout)), step_mode="s",
                            readout=self.readout)

    # -- test: the ANN, and the SNN at every T from one run ----------------------------------
    def on_test_start(self) -> None:
        if not self.converted:
            self.convert(self.trainer.datamodule.train_dataloader())

    def on_test_epoch_start(self) -> None:
        self.reseed_evaluation()  # the same Poisson input every test
        self._monitor = ActivityMonitor(self.model).__enter__()
        self._eval_s = 0.0

    def test_step(self, batch, batch_idx):
        x, y = batch
        self._ann_step(batch, "ann/test")
        t0 = time.perf_counter()
        x_seq = self.encode(x, self.T_list[-1], self.generator("test"))
        preds = predictions_over_time(self.model, x_seq)  # [T_max, N]
        self._eval_s += time.perf_counter() - t0
        for t in self.T_list:
            self.snn_acc[f"T{t}"].update(preds[t - 1], y)
        self._monitor.add_samples(len(y))

    def on_test_epoch_end(self) -> None:
        accs = {t: float(self.snn_acc[f"T{t}"].compute()) for t in self.T_list}
        for t, value in accs.items():
            self.log(f"snn/test/acc/T{t}", value)
            self.snn_acc[f"T{t}"].reset()
        self.log("test/acc", accs[self.T_list[-1]])
        for key, value in self._monitor.compute().items():
            self.log(f"test/{key}", value)
        self._monitor.__exit__()
        self._monitor = None
        self.results["snn/test/acc"] = accs
        self.results["snn/test/eval_s"] = self._eval_s

    # -- what the experiment adds to results.json and plots ----------------------------------
    def extra_results(self, run_dir: Path) -> dict[str, Any]:
        """Scales, timings, and the markdown table run_dir/conversion.md."""
        ann_acc = float(self.trainer.callback_metrics["ann/test/acc"])
        table = write_table(ann_acc, self.results["snn/test/acc"], run_dir / "conversion.md", self._settings())
        return {"conversion/scales": [self.scales[i] for i in sorted(self.scales)],
                "conversion/s": self.results.get("conversion/s"),
                "conversion/bias": self.bias,
                "conversion/table": str(table),
                "snn/test/eval_s": self.results["snn/test/eval_s"]}

    def extra_plots(self, run_dir: Path) -> list[Path]:
        ann_acc = float(self.trainer.callback_metrics["ann/test/acc"])
        return [plot_acc_vs_T(ann_acc, self.results["snn/test/acc"], run_dir / "plots" / "acc_vs_T.png",
                              title=self._settings())]

    def _settings(self) -> str:
        norm = "none" if self.percentile is None else f"p{self.percentile:g}"
        return (f"input={self.input}, norm={norm}, max_pool={self.hparams.max_pool}, "
                f"bias={self.bias}, readout={self.readout}")
