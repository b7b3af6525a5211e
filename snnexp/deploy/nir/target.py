"""deploy=nir: train on the CPU, export the float model as a NIR graph, run it in every installed NIR simulator."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Literal, Sequence

import nir
import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from snnexp.deploy.base import Required
from snnexp.deploy.cpu import CPUTarget
from snnexp.deploy.nir.export import AVG_POOLS, check_exportable, export_nir
from snnexp.deploy.nir.simulators import SIMULATORS, PeerRefusal, installed, simulate
from snnexp.errors import check

log = logging.getLogger(__name__)


class NIRTarget(CPUTarget):
    """Trains on the CPU like deploy=cpu; after training (`after_training`):

    1. exports the trained float model to `<run_dir>/nir/net.nir` (`export_nir`, dt seconds per
       step; avg_pool "sum" writes average pools as sum pools for importers without AvgPool2d);
    2. reads the file back and runs it in each simulator of `simulators` (null: every installed
       one of snnexp, snntorch, norse) on the first `samples` test samples, encoded as the learner
       tests;
    3. compares each simulator's output with the trained model's, sample by sample: results
       `deploy/nir/<sim>/spike_agreement` (fraction of samples whose whole output train is
       identical), `deploy/nir/<sim>/acc`, and `deploy/nir/<sim>/error` (naming the node) when a
       peer cannot run the graph.
    A model NIR cannot express (max-pool, reset by subtraction, ...) is refused before training.
    Residual (add) and recurrent networks export as graphs (`snnexp.deploy.nir.export`).
    """

    requires = {"neuron.reset": Required("hard", "every NIR neuron resets to v_reset (no reset by subtraction)")}

    def __init__(self, num_threads: int | Literal["auto"] | None = "auto", samples: int = 100, dt: float = 1e-4,
                 avg_pool: str = "avg", simulators: Sequence[str] | None = None):
        super().__init__(num_threads)
        check(int(samples) >= 1, "deploy.samples", samples, "must be >= 1 test samples")
        check(float(dt) > 0, "deploy.dt", dt, "must be > 0 seconds per step")
        check(avg_pool in AVG_POOLS, "deploy.avg_pool", avg_pool, f"choose one of {list(AVG_POOLS)}")
        unknown = [s for s in simulators or () if s not in SIMULATORS]
        check(not unknown, "deploy.simulators", unknown, f"choose from {list(SIMULATORS)} (or null: all installed)")
        missing = [s for s in simulators or () if s not in installed()]
        check(not missing, "deploy.simulators", missing, 'are not installed: pip install -e ".[nir]"')
        self.samples, self.dt, self.avg_pool = int(samples), float(dt), avg_pool
        self.simulators = list(simulators) if simulators is not None else installed()

    def prepare_model(self, model: nn.Module) -> None:
        """Before training: refuse a layer NIR cannot express (names the layer and the fix)."""
        check_exportable(model, avg_pool=self.avg_pool)

    def check_learner(self, learner: pl.LightningModule, datamodule: pl.LightningDataModule) -> None:
        """Before training: the refusals that need the input shape too (e.g. unequal adaptive pools)."""
        super().check_learner(learner, datamodule)
        check_exportable(learner.model, tuple(datamodule.in_shape), self.avg_pool)

    def after_training(self, learner: pl.LightningModule, datamodule: pl.LightningDataModule,
                       run_dir: Path) -> dict[str, Any]:
        model = learner.model.cpu().eval()
        x_seq, y = encoded_test_samples(learner, datamodule, self.samples)
        path = run_dir / "nir" / "net.nir"
        export_nir(model, tuple(datamodule.in_shape), path, self.dt, self.avg_pool)
        graph = nir.read(str(path))  # what a user of the file gets
        with torch.no_grad():
            reference = model(x_seq)
        results: dict[str, Any] = {"deploy/nir": str(path), "deploy/nir/samples_compared": int(len(y)),
                                   "deploy/nir/float/acc": _acc(reference, y)}
        for name in self.simulators:
            key = f"deploy/nir/{name}"
            start = time.perf_counter()
            try:
                out = simulate(name, graph, x_seq, self.dt)
            except PeerRefusal as e:
                log.warning("deploy=nir: %s", e)
                results.update({f"{key}/spike_agreement": None, f"{key}/acc": None, f"{key}/error": str(e)})
                continue
            results.update({f"{key}/spike_agreement": spike_agreement(out, reference), f"{key}/acc": _acc(out, y),
                            f"{key}/samples_per_s": len(y) / (time.perf_counter() - start)})
        return results


def spike_agreement(out_seq: Tensor, reference: Tensor) -> float:
    """Fraction of samples whose output [T, K] equals the reference exactly: [T, N, K] twice -> float."""
    same = (out_seq.to(reference.dtype) == reference).flatten(2).all(-1).all(0)  # [N]
    return same.double().mean().item()


def encoded_test_samples(learner: pl.LightningModule, datamodule: pl.LightningDataModule,
                         samples: int) -> tuple[Tensor, Tensor]:
    """The first `samples` test samples, encoded as the learner tests: ([T, N, ...], [N]) on the CPU."""
    xs, ys, n = [], [], 0
    generator = learner.generator("test")
    for x, y in datamodule.test_dataloader():
        with torch.no_grad():
            xs.append(learner.encoder(x.to(learner.device), generator=generator).cpu())
        ys.append(y)
        n += len(y)
        if n >= samples:
            break
    return torch.cat(xs, 1)[:, :samples], torch.cat(ys)[:samples]


def _acc(out_seq: Tensor, y: Tensor) -> float:
    return (out_seq.sum(0).argmax(-1).cpu() == y.cpu()).double().mean().item()
