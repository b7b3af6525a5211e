"""MNIST and Fashion-MNIST from their IDX files (gzipped or raw)."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from snnexp.data.files import download_file
from snnexp.data.static import FileImageDataModule
from snnexp.errors import ConfigError

SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's format: 0x00 0x00, dtype 0x08 = ubyte, ndim; big-endian int32 sizes; data)."""
    raw = gzip.open(path).read() if str(path).endswith(".gz") else Path(path).read_bytes()
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise ConfigError(f"{path} is not an IDX file of unsigned bytes (magic {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, ">i4", count=ndim, offset=4))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def find_idx(folder: Path, stem: str) -> Path | None:
    """stem.gz or stem (raw), also with torchvision's "-idx" -> ".idx" spelling."""
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


class IDXImages(FileImageDataModule):
    """28x28 grey images in [0, 1] from IDX files: the official train/test split, 10 classes.

    Looked for in dataset.root, $SNNEXP_DATA/<name>, /usr/share/datasets/<name>; downloaded
    (from `mirrors`, in order) only with download=true.
    """

    mirrors: tuple[str, ...]  # base URLs; a file's URL is base + stem + ".gz"
    in_shape = (1, 28, 28)
    num_classes = 10

    def has_files(self, folder: Path) -> bool:
        return all(find_idx(folder, stem) for pair in SPLITS.values() for stem in pair)

    def fetch(self, folder: Path) -> None:
        for pair in SPLITS.values():
            for stem in pair:
                download_file([m + stem + ".gz" for m in self.mirrors], folder / (stem + ".gz"))

    def load(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        folder = self.files_dir()
        out = {}
        for split, (images, labels) in SPLITS.items():
            x = read_idx(find_idx(folder, images)).astype(np.float32)[:, None] / 255.0  # [M, 28, 28] -> [M, 1, 28, 28]
            out[split] = (x, read_idx(find_idx(folder, labels)).astype(np.int64))
        return out


class FashionMNIST(IDXImages):
    """Zalando's Fashion-MNIST: 60,000 + 10,000 clothing images (Debian: dataset-fashion-mnist)."""

    name = "fashion-mnist"
    mirrors = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)


class MNIST(IDXImages):
    """LeCun's handwritten digits: 60,000 + 10,000."""

    name = "mnist"
    mirrors = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/")
