"""What every learner offers the experiment, declared once: the base class of bptt, stdp, hybrid, ann2snn.

A learner is a LightningModule holding `.model` (a SpikingModel) and `.encoder`. The experiment
uses, besides Lightning's hooks:
- `generator(stage)`: the encoder's explicit torch.Generator (training draws from one stream;
  evaluation from another, re-seeded every evaluation, so it sees the same input spikes each time);
- `extra_results(run_dir) -> dict` merged into results.json after testing, and
  `extra_plots(run_dir) -> [png paths]` (both empty by default);
- `unused_keys()`: keys of its config group this run does not use (the experiment refuses them
  when the user sets them, instead of ignoring them silently).
A model that only some learners can train names them in `SpikingModel.learners`; the check is here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Mapping

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from snnexp.errors import check

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., Any]


class Learner(pl.LightningModule):
    """Base class: the model check, seeded encoder generators and the optional result hooks."""

    name: ClassVar[str]  # the option name in snnexp/conf/learner/ (what SpikingModel.learners lists)

    def __init__(self, model: torch.nn.Module, encoder: Any, seed: int = 0):
        super().__init__()
        accepted = getattr(type(model), "learners", None)
        check(accepted is None or self.name in accepted, "learner", self.name,
              f"model {type(model).__name__} trains with learner={'|'.join(accepted or ())} only")
        self.model = model
        self.encoder = encoder
        self.seed = int(seed)
        self._generators: dict[str, torch.Generator] = {}

    def generator(self, stage: str) -> torch.Generator:
        """The encoder's generator for `stage` ("train", "val", "test"), on the learner's device."""
        key = "train" if stage == "train" else "eval"
        gen = self._generators.get(key)
        if gen is None or gen.device != self.device:
            gen = torch.Generator(device=self.device)
            gen.manual_seed(self.seed if key == "train" else self.seed + 1)
            self._generators[key] = gen
        return gen

    def reseed_evaluation(self) -> None:
        """The next evaluation encodes from the start of its stream again (same spikes every time)."""
        self._generators.pop("eval", None)

    def unused_keys(self) -> set[str]:
        """Keys of `learner.*` that this run ignores (the experiment refuses them when set by the user)."""
        return set()

    def restored(self, datamodule: pl.LightningDataModule) -> None:
        """After a checkpoint was loaded into a fresh learner (snnexp.load): rebuild what a checkpoint
        does not hold. Nothing by default; ann2snn converts its trained ANN again."""

    def extra_results(self, run_dir: Path) -> dict[str, Any]:
        return {}

    def extra_plots(self, run_dir: Path) -> list[Path]:
        return []


def plain(value: Any) -> Any:
    """Hydra containers (DictConfig, ListConfig) as plain dicts and lists; other values unchanged.

    Checkpoints must load with torch.load(weights_only=True) (resume), which refuses omegaconf objects.
    """
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def configure(optimizer: OptimizerFactory, scheduler: SchedulerFactory | None, params: Iterable) -> Any:
    """`configure_optimizers`' answer: the optimizer over `params`, with its epoch-wise scheduler if any."""
    opt = optimizer(params=list(params))
    if scheduler is None:
        return opt
    return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler(opt), "interval": "epoch"}}
