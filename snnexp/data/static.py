"""Datamodules for still images held in memory: deterministic splits, plain loaders."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from snnexp.data.cache import FrameDataset, cache_root, cached_array, code_version, fingerprint
from snnexp.data.files import locate
from snnexp.data.loaders import conversion_device, loader, pin
from snnexp.data.splits import stratified_prefix, stratified_splits
from snnexp.encoding.frames import TimeFirst
from snnexp.errors import ConfigError, check


class StaticImageDataModule(pl.LightningDataModule):
    """Images [M, C, H, W] in [0, 1] with integer labels, split train/val/test from `seed`.

    Subclasses implement `load()` -> {"train": (x, y), optionally "test": (x, y)}
    as numpy arrays. Without an official test set, `test_fraction` of the data
    is held out (stratified); `val_fraction` of the training part is held out
    for validation (stratified). `limit_*` keep the first n samples of a split
    (for quick runs). `normalize` standardises each channel with the training
    part's mean and std (for direct input; rate codes want intensities in [0, 1]).
    The model reads `in_shape` and `num_classes` from here.

    An encoder that converts whole datasets (`converts = "images"`: event-camera emulation; snnexp.encoding.base) is
    handed over by `use_encoder`. Each pool of images (the official train and test sets, or all
    images without an official test set) is then converted once, independently of the seed, on
    `convert_device` (null: CUDA when available), and cached in `cache_dir` (snnexp.data.cache);
    the seed's splits pick rows of it. With every limit of a pool's splits set, only the
    smallest prefix of the pool those limits need is converted (snnexp.data.splits), and the
    splits are drawn from that prefix. Samples become frames [T, 2, H', W'].

    pin_memory: null = on when CUDA is available. Workers persist between epochs.
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
        pin_memory: bool | None = None,
        convert_device: str | None = None,
    ):
        super().__init__()
        check(int(batch_size) >= 1, "dataset.batch_size", batch_size, "must be >= 1")
        check(int(num_workers) >= 0, "dataset.num_workers", num_workers, "must be >= 0")
        check(0 <= val_fraction < 1, "dataset.val_fraction", val_fraction,
              "must be in [0, 1) (0: train on the whole training set, no validation)")
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
        self.pin_memory = pin(pin_memory)
        self.convert_device = convert_device
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
        (kept here, applied in setup) the time-first step for its frames. Refuses, before any
        work, an encoder that needs intensities in [0, 1] with normalize=true."""
        if self.normalize and encoder.input_range is not None:
            lo, hi = encoder.input_range
            name = type(encoder).__name__.lower()
            raise ConfigError(
                f"dataset.normalize=true is invalid with encoding={name}: normalize standardises the pixels to "
                f"zero mean and unit variance (negative values), and {name} needs intensities in [{lo:g}, {hi:g}]. "
                f"Set dataset.normalize=false, or use encoding=direct.")
        check(encoder.converts != "events", "encoding", type(encoder).__name__,
              f"{type(self).__name__} holds still images: choose an image encoding (e.g. saccade)")
        if encoder.converts is None:
            return encoder
        conversion_device(self.convert_device)
        self.converter = encoder
        self.in_shape = tuple(encoder.out_shape(tuple(type(self).in_shape)))  # per-step shape of the frames
        return TimeFirst(int(encoder.T))

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        arrays = self.load()
        official_test = "test" in arrays
        pools = {"train": arrays["train"], **({"test": arrays["test"]} if official_test else {})}
        if self.converter is not None:  # a seed-independent prefix of each pool (all of it without limits)
            pools["train"] = self._prefix(*pools["train"], None if official_test else self.test_fraction)
            if official_test and self.limits["test"] is not None:
                pools["test"] = tuple(a[: self.limits["test"]] for a in pools["test"])
        x, y = pools["train"]
        index = stratified_splits(y, self.val_fraction, None if official_test else self.test_fraction, self.seed)
        source = {"train": "train", "val": "train", "test": "test" if official_test else "train"}
        if official_test:
            index["test"] = np.arange(len(pools["test"][1]))
        whole_train = index["train"]
        index = {name: idx[: self.limits[name] or len(idx)] for name, idx in index.items()}
        if self.converter is not None:
            frames = {pool: self._converted(pool, xs) for pool, (xs, _) in pools.items()}
            self.splits = {name: FrameDataset(frames[source[name]], pools[source[name]][1], idx)
                           for name, idx in index.items()}
        else:
            mean, std = 0.0, 1.0
            if self.normalize:  # zero mean, unit variance per channel, from the training part only
                x_train = x[whole_train]
                mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
                std = x_train.std(axis=(0, 2, 3), keepdims=True) + 1e-8
            self.splits = {
                name: TensorDataset(torch.as_tensor((pools[source[name]][0][idx] - mean) / std, dtype=torch.float32),
                                    torch.as_tensor(pools[source[name]][1][idx], dtype=torch.long))
                for name, idx in index.items()}
        first = pools[source["test"]][0][index["test"][:1]]
        self.first_test_image = torch.as_tensor(first, dtype=torch.float32)  # [1, C, H, W] for extra_plots

    def _prefix(self, x: np.ndarray, y: np.ndarray, test_fraction: float | None) -> tuple[np.ndarray, np.ndarray]:
        n = stratified_prefix(y, self.limits, self.val_fraction, test_fraction)
        return x[:n], y[:n]

    def _converted(self, pool: str, images: np.ndarray) -> np.ndarray:
        """The pool's frames from the disk cache; converted by the dataset-level encoder on a miss."""
        images = np.ascontiguousarray(images, dtype=np.float32)
        device = conversion_device(self.convert_device)
        key = {"converter": repr(self.converter), "code": code_version(self.converter), "images": fingerprint(images),
               "device": device.type}  # CUDA's float32 log and division round differently from the CPU's
        shape = (len(images), int(self.converter.T), *self.converter.out_shape(images.shape[1:]))
        return cached_array(cache_root(self.cache_dir), f"{type(self).__name__.lower()}-{pool}", key,
                            lambda: self.converter.convert(images, device=device), shape=shape)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup()
        return loader(self.splits[split], self.batch_size, shuffle, self.num_workers, self.pin_memory)

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
