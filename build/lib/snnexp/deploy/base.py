"""A deployment target: where training runs, and what happens to the trained network after."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl


class Target:
    """Base class. `trainer_kwargs` go to the Lightning Trainer; `after_training`
    returns extra results (e.g. a hardware export and its comparison)."""

    def setup(self) -> None:
        """Process-wide settings, applied before anything is built."""

    def trainer_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def after_training(self, learner: pl.LightningModule, datamodule: pl.LightningDataModule,
                       run_dir: Path) -> dict[str, Any]:
        return {}
