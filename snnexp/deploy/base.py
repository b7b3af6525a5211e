"""A deployment target: where training runs, and what happens to the trained network after."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytorch_lightning as pl
from torch import nn


@dataclass(frozen=True)
class Required:
    """A value of another group's key that a target cannot work without, and why (snnexp.deploy.requires)."""

    value: Any
    why: str


class Target:
    """Base class. `setup` runs first; `prepare_model` may refuse a model before any training, and
    `check_learner` the learner (what it will deploy, and its input); `trainer_kwargs` go to the
    Lightning Trainer; `after_training` returns extra results (e.g. a hardware export and its comparison).

    `requires`: config keys of other groups and the values this target needs, e.g.
    {"model.bias": Required(False, "Loihi's synapses have no bias")}: set in the composed config
    unless the user set that key, and refused when the user set another value (snnexp.deploy.requires)."""

    requires: ClassVar[dict[str, Required]] = {}

    def setup(self) -> None:
        """Process-wide settings, applied before anything is built."""

    def prepare_model(self, model: nn.Module) -> None:
        """Check (or adapt) the built model before training; raise ConfigError if it cannot run here."""

    def check_learner(self, learner: pl.LightningModule, datamodule: pl.LightningDataModule) -> None:
        """Before training: raise ConfigError if what `learner` will hand over after training (its
        `deployed_model()`, fed by its encoder on `datamodule`'s samples) cannot run here."""

    def trainer_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def after_training(self, learner: pl.LightningModule, datamodule: pl.LightningDataModule,
                       run_dir: Path) -> dict[str, Any]:
        return {}
