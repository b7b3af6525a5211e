"""Datamodules for still images held in memory: deterministic splits, plain loaders."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, Dataset, TensorDataset

from snnexp.data.cache import FrameDataset, cache_root, cached_array, fingerprint
from snnexp.data.files import locate
from snnexp.encoding.frames import TimeFirst
from snnexp.errors import check


class StaticImageDataModule(pl.LightningDataModule):
    """Images [M, C, H, W] in [0, 1] with integer labels, split train/val/test from `seed`.

    Subclasses implement `load()` -> {"train": (x, y), optionally "test": (x, y)}
    as numpy arrays. Without an official test set, `test_fraction` of the data
    is held out (stratified); `val_fraction` of the training part is held out
    for validation (stratified). `limit_*` keep the first n samples of a split
    (for quick runs). `normalize` standardises each channel with the training
    part's mean and std (for direct input; rate codes want intensities in [0, 1]).
    The model reads `in_shape` and `num_classes` from here.

    An encoder that converts whole datasets (`converts_dataset`: event-camera emulation) is
    handed over by `use_encoder`: every split is then converted once, after the limits, and
    cached in `cache_dir` (snnexp.data.cache); samples become frames [T, 2, H', W'].
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
        normalize: bool = False,
        cache_dir: str | None = None,
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
        self.normalize = bool(normalize)
        self.cache_dir = cache_dir
        self.converter = None  # a dataset-level encoder, set by use_encoder
        self.splits: dict[str, Dataset] | None = None

    # -- provided by each dataset ---------------------------------------------------------
    def load(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        raise NotImplementedError

    in_shape: tuple[int, ...]  # (C, H, W) of one image
    num_classes: int

    # -- shared ---------------------------------------------------------------------------
    def use_encoder(self, encoder):
        """What the learner applies per batch: `encoder` itself, or for a dataset-level one
        (kept here, applied in setup) the time-first step for its frames."""
        if not getattr(encoder, "converts_dataset", False):
            return encoder
        check(hasattr(encoder, "convert"), "encoding", type(encoder).__name__,
              f"{type(self).__name__} holds still images: choose an image encoding (e.g. saccade)")
        check(not self.normalize, "dataset.normalize", True, "event emulation needs intensities in [0, 1]")
        self.converter = encoder
        self.in_shape = tuple(encoder.out_shape(tuple(type(self).in_shape)))  # per-step shape of the frames
        return TimeFirst(int(encoder.T))

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
        if self.normalize:  # zero mean, unit variance per channel, from the training part only
            mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
            std = x_train.std(axis=(0, 2, 3), keepdims=True) + 1e-8
            parts = {k: ((xs - mean) / std, ys) for k, (xs, ys) in parts.items()}
        self.splits = {}
        for name, (xs, ys) in parts.items():
            n = self.limits[name] or len(ys)
            if self.converter is not None:
                self.splits[name] = self._converted(name, xs[:n], ys[:n])
                continue
            self.splits[name] = TensorDataset(
                torch.as_tensor(xs[:n], dtype=torch.float32), torch.as_tensor(ys[:n], dtype=torch.long))
        self.first_test_image = torch.as_tensor(parts["test"][0][:1], dtype=torch.float32)  # [1, C, H, W] for extra_plots

    def _converted(self, split: str, images: np.ndarray, labels: np.ndarray) -> FrameDataset:
        """The split's frames from the disk cache; converted by the dataset-level encoder on a miss."""
        images = np.ascontiguousarray(images, dtype=np.float32)
        frames = cached_array(cache_root(self.cache_dir), f"{type(self).__name__.lower()}-{split}",
                              f"{self.converter!r}|{fingerprint(images)}", lambda: self.converter.convert(images))
        return FrameDataset(frames, labels)

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

    def extra_plots(self, run_dir: Path) -> list[Path]:
        """With a dataset-level encoder: test sample 0's events as frames and as a raster."""
        if self.converter is None:
            return []
        from snnexp.viz.events import plot_sample_events

        self.setup()
        x, y = self.splits["test"][0]
        events = self.converter.events(self.first_test_image).to_tonic()[0]
        name = type(self.converter).__name__.lower()
        return plot_sample_events(events, x.numpy(), run_dir / "plots", self.in_shape[-1], f"{name}, test sample 0 (label {y})")

    def split_sizes(self) -> dict[str, int]:
        self.setup()
        return {name: len(ds) for name, ds in self.splits.items()}


class FileImageDataModule(StaticImageDataModule):
    """An image set read from files: found by `snnexp.data.files.locate`, fetched only with download=true.

    Subclasses set `name` (the folder under $SNNEXP_DATA and /usr/share/datasets) and implement
    `has_files(folder)` and `fetch(folder)`; `files_dir()` is the folder that holds the files.
    """

    name: str

    def __init__(self, root: str | None = None, download: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.root = root
        self.download = bool(download)

    def has_files(self, folder: Path) -> bool:
        raise NotImplementedError

    def fetch(self, folder: Path) -> None:
        raise NotImplementedError

    def files_dir(self) -> Path:
        return locate(self.name, self.root, self.has_files, self.download, self.fetch)
