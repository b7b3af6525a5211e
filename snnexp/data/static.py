"""Datamodules for still images held in memory, as images or converted to events (emulation)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from snnexp.data.augment import CropFlip
from snnexp.data.cache import FrameDataset, cache_root, cached_array, code_version, fingerprint
from snnexp.data.datamodule import SplitDataModule
from snnexp.data.files import locate
from snnexp.data.loaders import conversion_device
from snnexp.data.splits import stratified_prefix
from snnexp.encoding.frames import TimeFirst
from snnexp.errors import ConfigError, check


class StaticImageDataModule(SplitDataModule):
    """Images [M, C, H, W] in [0, 1] with integer labels; splits, limits and loaders as every
    datamodule's (snnexp.data.datamodule), validation drawn per class.

    Subclasses implement `load()` -> {"train": (x, y), optionally "test": (x, y)}
    as numpy arrays. Without an official test set, `test_fraction` of the data
    is held out (stratified) before validation is. `normalize` standardises each
    channel with the training part's mean and std (for direct input; rate codes
    want intensities in [0, 1]).

    An encoder that converts whole datasets (`converts = "images"`: event-camera emulation; snnexp.encoding.base) is
    handed over by `use_encoder`. Each pool of images (the official train and test sets, or all
    images without an official test set) is then converted once, independently of the seed, on
    `convert_device` (null: CUDA when available), and cached in `cache_dir` (snnexp.data.cache);
    the seed's splits pick rows of it. With every limit of a pool's splits set, only the
    smallest prefix of the pool those limits need is converted (snnexp.data.splits), and the
    splits are drawn from that prefix. Samples become frames [T, 2, H', W'].

    `crop_padding` and `flip` augment the training batches (snnexp.data.augment): each image
    shifted by up to crop_padding pixels, mirrored left-right with probability 1/2.
    """

    def __init__(self, val_fraction: float = 0.1, test_fraction: float = 0.2, normalize: bool = False,
                 cache_dir: str | None = None, convert_device: str | None = None, crop_padding: int = 0,
                 flip: bool = False, **split_keys):
        super().__init__(val_fraction=val_fraction, **split_keys)
        check(0 < test_fraction < 1, "dataset.test_fraction", test_fraction, "must be in (0, 1)")
        check(int(crop_padding) >= 0, "dataset.crop_padding", crop_padding, "must be >= 0 (0: no random crop)")
        self.augment = CropFlip(crop_padding, flip, self.seed)
        self.test_fraction = test_fraction
        self.normalize = bool(normalize)
        self.cache_dir = cache_dir
        self.convert_device = convert_device
        self.converter = None  # a dataset-level encoder, set by use_encoder

    # -- provided by each dataset ---------------------------------------------------------
    def load(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        raise NotImplementedError

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
        key, value = ("dataset.crop_padding", self.augment.padding) if self.augment.padding else ("dataset.flip", True)
        check(not self.augment, key, value,
              f"augments images, and encoding={type(encoder).__name__.lower()} converts them to events once, "
              f"before training: set dataset.crop_padding=0 and dataset.flip=false")
        conversion_device(self.convert_device)
        self.converter = encoder
        self.in_shape = tuple(encoder.out_shape(tuple(type(self).in_shape)))  # per-step shape of the frames
        return TimeFirst(int(encoder.T))

    def make_splits(self) -> dict[str, Dataset]:
        arrays = self.load()
        official_test = "test" in arrays
        pools = {"train": arrays["train"], **({"test": arrays["test"]} if official_test else {})}
        if self.converter is not None:  # a seed-independent prefix of each pool (all of it without limits)
            pools["train"] = self._prefix(*pools["train"], None if official_test else self.test_fraction)
            if official_test and self.limits["test"] is not None:
                pools["test"] = tuple(a[: self.limits["test"]] for a in pools["test"])
        x, y = pools["train"]
        index = self.split_index(y, None if official_test else self.test_fraction)
        source = {"train": "train", "val": "train", "test": "test" if official_test else "train"}
        if official_test:
            index["test"] = np.arange(len(pools["test"][1]))
        whole_train = index["train"]
        index = self.limited(index)
        first = pools[source["test"]][0][index["test"][:1]]
        self.first_test_image = torch.as_tensor(first, dtype=torch.float32)  # [1, C, H, W] for extra_plots
        if self.converter is not None:
            frames = {pool: self._converted(pool, xs) for pool, (xs, _) in pools.items()}
            return {name: FrameDataset(frames[source[name]], pools[source[name]][1], idx) for name, idx in index.items()}
        mean, std = 0.0, 1.0
        if self.normalize:  # zero mean, unit variance per channel, from the training part only
            x_train = x[whole_train]
            mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
            std = x_train.std(axis=(0, 2, 3), keepdims=True) + 1e-8
        return {name: TensorDataset(torch.as_tensor((pools[source[name]][0][idx] - mean) / std, dtype=torch.float32),
                                    torch.as_tensor(pools[source[name]][1][idx], dtype=torch.long))
                for name, idx in index.items()}

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Training batches only, on the device the batch went to (Lightning's datamodule hook)."""
        if self.augment and self.trainer is not None and self.trainer.training:
            x, y = batch
            return self.augment(x), y
        return batch

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
