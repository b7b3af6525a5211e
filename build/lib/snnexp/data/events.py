"""Recorded event datasets through Tonic: N-MNIST, DVS Gesture, SHD.

Each sample's events are (optionally) denoised and framed once by `encoding=frames`
(tonic.transforms.ToFrame(n_time_bins=T)); the frames [T, P, H, W] are cached on disk under a
key holding every parameter, and batched sample-first (the learner's Frames step turns each
batch time-first). Files are read from dataset.root only; Tonic downloads only with
dataset.download=true.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import tonic
from torch.utils.data import DataLoader

from snnexp.data.cache import FrameDataset, cache_root, cached_array
from snnexp.errors import ConfigError, check


class LocalFirst:
    """Mixin for a Tonic dataset class: serve files already extracted in its folder, download only if asked.

    Tonic's own check wants the archives too (N-MNIST: train.zip/test.zip and >= 10,000 .bin
    files), so a user with only the extracted folder would trigger a download.
    """

    def __init__(self, save_to: str, *args, fetch: bool = False, **kwargs):
        self.fetch = fetch
        super().__init__(save_to, *args, **kwargs)

    def extracted(self) -> bool:
        raise NotImplementedError

    def where(self) -> Path:
        return Path(self.location_on_system, getattr(self, "folder_name", ""))

    def _check_exists(self) -> bool:
        return self.extracted() or super()._check_exists()

    def download(self) -> None:
        if not self.fetch:
            raise ConfigError(
                f"{type(self).__name__}: no data files in {self.where()} (dataset.root={Path(self.location_on_system).parent}). "
                f"Set dataset.root to the folder that holds {type(self).__name__}/, or dataset.download=true.")
        super().download()


class NMNIST(LocalFirst, tonic.datasets.NMNIST):
    """tonic.datasets.NMNIST that also reads <root>/NMNIST/{Train,Test}/<digit>/*.bin alone."""

    def extracted(self) -> bool:
        return any(self.where().glob("*/*.bin"))


class DVSGesture(LocalFirst, tonic.datasets.DVSGesture):
    """tonic.datasets.DVSGesture that also reads <root>/DVSGesture/ibmGesture{Train,Test}/user*_*/<label>.npy alone."""

    def extracted(self) -> bool:
        return any(self.where().glob("user*/*.npy"))


class SHD(LocalFirst, tonic.datasets.SHD):
    """tonic.datasets.SHD that also reads <root>/SHD/shd_{train,test}.h5 without the zips."""

    def where(self) -> Path:
        return Path(self.location_on_system, self.data_filename)

    def extracted(self) -> bool:
        return self.where().is_file()


