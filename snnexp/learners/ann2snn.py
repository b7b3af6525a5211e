"""ANN->SNN conversion: train the ANN by gradient descent, then convert it (learner.method).

- rate (Rueckauer et al. 2017): the ANN counterpart of the experiment's model (its neurons as
  ReLU, BN allowed) learns from analog images; after fit: BN folded, data-based normalisation,
  ReLU -> IF (reset by subtraction). Needs hundreds of steps.
- qcfs (Bu et al. 2022, `snnexp.learners.qcfs`): the ANN trains with the QCFS activation
  (learner.levels L, a threshold learnt per layer); conversion maps each threshold to the IF
  threshold and starts every IF neuron at half of it. Close to its ANN at T ~ L.
- calibrate (Li et al. 2021, `snnexp.learners.calibration`): the rate or QCFS conversion
  (learner.base), then layer-wise bias (light) or weight-and-bias (advanced) calibration on
  learner.calib_samples training images, once for every T in T_list.

Residual networks (`Residual(body, shortcut, "add")` then a neuron: model=resnet) convert with
rate and qcfs: their shortcuts carry the block input's spikes, scaled into a current on the sum's
scale (`snnexp.learners.conversion`). Calibration, SEW's and/iand connections and recurrent layers
are refused before training, with the reason.

The SNN is written into `model` (the SpikingModel the experiment built, so the raster and the
deploy target see it; for calibrate, the one calibrated for the largest T). test: the ANN and
the SNN at every T in T_list, with SynOps per sample at each T, from one run of max(T_list)
steps per batch (calibrate: each calibrated SNN at its own T, and the uncalibrated one at all).
The pure steps live in `snnexp.learners.conversion`.
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
from snnexp.learners import qcfs
from snnexp.learners.base import Learner, configure
from snnexp.learners.calibration import MODES as CALIBRATIONS
from snnexp.learners.calibration import calibrate, mean_errors
from snnexp.learners.calibration import chain as calibration_chain
from snnexp.learners.conversion import (activation_scales, ann_counterpart, fold_batchnorm, key_order, normalise,
                                        to_snn)
from snnexp.learners.over_time import OverTime
from snnexp.models.base import SpikingModel
from snnexp.network import Layered
from snnexp.neurons.base import set_step_mode
from snnexp.neurons.iaf import IF
from snnexp.viz.conversion import plot_acc_vs_T, write_table

log = logging.getLogger(__name__)
INPUTS = ("direct", "poisson")
METHODS = ("rate", "qcfs", "calibrate")
BASES = ("rate", "qcfs")


class ANN2SNN(Learner):
    """Trains `ann` (the model's ANN counterpart), converts it into `model`, tests both.

    method: rate | qcfs | calibrate (module docstring). T_list: SNN time steps to evaluate.
    input "direct": the analog image is the input current at every step; "poisson": P(spike per
    step) = pixel intensity. percentile: normalisation percentile of positive activations (100 =
    max-norm, null = no normalisation; with QCFS it only scales a spiking readout). norm_samples:
    training samples used for it. max_pool "spiking": the ANN keeps the model's max-pools, the SNN
    gets SpikingMaxPool2d; "avg": the ANN trains with average pooling instead (linear, so exact in
    the SNN); null: avg for QCFS (see `snnexp.learners.qcfs`), spiking otherwise. bias=False: no
    biases anywhere (targets without them). levels, qcfs_threshold: QCFS's L and initial lambda.
    base, calibration, calib_samples, calib_iters, calib_lr: what calibrate converts, light or
    advanced, on how many training images, and the weight fit's Adam steps and learning rate.
    reference: a line for conversion.md (a preset's paper result); none when null. neuron: the
    conversion neuron factory (IF, reset by subtraction). `encoder` (the `encoding` group) is not
    used. Logs train/val ANN loss and accuracy, ann/test/{loss,acc}, snn/test/acc/T<T>,
    snn/test/synops/T<T> (calibrate also base/test/...), test/acc (the SNN at the largest T), and
    the SNN's firing rates and SynOps per sample at the largest T (test/rate/*, test/synops).
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
        scheduler: Callable[..., Any] | None = None,
        neuron: Callable[..., nn.Module] | None = None,
        method: str = "rate",
        T_list: Sequence[int] = (8, 16, 32, 64, 128, 256),
        input: str = "direct",
        percentile: float | None = 99.9,
        norm_samples: int = 1000,
        max_pool: str | None = None,
        bias: bool = True,
        levels: int = 8,
        qcfs_threshold: float = 4.0,
        base: str = "rate",
        calibration: str = "light",
        calib_samples: int = 512,
        calib_iters: int = 300,
        calib_lr: float = 1e-3,
        reference: str | None = None,
        seed: int = 0,
    ):
        super().__init__(model, encoder, seed)
        check(isinstance(model, Layered), "model", type(model).__name__,
              "ann2snn converts a SpikingModel (layers in .net)")
        check(method in METHODS, "learner.method", method, f"choose one of {list(METHODS)}")
        T_list = sorted({int(t) for t in T_list})
        check(len(T_list) > 0 and T_list[0] >= 1, "learner.T_list", T_list, "must list time steps >= 1")
        check(input in INPUTS, "learner.input", input, f"choose one of {list(INPUTS)}")
        check(percentile is None or 0 < float(percentile) <= 100, "learner.percentile", percentile,
              "must be in (0, 100] (100 = max-norm) or null")
        check(int(norm_samples) >= 1, "learner.norm_samples", norm_samples, "must be >= 1")
        check(base in BASES, "learner.base", base, f"choose one of {list(BASES)}")
        check(calibration in CALIBRATIONS, "learner.calibration", calibration, f"choose one of {list(CALIBRATIONS)}")
        check(int(calib_samples) >= 1, "learner.calib_samples", calib_samples, "must be >= 1")
        check(int(calib_iters) >= 0, "learner.calib_iters", calib_iters, "must be >= 0 Adam steps")
        check(float(calib_lr) > 0, "learner.calib_lr", calib_lr, "must be > 0")
        check(method != "calibrate" or bool(bias), "learner.bias", bias,
              "calibration corrects biases: use learner.bias=true with learner.method=calibrate")
        self.conversion = "qcfs" if method == "qcfs" or (method == "calibrate" and base == "qcfs") else "rate"
        if max_pool is None:
            max_pool = "avg" if self.conversion == "qcfs" else "spiking"
        # Plain values only: checkpoints must load with torch.load(weights_only=True) (resume).
        self.save_hyperparameters(dict(
            num_classes=int(num_classes), method=method, T_list=T_list, input=input, percentile=percentile,
            norm_samples=int(norm_samples), max_pool=max_pool, bias=bool(bias), levels=int(levels),
            qcfs_threshold=float(qcfs_threshold), base=base, calibration=calibration,
            calib_samples=int(calib_samples), calib_iters=int(calib_iters), calib_lr=float(calib_lr),
            reference=reference, seed=int(seed)), logger=False)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.neuron = neuron if neuron is not None else functools.partial(IF, reset="subtract")
        if self.conversion == "qcfs":  # the zero-error argument needs IF, reset by subtraction, v(0) = theta/2
            probe = self.neuron()
            check(isinstance(probe, IF) and probe.reset_mode == "subtract", "learner.neuron", type(probe).__name__,
                  "QCFS converts to IF neurons with reset: subtract (their membrane starts at threshold/2)")
        ann = ann_counterpart(model.net, max_pool=max_pool, bias=bool(bias))
        self.ann = qcfs.with_qcfs(ann, int(levels), float(qcfs_threshold)) if self.conversion == "qcfs" else ann
        if method == "calibrate":
            calibration_chain(self.ann)  # refuses a residual network before training, with the reason
        self.method = method
        self.readout = model.readout
        self.T_list = T_list
        self.input = input
        self.percentile = None if percentile is None else float(percentile)
        self.norm_samples = int(norm_samples)
        self.bias = bool(bias)
        self.levels = int(levels)
        self.calibration = calibration
        self.reference = reference
        self.num_classes = int(num_classes)
        # Replaces the experiment's encoder: the ANN learns from analog images, this feeds the SNN.
        self.encoder = functools.partial(self.encode, T=T_list[-1])
        acc = functools.partial(MulticlassAccuracy, self.num_classes, average="micro")
        self.acc = nn.ModuleDict({s: acc() for s in ("train_", "val_", "ann_test_")})
        self.scales: dict[int | str, float] = {}  # conversion.Scales: keys are layer paths in the folded ANN
        self.uncalibrated: nn.Sequential | None = None  # calibrate: the base conversion's SNN
        self.calibrated: dict[int, nn.Sequential] = {}  # calibrate: T -> the SNN calibrated for T
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
        """Fold BN, normalise, swap the activations for IF (and calibrate); the SNN goes into `model.net`."""
        t0 = time.perf_counter()
        with torch.inference_mode(False), torch.no_grad():  # calibration fits weights; Lightning may be in inference mode
            self.ann.eval()
            source, reference, neuron = self._normalised(fold_batchnorm(self.ann), loader)
            build = functools.partial(self._snn, neuron=neuron)
            snn = build(source)
            if self.method == "calibrate":
                self.uncalibrated = snn
                snn = self._calibrate(source, reference, build, loader)
        self.model.net = snn
        self.model.step_mode = "s"  # the whole net per step: cache-friendly, and the prefix of every T
        self.model.eval()
        self.converted = True
        self.results["conversion/s"] = time.perf_counter() - t0
        log.info("converted (%s): scales %s", self.method, self.scales)

    def _threshold(self) -> float:
        return float(getattr(self.neuron(), "v_threshold", 1.0))

    def _normalised(self, folded: nn.Sequential, loader: Any) -> tuple[nn.Sequential, nn.Sequential, Callable]:
        """(the normalised ReLU network to_snn converts, the ANN its SNN approximates, the neuron factory)."""
        spiking_out = self.readout == "spikes"
        if self.conversion == "qcfs":
            relu, lambdas = qcfs.as_relu(folded)
            data = {}  # percentiles only scale a spiking readout: QCFS's lambdas are the hidden thresholds
            if self.percentile is not None and spiking_out:
                data = activation_scales(folded, self._batches(loader, self.norm_samples), self.percentile)
            self.scales = {**data, **lambdas}
            source = normalise(relu, self.scales, output=spiking_out)
            neuron = functools.partial(self.neuron, v_init=self._threshold() / 2)
            return source, qcfs.as_qcfs(source, self.levels), neuron
        if self.percentile is None:
            return folded, folded, self.neuron
        self.scales = activation_scales(folded, self._batches(loader, self.norm_samples), self.percentile)
        source = normalise(folded, self.scales, output=spiking_out)
        return source, source, self.neuron

    def _snn(self, source: nn.Sequential, neuron: Callable) -> nn.Sequential:
        net = to_snn(source, neuron, self.readout).to(self.device)
        set_step_mode(net, "s")
        return net.eval()

    def _calibrate(self, source: nn.Sequential, reference: nn.Sequential, build: Callable, loader: Any
                   ) -> nn.Sequential:
        """One calibrated SNN per T in T_list (self.calibrated); returns the one for the largest T."""
        x = torch.cat(list(self._batches(loader, self.hparams.calib_samples)))
        if self.input == "direct":
            x_seq = self.encode(x, self.T_list[-1])  # [T_max, N, ...], a view
        else:  # Poisson spikes kept as bool: T_max x N images as float would take GBs
            gen = self.generator("calibration")
            x_seq = torch.cat([self.encode(xb, self.T_list[-1], gen).bool() for xb in x.split(256)], dim=1)
        errors = {}
        for T in self.T_list:
            calibrated = calibrate(
                source, reference, build, x, x_seq[:T], mode=self.calibration,
                iters=self.hparams.calib_iters, lr=self.hparams.calib_lr, seed=self.seed)
            errors[T] = {"before": mean_errors(source, reference, build, x, x_seq[:T]),
                         "after": mean_errors(calibrated, reference, build, x, x_seq[:T])}
            self.calibrated[T] = build(calibrated)
        self.results["calibration/error"] = errors
        return self.calibrated[self.T_list[-1]]

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
        folded, neuron = fold_batchnorm(self.ann), self.neuron
        if self.conversion == "qcfs":
            folded, _ = qcfs.as_relu(folded)
            neuron = functools.partial(self.neuron, v_init=self._threshold() / 2)
        return SpikingModel(list(to_snn(folded, neuron, self.readout)), step_mode="s", readout=self.readout)

    # -- test: the ANN, and the SNN at every T from one run ----------------------------------
    def on_test_start(self) -> None:
        if not self.converted:
            self.convert(self.trainer.datamodule.train_dataloader())

    def on_test_epoch_start(self) -> None:
        self.reseed_evaluation()  # the same Poisson input every test
        T_max = self.T_list[-1]
        self._evals = {"snn": OverTime(self.model, T_max)}
        if self.method == "calibrate":
            self._evals["base"] = OverTime(self.uncalibrated, T_max)
            self._evals.update({f"T{t}": OverTime(net, t) for t, net in self.calibrated.items() if t < T_max})
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
        if self.method == "calibrate":  # each T from the SNN calibrated for it
            snn.update({t: self._evals[f"T{t}"].compute([t])[t] for t in self.T_list if f"T{t}" in self._evals})
            self._log_curve("base", self._evals["base"].compute(self.T_list))
        self._log_curve("snn", snn)
        self.log("test/acc", snn[self.T_list[-1]][0])
        for key, value in self._evals["snn"].monitor.compute().items():
            self.log(f"test/{key}", value)
        for e in self._evals.values():
            e.__exit__()
        self._evals = {}
        self.results["snn/test/eval_s"] = self._eval_s

    def _log_curve(self, name: str, curve: dict[int, tuple[float, float]]) -> None:
        for t, (acc, synops) in curve.items():
            self.log(f"{name}/test/acc/T{t}", acc)
            self.log(f"{name}/test/synops/T{t}", synops)
        self.results[name] = curve

    # -- what the experiment adds to results.json and plots ----------------------------------
    def extra_results(self, run_dir: Path) -> dict[str, Any]:
        """Scales, thresholds, timings, calibration errors, and the markdown table run_dir/conversion.md."""
        ann_acc = float(self.trainer.callback_metrics["ann/test/acc"])
        table = write_table(ann_acc, self._curves(), run_dir / "conversion.md", self._settings(), self.reference)
        out = {"conversion/method": self.method,
               "conversion/scales": [self.scales[k] for k in sorted(self.scales, key=key_order)],
               "conversion/s": self.results.get("conversion/s"),
               "conversion/bias": self.bias,
               "conversion/table": str(table),
               "snn/test/eval_s": self.results["snn/test/eval_s"]}
        if self.conversion == "qcfs":
            out["conversion/qcfs_thresholds"] = list(qcfs.thresholds(self.ann).values())
        if "calibration/error" in self.results:
            out["calibration/error"] = {f"T{t}": e for t, e in self.results["calibration/error"].items()}
        return out

    def extra_plots(self, run_dir: Path) -> list[Path]:
        ann_acc = float(self.trainer.callback_metrics["ann/test/acc"])
        return [plot_acc_vs_T(ann_acc, self._curves(), run_dir / "plots" / "acc_vs_T.png", title=self._settings())]

    def _curves(self) -> dict[str, dict[int, tuple[float, float]]]:
        """Label -> {T: (accuracy, SynOps per sample)}, the SNN first."""
        if self.method != "calibrate":
            return {f"SNN ({self.method})": self.results["snn"]}
        base = f"SNN ({self.hparams.base}, uncalibrated)"
        return {f"SNN ({self.hparams.base} + {self.calibration} calibration)": self.results["snn"],
                base: self.results["base"]}

    def _settings(self) -> str:
        norm = "none" if self.percentile is None else f"p{self.percentile:g}"
        extra = f", L={self.levels}" if self.conversion == "qcfs" else ""
        if self.method == "calibrate":
            extra += f", calib_samples={self.hparams.calib_samples}"
        return (f"method={self.method}{extra}, input={self.input}, norm={norm}, max_pool={self.hparams.max_pool}, "
                f"bias={self.bias}, readout={self.readout}")

