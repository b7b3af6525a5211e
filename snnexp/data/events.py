"""Recorded event datasets through Tonic: N-MNIST, DVS Gesture, SHD.

Each sample's events are (optionally) denoised and framed once by `encoding=frames`
(tonic.transforms.ToFrame(n_time_bins=T)); the frames [T, P, H, W] are cached on disk under a
key holding every parameter, and batched sample-first (the learner's Frames step turns each
batch time-first). Files are read from dataset.root only; Tonic downloads only with
dataset.download=true.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import tonic

from snnexp.data.cache import FrameDataset, cache_root, cached_array, code_version
from snnexp.data.datamodule import SplitDataModule
from snnexp.data.recordings import DVSGesture, NMNIST, SHD, Official, check_complete
from snnexp.data.splits import random_prefix
from snnexp.errors import ConfigError, check


def pool_index(size: int, n: int) -> np.ndarray:
    """The recordings a prefix of n takes: all in file order, or n spread over the pool by a fixed
    shuffle (the same for every seed; Tonic lists recordings class by class), in file order."""
    return np.arange(size) if n >= size else np.sort(np.random.default_rng(0).permutation(size)[:n])


class EventDataModule(SplitDataModule):
    """A Tonic dataset framed once (cached): samples [T, P, H, W], official test split, val from train.

    Splits, limits and loaders are every datamodule's (snnexp.data.datamodule); validation is a
    random subset of the training recordings. Each pool (the official train and test recordings)
    is framed once, independently of the seed, and cached; the seed's splits pick rows of it.
    With limit_train set (and limit_val, unless val_fraction=0), only as many training recordings
    as they need are framed (a fixed selection, the same for every seed; likewise limit_test).
    The folder must be complete (`recordings.check_complete`).
    denoise_us: tonic.transforms.Denoise(filter_time) before framing (needs x and y), null = off.
    in_shape is the sensor's (P, H, W).
    """

    official: Official | None = None  # a complete download, for datasets of one file per recording
    stratified = False  # the recordings to frame are picked (random_prefix) before their labels are read

    sensor_size: tuple[int, int, int]  # Tonic's (W, H, P)

    def __init__(self, root: str | None = None, download: bool = False, denoise_us: float | None = None,
                 cache_dir: str | None = None, **split_keys):
        super().__init__(**split_keys)
        check(denoise_us is None or denoise_us > 0, "dataset.denoise_us", denoise_us, "must be > 0 µs or null")
        self.root, self.download = root, bool(download)
        self.denoise_us, self.cache_dir = denoise_us, cache_dir
        self.framer = None

    # -- provided by each dataset ------------------------------------------------------------
    def tonic_dataset(self, root: str, train: bool):
        raise NotImplementedError

    def options(self) -> str:
        """Dataset options that change the events (part of the cache key)."""
        return ""

    # -- shared ------------------------------------------------------------------------------
    def use_encoder(self, encoder):
        check(encoder.converts == "events", "encoding", type(encoder).__name__,
              f"{type(self).__name__} holds recorded events: use encoding=frames")
        self.framer = encoder
        self.in_shape = tuple(encoder.out_shape(tuple(type(self).in_shape)))
        return encoder  # its __call__ turns [N, T, ...] batches time-first

    def open(self, train: bool):
        if not self.root and not self.download:
            raise ConfigError(f"dataset.root is not set: {type(self).__name__} is read from dataset.root "
                              f"(Tonic's layout, e.g. <root>/{self.folder}/...); or set dataset.download=true")
        try:
            return self.tonic_dataset(str(Path(self.root or "data").expanduser()), train)
        except OSError as e:  # e.g. h5py on a truncated SHD file
            raise ConfigError(f"{type(self).__name__}: cannot read {getattr(e, 'filename', None) or e} ({e}): a partial "
                              f"download? Download it again, or delete it and set dataset.download=true.") from None

    folder: str  # Tonic's folder name under the root

    def pools(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The train and test recordings (Tonic datasets), checked complete, and the recordings of each
        the run frames (all, or a fixed selection when limits are set). Opened once."""
        if getattr(self, "_pools", None) is None:
            pools = {"train": self.open(True), "test": self.open(False)}
            needed = {"train": random_prefix(self.limits["train"], self.limits["val"], self.val_fraction),
                      "test": self.limits["test"]}
            picked = {name: pool_index(len(ds), needed[name] or len(ds)) for name, ds in pools.items()}
            if self.official is not None:
                for name, ds in pools.items():
                    check_complete(ds, name, self.official, needed[name], picked[name])
            self._pools = (pools, picked)
        return self._pools

    def make_splits(self) -> dict[str, FrameDataset]:
        check(self.framer is not None, "encoding", None, f"{type(self).__name__} needs encoding=frames")
        pools, picked = self.pools()
        test = pools["test"]
        frames = {name: self._framed(name, ds, picked[name]) for name, ds in pools.items()}
        labels = {name: np.array([self.label_of(ds, int(i)) for i in picked[name]], np.int64)
                  for name, ds in pools.items()}
        index = {**self.split_index(labels["train"]), "test": np.arange(len(picked["test"]))}
        source = {"train": "train", "val": "train", "test": "test"}
        self.plot_sample = (test, int(picked["test"][0]))
        return {name: FrameDataset(frames[source[name]], labels[source[name]], idx)
                for name, idx in self.limited(index).items()}

    def _framed(self, pool: str, ds, picked: np.ndarray) -> np.ndarray:
        """Frames of the picked recordings of a pool, from the cache; framed on a miss."""
        files = ds.files()
        stats = [os.stat(f) for f in files]
        key = {"framer": repr(self.framer), "code": code_version(self.framer, self), "tonic": tonic.__version__,
               "dataset": f"{type(self).__name__}|{self.options()}|denoise={self.denoise_us}",
               "folder": str(Path(ds.location_on_system).resolve()),
               "recordings": hashlib.sha1(repr([(f, s.st_size, s.st_mtime_ns) for f, s in zip(files, stats)]).encode()
                                          ).hexdigest(), "picked": hashlib.sha1(picked.tobytes()).hexdigest()}
        return cached_array(cache_root(self.cache_dir), f"{type(self).__name__.lower()}-{pool}", key,
                            lambda: np.stack([self.frames_of(ds, int(i)) for i in picked]))

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

    def extra_plots(self, run_dir: Path) -> list[Path]:
        """Test sample 0's recorded events as frames and as a raster."""
        from snnexp.viz.events import plot_sample_events

        self.setup()
        ds, i = self.plot_sample  # test recording 0 of the split
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
    official = Official({"train": 60_000, "test": 10_000}, classes=10)  # MNIST's images, one recording each

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
    # 98 training trials (users 1-23) and 24 test trials (users 24-29), 11 gestures each; one training
    # gesture is missing from Tonic's cut: at least 1,077 and 264
    official = Official({"train": 1_077, "test": 264}, classes=11)

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
