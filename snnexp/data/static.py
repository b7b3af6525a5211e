"""Datamodules for still images held in memory: deterministic splits, plain loaders."""
from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, TensorDataset

from snnexp.errors import check


class StaticImageDataModule(pl.LightningDataModule):
    """Images [M, C, H, W] in [0, 1] with integer labels, split train/val/test from `seed`.

    Subclasses implement `load()` -> {"train": (x, y), optionally "test": (x, y)}
    as numpy arrays. Without an official test set, `test_fraction` of the data
    is held out (stratified); `val_fraction` of the training part is held out
    for validation (stratified). `limit_*` keep the first n samples of a split
    (for quick runs). The model reads `in_shape` and `num_classes` from here.
    """

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = 0,
        limit_train: int | None = None,
        limit_val: int | None = None,
        limit_test: int | None = None,
    ):
        super().__init__()
        check(int(batch_size) >= 1, "dataset.batch_size", batch_size, "must be >= 1")
        check(int(num_workers) >= 0, "dataset.num_workers", num_workers, "must be >= 0")
        check(0 < val_fraction < 1, "dataset.val_fraction", val_fraction, "must be in (0, 1)")
        check(0 < test_fraction < 1, "dataset.test_fraction", test_fraction, "must be in (0, 1)")
        for key, limit in (("limit_train", limit_train), ("limit_val", limit_val), ("limit_test", limit_test)):
            check(limit is None or int(limit) >= 1, f"dataset.{key}", limit, "must be null or >= 1")
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = int(seed)
        self.limits = {"train": limit_train, "val": limit_val, "test": limit_test}
        self.splits: dict[str, TensorDataset] | None = None

    # -- provided by each dataset ---------------------------------------------------------
    def load(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        raise NotImplementedError

    in_shape: tuple[int, ...]  # (C, H, W) of one image
    num_classes: int

    # -- shared ---------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        arrays = self.load()
        x, y = arrays["train"]
        if "test" in arrays:
            x_test, y_test = arrays["test"]
        else:
            x, x_test, y, y_test = train_test_split(
                x, y, test_size=self.test_fraction, stratify=y, random_state=self.seed)
        x_train, x_val, y_train, y_val = train_test_split(
            x, y, test_size=self.val_fraction, stratify=y, random_state=self.seed)
        parts = {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}
        self.splits = {}
        for name, (xs, ys) in parts.items():
            n = self.limits[name] or len(ys)
            self.splits[name] = TensorDataset(
                torch.as_tensor(xs[:n], dtype=torch.float32), torch.as_tensor(ys[:n], dtype=torch.long))

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup()
        return DataLoader(
            self.splits[split], batch_size=self.batch_size, shuffle=shuffle,
            num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def split_sizes(self) -> dict[str, int]:
        self.setup()
        return {name: len(ds) for name, ds in self.splits.items()}
