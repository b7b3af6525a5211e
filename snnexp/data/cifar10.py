"""CIFAR-10 from its python-pickle batches (cifar-10-batches-py)."""
from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np

from snnexp.data.files import download_file
from snnexp.data.static import FileImageDataModule
from snnexp.errors import ConfigError

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def batch_dir(folder: Path) -> Path:
    """The folder itself or its cifar-10-batches-py/ subfolder, whichever holds the batches."""
    return folder / "cifar-10-batches-py" if (folder / "cifar-10-batches-py").is_dir() else folder


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickle batch: {b"data": uint8 [n, 3072] (R, G, B planes of 32x32), b"labels": [n]} -> ([n, 3, 32, 32], [n])."""
    again = "Delete the folder and fetch it again (dataset.download=true), or extract the archive again."
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except (EOFError, pickle.UnpicklingError, ValueError, OSError) as e:
        raise ConfigError(f"{path} is truncated or corrupt ({type(e).__name__}: {e}). {again}") from None
    try:
        data, labels = np.asarray(batch[b"data"], dtype=np.uint8), np.asarray(batch[b"labels"], dtype=np.int64)
    except (KeyError, TypeError, IndexError):
        raise ConfigError(f"{path} is not a CIFAR-10 python batch (no b'data' / b'labels'). {again}") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ConfigError(f"{path} holds data {data.shape} and {len(labels)} labels, not [n, 3072] and n. {again}")
    return data.reshape(-1, 3, 32, 32), labels


class CIFAR10Data(FileImageDataModule):
    """Krizhevsky's 32x32 colour images: 50,000 + 10,000, 10 classes; [3, 32, 32] in [0, 1].

    Looked for in dataset.root, $SNNEXP_DATA/cifar-10, /usr/share/datasets/cifar-10 (the batches
    directly or in cifar-10-batches-py/); downloaded only with download=true.
    """

    in_shape = (3, 32, 32)
    num_classes = 10

    name = "cifar-10"

    def has_files(self, folder: Path) -> bool:
        return all((batch_dir(folder) / name).is_file() for name in TRAIN_BATCHES + ["test_batch"])

    def fetch(self, folder: Path) -> None:
        archive = download_file([URL], folder / "cifar-10-python.tar.gz")
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")

    def load(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        d = batch_dir(self.files_dir())
        parts = [read_batch(d / name) for name in TRAIN_BATCHES]
        x_test, y_test = read_batch(d / "test_batch")
        x = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        return {"train": (x.astype(np.float32) / 255.0, y), "test": (x_test.astype(np.float32) / 255.0, y_test)}
