"""What a datamodule may offer the experiment beyond Lightning's LightningDataModule, declared once.

snnexp's datamodules derive from `snnexp.data.datamodule.SplitDataModule` (splits, limits,
loaders). Every datamodule has `in_shape` (one sample, without time and batch) and `num_classes`,
from which the model is built, and `batch_size` (the memory estimate before training reads it).
Optional, declared by the Protocols below and checked with isinstance:
- `use_encoder(encoder) -> step`: the datamodule takes the encoder first. It may convert the
  whole dataset with it (event emulation, cached) and hands back what the learner applies per
  batch (e.g. only turning frames time-first); `in_shape` then follows the conversion.
- `extra_plots(run_dir) -> [png paths]`: plots of the data (event frames and rasters).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class UsesEncoder(Protocol):
    def use_encoder(self, encoder: Any) -> Any:
        """Take the run's encoder; return the per-batch step the learner applies."""


@runtime_checkable
class MakesPlots(Protocol):
    def extra_plots(self, run_dir: Path) -> list[Path]:
        """Save PNGs under run_dir/plots and return their paths."""
