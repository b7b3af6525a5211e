"""The one LightningDataModule base: the train/val split, the limits, the DataLoaders and their checks.

Every dataset (still images, emulated or recorded events) derives from `SplitDataModule`, so these
rules hold everywhere alike:
- val_fraction in [0, 1) of the training pool is held out for validation, drawn from `seed`;
  0 means no validation split (every training sample trains), and limit_val then does nothing;
- limit_train, limit_val, limit_test keep the first n samples of their split (for quick runs);
- the loaders shuffle the training split only; pin_memory null = on when CUDA is available;
  workers persist between epochs.
A subclass keeps what is its own: reading its files and converting them (`make_splits`), using
`split_index` and `limited` to pick the samples.
"""
from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset

from snnexp.data.loaders import loader, pin
from snnexp.data.splits import random_splits, stratified_splits
from snnexp.errors import check

SPLITS = ("train", "val", "test")


class SplitDataModule(pl.LightningDataModule):
    """Splits, limits and loaders from the keys every dataset has (module docstring).

    The model reads `in_shape` (one sample, without time and batch) and `num_classes`; the
    memory estimate reads `batch_size`. `stratified` is how validation is drawn from the training
    pool: per class (train_test_split), or a plain random subset (the recorded event sets: the
    recordings a limited run frames are chosen before their labels are read).
    """

    in_shape: tuple[int, ...]
    num_classes: int
    stratified: bool = True

    def __init__(self, batch_size: int = 64, num_workers: int = 0, val_fraction: float = 0.1, seed: int = 0,
                 limit_train: int | None = None, limit_val: int | None = None, limit_test: int | None = None,
                 pin_memory: bool | None = None):
        super().__init__()
        check(int(batch_size) >= 1, "dataset.batch_size", batch_size, "must be >= 1")
        check(int(num_workers) >= 0, "dataset.num_workers", num_workers, "must be >= 0")
        check(0 <= val_fraction < 1, "dataset.val_fraction", val_fraction,
              "must be in [0, 1) (0: train on the whole training set, no validation)")
        limits = {"train": limit_train, "val": limit_val, "test": limit_test}
        for name, limit in limits.items():
            check(limit is None or int(limit) >= 1, f"dataset.limit_{name}", limit, "must be null or >= 1")
        self.batch_size, self.num_workers = int(batch_size), int(num_workers)
        self.val_fraction, self.seed = float(val_fraction), int(seed)
        self.limits = {name: None if limit is None else int(limit) for name, limit in limits.items()}
        self.pin_memory = pin(pin_memory)
        self.splits: dict[str, Dataset] | None = None

    # -- provided by each dataset ------------------------------------------------------------
    def make_splits(self) -> dict[str, Dataset]:
        """Read (and convert) the data; the datasets of "train", "val" and "test", their samples
        picked with `split_index` and `limited`."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------
    def split_index(self, labels: np.ndarray, test_fraction: float | None = None) -> dict[str, np.ndarray]:
        """Indices into a training pool's labels: "train" and "val" (empty with val_fraction=0) from
        `seed`, and "test" when test_fraction holds out a test split (a pool without an official one;
        stratified datasets only)."""
        if self.stratified:
            return stratified_splits(labels, self.val_fraction, test_fraction, self.seed)
        return random_splits(len(labels), self.val_fraction, self.seed)

    def limited(self, index: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The first limit_<split> indices of each split (all without a limit)."""
        return {name: idx[: self.limits[name] or len(idx)] for name, idx in index.items()}

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            self.splits = self.make_splits()

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup()
        return loader(self.splits[split], self.batch_size, shuffle, self.num_workers, self.pin_memory)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def split_sizes(self) -> dict[str, int]:
        self.setup()
        return {name: len(self.splits[name]) for name in SPLITS}
