"""Tonic's recorded event datasets read from an extracted folder, and a check that the folder is complete.

Tonic's own check wants the archives too (N-MNIST: train.zip/test.zip and >= 10,000 .bin files),
so a user with only the extracted folder would trigger a download; these classes read the
folder alone and download only with dataset.download=true.

Completeness (`check_complete`), for datasets of one file per recording (N-MNIST, DVS Gesture):
- every class of the split has recordings (an extraction that stopped early lacks the last ones);
- the split holds the official number of recordings; with limits set, the number the limits
  need (or the official one, if smaller): a subset is then asked for, so a partial download
  that holds enough is fine, and the tiny real-format fixtures of the tests pass this way;
- no recording the run reads is truncated (N-MNIST: a whole number of 5-byte events; DVS Gesture:
  as many bytes as its .npy header says).
SHD is one HDF5 file per split: a truncated file fails to open, which is reported by name.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tonic

from snnexp.errors import ConfigError


class LocalFirst:
    """Mixin for a Tonic dataset class: serve files already extracted in its folder, download only if asked."""

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

    def files(self) -> list[str]:
        """The files the recordings are read from (one per recording)."""
        return list(self.data)

    def truncated(self, path: str) -> str | None:
        """Why the recording file at path is incomplete, or None."""
        return None


class NMNIST(LocalFirst, tonic.datasets.NMNIST):
    """tonic.datasets.NMNIST that also reads <root>/NMNIST/{Train,Test}/<digit>/*.bin alone."""

    def extracted(self) -> bool:
        return any(self.where().glob("*/*.bin"))

    def truncated(self, path: str) -> str | None:
        size = os.path.getsize(path)
        return f"{size} bytes, not a whole number of 5-byte events" if size % 5 else None


class DVSGesture(LocalFirst, tonic.datasets.DVSGesture):
    """tonic.datasets.DVSGesture that also reads <root>/DVSGesture/ibmGesture{Train,Test}/user*_*/<label>.npy alone."""

    def extracted(self) -> bool:
        return any(self.where().glob("user*/*.npy"))

    def truncated(self, path: str) -> str | None:
        size = os.path.getsize(path)
        try:
            with open(path, "rb") as f:
                major, _ = np.lib.format.read_magic(f)
                read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(f)
                expected = f.tell() + int(np.prod(shape)) * dtype.itemsize
        except (ValueError, OSError, EOFError) as e:
            return f"not a readable .npy file ({e})"
        return f"{size} bytes where its header promises {expected}" if size < expected else None


class SHD(LocalFirst, tonic.datasets.SHD):
    """tonic.datasets.SHD that also reads <root>/SHD/shd_{train,test}.h5 without the zips."""

    def where(self) -> Path:
        return Path(self.location_on_system, self.data_filename)

    def extracted(self) -> bool:
        return self.where().is_file()

    def files(self) -> list[str]:
        return [str(self.where())]


@dataclass(frozen=True)
class Official:
    """What a complete download holds: recordings per split (at least) and the number of classes."""

    recordings: dict[str, int]
    classes: int


def check_complete(ds: LocalFirst, split: str, official: Official, needed: int | None, index: np.ndarray) -> None:
    """ConfigError unless ds (split "train" or "test") is complete enough for the run (module docstring).

    needed: the recordings the limits need (None: no limit, the official number); index: the
    recordings the run reads (checked for truncation).
    """
    folder = ds.where()
    labels = sorted(set(int(t) for t in ds.targets))
    if labels != list(range(official.classes)):
        missing = sorted(set(range(official.classes)) - set(labels))
        raise ConfigError(
            f"{folder} holds no recordings of class(es) {missing}: a partial download or extraction. Extract the "
            f"dataset's archive again (or delete the folder and set dataset.download=true).")
    want = official.recordings[split] if needed is None else min(int(needed), official.recordings[split])
    if len(ds) < want:
        limits = "dataset.limit_train and dataset.limit_val" if split == "train" else "dataset.limit_test"
        raise ConfigError(
            f"{folder} holds {len(ds)} recordings, the {'official ' + split + ' split has' if needed is None else 'limits need'} "
            f"{want}: a partial download or extraction. Extract the archive again (or delete the folder and set "
            f"dataset.download=true), or set {limits} to use a subset of what is there.")
    files = ds.files()
    for i in index:
        why = ds.truncated(files[int(i)])
        if why:
            raise ConfigError(f"{files[int(i)]} is truncated ({why}): a partial download or extraction. Extract the "
                              f"archive again (or delete the folder and set dataset.download=true).")
