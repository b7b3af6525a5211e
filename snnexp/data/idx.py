"""MNIST and Fashion-MNIST from their IDX files (gzipped or raw)."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from snnexp.data.files import download_file
from snnexp.data.static import FileImageDataModule
from snnexp.errors import ConfigError

SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's format: 0x00 0x00, dtype 0x08 = ubyte, ndim; big-endian int32 sizes; data).

    A truncated or corrupt file (raw or .gz) is a ConfigError naming it, never gzip's EOFError.
    """
    again = "Delete it and fetch it again (dataset.download=true), or copy a good one in its place."
    try:
        raw = gzip.open(path).read() if str(path).endswith(".gz") else Path(path).read_bytes()
    except (EOFError, OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise ConfigError(f"{path} is truncated or not a valid gzip file ({e}). {again}") from None
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise ConfigError(f"{path} is not an IDX file of unsigned bytes (magic {raw[:4].hex()}). {again}")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ConfigError(f"{path} is truncated: {len(raw)} bytes, its IDX header alone needs {4 + 4 * ndim}. {again}")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">i4", count=ndim, offset=4))
    expected = 4 + 4 * ndim + int(np.prod(shape))
    if len(raw) != expected:
        raise ConfigError(f"{path} holds {len(raw)} bytes, its IDX header {shape} promises {expected}: "
                          f"{'truncated' if len(raw) < expected else 'corrupt'}. {again}")
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
            image_file, label_file = find_idx(folder, images), find_idx(folder, labels)
            x, y = read_idx(image_file), read_idx(label_file)
            if x.ndim != 3 or x.shape[1:] != (28, 28) or y.ndim != 1 or len(y) != len(x) or y.max(initial=0) > 9:
                raise ConfigError(f"{image_file} ({x.shape}) and {label_file} ({y.shape}) are not a pair of 28x28 images "
                                  f"and their labels 0..9. Fetch them again (dataset.download=true).")
            out[split] = (x.astype(np.float32)[:, None] / 255.0, y.astype(np.int64))  # [M, 28, 28] -> [M, 1, 28, 28]
        return out


class FashionMNISTData(IDXImages):
    """Zalando's Fashion-MNIST: 60,000 + 10,000 clothing images (Debian: dataset-fashion-mnist)."""

    name = "fashion-mnist"
    mirrors = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)


class MNISTData(IDXImages):
    """LeCun's handwritten digits: 60,000 + 10,000."""

    name = "mnist"
    mirrors = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/")