class EventDataModule(pl.LightningDataModule):
    """A Tonic dataset framed once (cached): samples [T, P, H, W], official test split, val from train.

    val_fraction of the training recordings (random, from `seed`) are held out for validation;
    limit_* keep the first n of a split. denoise_us: tonic.transforms.Denoise(filter_time)
    before framing (needs x and y), null = off. The model reads in_shape (the sensor's P, H, W)
    and num_classes from here.
    """

    in_shape: tuple[int, ...]
    num_classes: int
    sensor_size: tuple[int, int, int]  # Tonic's (W, H, P)

    def __init__(self, root: str | None = None, download: bool = False, batch_size: int = 64, num_workers: int = 0,
                 val_fraction: float = 0.1, seed: int = 0, limit_train: int | None = None,
                 limit_val: int | None = None, limit_test: int | None = None, denoise_us: float | None = None,
                 cache_dir: str | None = None):
        super().__init__()
        check(int(batch_size) >= 1, "dataset.batch_size", batch_size, "must be >= 1")
        check(0 < val_fraction < 1, "dataset.val_fraction", val_fraction, "must be in (0, 1)")
        check(denoise_us is None or denoise_us > 0, "dataset.denoise_us", denoise_us, "must be > 0 µs or null")
        for key, limit in (("limit_train", limit_train), ("limit_val", limit_val), ("limit_test", limit_test)):
            check(limit is None or int(limit) >= 1, f"dataset.{key}", limit, "must be null or >= 1")
        self.root, self.download = root, bool(download)
        self.batch_size, self.num_workers = int(batch_size), int(num_workers)
        self.val_fraction, self.seed = val_fraction, int(seed)
        self.limits = {"train": limit_train, "val": limit_val, "test": limit_test}
        self.denoise_us, self.cache_dir = denoise_us, cache_dir
        self.framer = None
        self.splits: dict[str, FrameDataset] | None = None

    # -- provided by each dataset ------------------------------------------------------------
    def tonic_dataset(self, root: str, train: bool):
        raise NotImplementedError

    def options(self) -> str:
        """Dataset options that change the events (part of the cache key)."""
        return ""

    # -- shared ------------------------------------------------------------------------------
    def use_encoder(self, encoder):
        check(hasattr(encoder, "frame"), "encoding", type(encoder).__name__,
              f"{type(self).__name__} holds recorded events: use encoding=frames")
        self.framer = encoder
        self.in_shape = tuple(encoder.out_shape(tuple(type(self).in_shape)))
        return encoder  # its __call__ turns [N, T, ...] batches time-first

    def open(self, train: bool):
        if not self.root and not self.download:
            raise ConfigError(f"dataset.root is not set: {type(self).__name__} is read from dataset.root "
                              f"(Tonic's layout, e.g. <root>/{self.folder}/...); or set dataset.download=true")
        return self.tonic_dataset(str(Path(self.root or "data").expanduser()), train)

    folder: str  # Tonic's folder name under the root

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        check(self.framer is not None, "encoding", None, f"{type(self).__name__} needs encoding=frames")
        train, test = self.open(True), self.open(False)
        order = np.random.default_rng(self.seed).permutation(len(train))
        n_val = max(1, round(self.val_fraction * len(train)))
        index = {"train": np.sort(order[n_val:]), "val": np.sort(order[:n_val]), "test": np.arange(len(test))}
        self.sources = {"train": train, "val": train, "test": test}
        self.splits = {}
        for name, idx in index.items():
            idx = idx[: self.limits[name] or len(idx)]
            ds = self.sources[name]
            key = (f"{self.framer!r}|{type(self).__name__}|{self.options()}|denoise={self.denoise_us}|"
                   f"{Path(ds.location_on_system).resolve()}|{len(ds)}|{idx.tolist()}")
            frames = cached_array(cache_root(self.cache_dir), f"{type(self).__name__.lower()}-{name}", key,
                                  lambda: np.stack([self.frames_of(ds, int(i)) for i in idx]))
            labels = np.array([self.label_of(ds, int(i)) for i in idx], np.int64)
            self.splits[name] = FrameDataset(frames, labels)
        self.plot_sample = (test, 0)

    @staticmethod
    def label_of(ds, i: int) -> int:
        """From Tonic's target list when it has one (N-MNIST, DVS Gesture), else by reading the sample (SHD)."""
        return int(ds.targets[i]) if getattr(ds, "targets", None) else int(ds[i][1])

    def events_of(self, ds, i: int) -> np.ndarray:
        events = ds[i][0]
        if self.denoise_us and "y" in events.dtype.names and len(events):
            events = tonic.transforms.Denoise(filter_time=self.denoise_us)(events)
        return events

    def frames_of(self, ds, i: int) -> np.ndarray:
        """uint8 frames [T, ...] of sample i (counts saturate at 255)."""
        return np.clip(self.framer.frame(self.events_of(ds, i), self.sensor_size), 0, 255).astype(np.uint8)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup()
        return DataLoader(self.splits[split], batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)

    def split_sizes(self) -> dict[str, int]:
        self.setup()
        return {name: len(ds) for name, ds in self.splits.items()}

    def extra_plots(self, run_dir: Path) -> list[Path]:
        """Test sample 0's recorded events as frames and as a raster."""
        from snnexp.viz.events import plot_sample_events

        self.setup()
        ds, i = self.plot_sample
        x, y = self.splits["test"][0]
        return plot_sample_events(self.events_of(ds, i), x.numpy(), run_dir / "plots", self.sensor_size[0],
                                  f"{type(self).__name__}, test sample 0 (label {y})")


class NMNISTData(EventDataModule):
    """N-MNIST (Orchard et al. 2015): 60,000 + 10,000 saccade recordings of MNIST, 34x34x2 sensor.

    first_saccade_only keeps the first 100 ms; stabilize removes the saccade motion (Tonic's).
    """

    in_shape = (2, 34, 34)
    num_classes = 10
    sensor_size = tonic.datasets.NMNIST.sensor_size
    folder = "NMNIST"

    def __init__(self, first_saccade_only: bool = False, stabilize: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.first_saccade_only, self.stabilize = bool(first_saccade_only), bool(stabilize)

    def options(self) -> str:
        return f"first_saccade_only={self.first_saccade_only},stabilize={self.stabilize}"

    def tonic_dataset(self, root: str, train: bool):
        return NMNIST(root, train=train, first_saccade_only=self.first_saccade_only, stabilize=self.stabilize,
                      fetch=self.download)


class DVSGestureData(EventDataModule):
    """IBM DVS Gesture (Amir et al. 2017), Tonic's preprocessed version: 11 gestures, 128x128x2 sensor."""

    in_shape = (2, 128, 128)
    num_classes = 11
    sensor_size = tonic.datasets.DVSGesture.sensor_size
    folder = "DVSGesture"

    def tonic_dataset(self, root: str, train: bool):
        return DVSGesture(root, train=train, fetch=self.download)


class SHDData(EventDataModule):
    """Spiking Heidelberg Digits (Cramer et al. 2020): spoken digits as spikes of 700 channels, 20 classes.

    Frames are [T, 1, 700] (Tonic's ToFrame for events without y); use model=mlp.
    """

    in_shape = (1, 700)
    num_classes = 20
    sensor_size = tonic.datasets.SHD.sensor_size
    folder = "SHD"

    def tonic_dataset(self, root: str, train: bool):
        return SHD(root, train=train, fetch=self.download)
