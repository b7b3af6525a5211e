"""ANN->SNN conversion: train the ANN by gradient descent, then convert it by a method (`learner/method`).

The method (`snnexp.learners.conversion_methods`: rate, qcfs, calibrate, each with its own keys
`learner.method.*`) says what the ANN trains with, how it converts and what follows conversion;
this learner trains, converts and tests whatever the method. The pure steps live in
`snnexp.learners.conversion`.

Residual networks (`Residual(body, shortcut, "add")` then a neuron: model=resnet) convert with
rate and qcfs: their shortcuts carry the block input's spikes, scaled into a current on the sum's
scale (`snnexp.learners.conversion`). Calibration, SEW's and/iand connections and recurrent layers
are refused before training, with the reason.

The SNN is written into `model` (the SpikingModel the experiment built, so the raster and the
deploy target see it; for calibrate, the one calibrated for the largest T). test: the ANN and
the SNN at every T in T_list, with SynOps per sample at each T, from one run of max(T_list)
steps per batch (calibrate: each calibrated SNN at its own T, and the uncalibrated one at all).
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
from snnexp.learners.conversion import activation_scales, ann_counterpart, fold_batchnorm, key_order, to_snn
from snnexp.learners.conversion_methods import ConversionMethod, Curve, DataScales, Inputs
from snnexp.learners.over_time import OverTime
from snnexp.models.base import SpikingModel
from snnexp.network import Layered
from snnexp.neurons.base import set_step_mode
from snnexp.neurons.iaf import IF
from snnexp.viz.conversion import plot_acc_vs_T, write_table

log = logging.getLogger(__name__)
INPUTS = ("direct", "poisson")


class ANN2SNN(Learner):
    """Trains `ann` (the model's ANN counterpart, as `method` shapes it), converts it into `model`, tests both.

    method: a `ConversionMethod` (learner/method=rate|qcfs|calibrate). T_list: SNN time steps to
    evaluate. input "direct": the analog image is the input current at every step; "poisson":
    P(spike per step) = pixel intensity. percentile: normalisation percentile of positive
    activations (100 = max-norm, null = no normalisation; with QCFS it only scales a spiking
    readout). norm_samples: training samples used for it. max_pool "spiking": the ANN keeps the
    model's max-pools, the SNN gets SpikingMaxPool2d; "avg": the ANN trains with average pooling
    instead (linear, so exact in the SNN); null: the method's choice (avg for QCFS, spiking
    otherwise). bias=False: no biases anywhere (targets without them). reference: a line for
    conversion.md (a preset's paper result); none when null. neuron: the conversion neuron factory
    (IF, reset by subtraction). `encoder` (the `encoding` group) is not used. Logs train/val ANN
    loss and accuracy, ann/test/{loss,acc}, snn/test/acc/T<T>, snn/test/synops/T<T> (calibrate also
    base/test/...), test/acc (the SNN at the largest T), and the SNN's firing rates and SynOps per
    sample at the largest T (test/rate/*, test/synops).
    """

    name = "ann2snn"
    unused_groups = {  # learner.input feeds the SNN (the ANN trains on the images themselves); learner.neuron fires
        "encoding": "encodes its input itself (learner.input)",
        "neuron": "converts to its own neuron (learner.neuron: IF with reset by subtraction)",
    }
    streams = {**Learner.streams, "calibration": 2}  # calibration's Poisson input has its own stream

    def __init__(
        self,
        model: SpikingModel,
        encoder: Any,
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        method: ConversionMethod,
        scheduler: Callable[..., Any] | None = None,
        neuron: Callable[..., nn.Module] | None = None,
        T_list: Sequence[int] = (8, 16, 32, 64, 128, 256),
        input: str = "direct",
        percentile: float | None = 99.9,
        norm_samples: int = 1000,
        max_pool: str | None = None,
        bias: bool = True,
        reference: str | None = None,
        seed: int = 0,
    ):
        super().__init__(model, encoder, seed)
        check(isinstance(model, Layered), "model", type(model).__name__,
              "ann2snn converts a SpikingModel (layers in .net)")
        method.validate("learner.method")
        T_list = sorted({int(t) for t in T_list})
        check(len(T_list) > 0 and T_list[0] >= 1, "learner.T_list", T_list, "must list time steps >= 1")
        check(input in INPUTS, "learner.input", input, f"choose one of {list(INPUTS)}")
        check(percentile is None or 0 < float(percentile) <= 100, "learner.percentile", percentile,
              "must be in (0, 100] (100 = max-norm) or null")
        check(int(norm_samples) >= 1, "learner.norm_samples", norm_samples, "must be >= 1")
        if max_pool is None:
            max_pool = method.max_pool
        # Plain values only: checkpoints must load with torch.load(weights_only=True) (resume).
        self.save_hyperparameters(dict(
            num_classes=int(num_classes), method=method.settings(), T_list=T_list, input=input,
            percentile=percentile, norm_samples=int(norm_samples), max_pool=max_pool, bias=bool(bias),
            reference=reference, seed=int(seed)), logger=False)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.method = method
        self.neuron = method.neuron(neuron if neuron is not None else functools.partial(IF, reset="subtract"))
        self.ann = method.trained(ann_counterpart(model.net, max_pool=max_pool, bias=bool(bias)), bool(bias))
        self.readout = model.readout
        self.T_list = T_list
        self.input = input
        self.percentile = None if percentile is None else float(percentile)
        self.norm_samples = int(norm_samples)
        self.bias = bool(bias)
        self.reference = reference
        self.num_classes = int(num_classes)
        # Replaces the experiment's encoder: the ANN learns from analog images, this feeds the SNN.
        self.encoder = functools.partial(self.encode, T=T_list[-1])
        acc = functools.partial(MulticlassAccuracy, self.num_classes, average="micro")
        self.acc = nn.ModuleDict({s: acc() for s in ("train_", "val_", "ann_test_")})
        self.scales: dict[int | str, float] = {}  # conversion.Scales: keys are layer paths in the folded ANN
        self.converted = False
        self.results: dict[str, Any] = {}
        self._evals: dict[str, OverTime] = {}
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
        the normalisation and calibration samples are drawn with `seed`)."""
        datamodule.setup("fit")
        self.convert(datamodule.train_dataloader())

    def on_fit_end(self) -> None:
        self.convert(self.trainer.datamodule.train_dataloader())

    def convert(self, loader: Any) -> None:
        """Fold BN, normalise, swap the activations for IF (the method's steps); the SNN goes into `model.net`."""
        t0 = time.perf_counter()
        with torch.inference_mode(False), torch.no_grad():  # calibration fits weights; Lightning may be in inference mode
            self.ann.eval()
            source, reference, self.scales = self.method.normalised(
                fold_batchnorm(self.ann), self._data_scales(loader), spiking_out=self.readout == "spikes")
            snn = self.method.converted(source, reference, self._snn, self._inputs(loader))
        self.model.net = snn
        self.model.step_mode = "s"  # the whole net per step: cache-friendly, and the prefix of every T
        self.model.eval()
        self.converted = True
        self.results["conversion/s"] = time.perf_counter() - t0
        log.info("converted (%s): scales %s", self.method.name, self.scales)

    def _data_scales(self, loader: DataLoader) -> DataScales | None:
        """The percentiles of a network's activations on norm_samples training inputs (None: no percentile)."""
        if self.percentile is None:
            return None
        return lambda net: activation_scales(net, self._batches(loader, self.norm_samples), self.percentile)

    def _inputs(self, loader: DataLoader) -> Inputs:
        return Inputs(lambda n: torch.cat(list(self._batches(loader, n))), self._compact_input, self.T_list, self.seed)

    def _compact_input(self, x: Tensor) -> Tensor:
        """[N, ...] images -> [T_max, N, ...] SNN input, for many images at once."""
        if self.input == "direct":
            return self.encode(x, self.T_list[-1])  # a view
        gen = self.generator("calibration")  # Poisson spikes kept as bool: T_max x N images as float would take GBs
        return torch.cat([self.encode(xb, self.T_list[-1], gen).bool() for xb in x.split(256)], dim=1)

    def _snn(self, source: nn.Sequential) -> nn.Sequential:
        net = to_snn(source, self.neuron, self.readout).to(self.device)
        set_step_mode(net, "s")
        return net.eval()

    def _batches(self, loader: DataLoader, n: int):
        """`n` training inputs drawn with a generator seeded by `seed` (not the global RNG)."""
        dataset = loader.dataset
        index = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(self.seed))
        subset = Subset(dataset, index[:n].tolist())
        for x, _ in DataLoader(subset, batch_size=loader.batch_size or 64, collate_fn=loader.collate_fn):
            yield x.to(self.device)

    def deployed_model(self) -> SpikingModel:
        """The SNN that `convert` will make, from the untrained ANN: the same layers and neurons (the
        scales come later), so a deploy target can refuse it before training."""
        folded = self.method.relu(fold_batchnorm(self.ann))
        return SpikingModel(list(to_snn(folded, self.neuron, self.readout)), step_mode="s", readout=self.readout)

    # -- test: the ANN, and the SNN at every T from one run ----------------------------------
    def on_test_start(self) -> None:
        if not self.converted:
            self.convert(self.trainer.datamodule.train_dataloader())

    def on_test_epoch_start(self) -> None:
        self.reseed_evaluation()  # the same Poisson input every test
        T_max = self.T_list[-1]
        self._evals = {"snn": OverTime(self.model, T_max)}
        for name, (net, steps) in self.method.test_networks(T_max).items():
            self._evals[name] = OverTime(net, steps)
        for e in self._evals.values():
            e.__enter__()
        self._eval_s = 0.0

    def test_step(self, batch, batch_idx):
        x, y = batch
        self._ann_step(batch, "ann/test")
        t0 = time.perf_counter()
        x_seq = self.encode(x, self.T_list[-1], self.generator("test"))
        for e in self._evals.values():
            e.update(x_seq, y)
        self._eval_s += time.perf_counter() - t0

    def on_test_epoch_end(self) -> None:
        snn = self._evals["snn"].compute(self.T_list)
        curves = self.method.curves(snn, lambda name, Ts: self._evals[name].compute(Ts), self.T_list)
        for name, curve in curves.items():
            self._log_curve(name, curve)
        self.log("test/acc", curves["snn"][self.T_list[-1]][0])
        for key, value in self._evals["snn"].monitor.compute().items():
            self.log(f"test/{key}", value)
        for e in self._evals.values():
            e.__exit__()
        self._evals = {}
        self.results["snn/test/eval_s"] = self._eval_s

    def _log_curve(self, name: str, curve: Curve) -> None:
        for t, (acc, synops) in curve.items():
            self.log(f"{name}/test/acc/T{t}", acc)
            self.log(f"{name}/test/synops/T{t}", synops)
        self.results[name] = curve

    # -- what the experiment adds to results.json and plots ----------------------------------
    def extra_results(self, run_dir: Path) -> dict[str, Any]:
        """Scales, timings, the method's results, and the markdown table run_dir/conversion.md."""
        ann_acc = float(self.trainer.callback_metrics["ann/test/acc"])
        table = write_table(ann_acc, self._curves(), run_dir / "conversion.md", self._settings(), self.reference)
        return {"conversion/method": self.method.name,
                "conversion/scales": [self.scales[k] for k in sorted(self.scales, key=key_order)],
                "conversion/s": self.results.get("conversion/s"),
                "conversion/bias": self.bias,
                "conversion/table": str(table),
                "snn/test/eval_s": self.results["snn/test/eval_s"],
                **self.method.results(self.ann)}

    def extra_plots(self, run_dir: Path) -> list[Path]:
        ann_acc = float(self.trainer.callback_metrics["ann/test/acc"])
        return [plot_acc_vs_T(ann_acc, self._curves(), run_dir / "plots" / "acc_vs_T.png", title=self._settings())]

    def _curves(self) -> dict[str, Curve]:
        """Label -> {T: (accuracy, SynOps per sample)}, the SNN first."""
        return {label: self.results[name] for name, label in self.method.labels().items()}

    def _settings(self) -> str:
        norm = "none" if self.percentile is None else f"p{self.percentile:g}"
        return (f"method={self.method.name}{self.method.details()}, input={self.input}, norm={norm}, "
                f"max_pool={self.hparams.max_pool}, bias={self.bias}, readout={self.readout}")
