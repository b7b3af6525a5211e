"""IDX (MNIST, Fashion-MNIST) and CIFAR-10 datamodules on tiny files written in the real formats."""
import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from snnexp.data.cifar10 import CIFAR10Data
from snnexp.data.idx import SPLITS, FashionMNISTData, MNISTData, read_idx
from snnexp.errors import ConfigError


def write_idx(path, array, gz):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">i", n) for n in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def make_idx_set(folder, n_train=40, n_test=20, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = SPLITS[split]
        y = np.arange(n) % 10
        x = rng.integers(0, 256, (n, 28, 28))
        x[:, 0, 0] = y * 20  # a marker to check images and labels stay paired
        suffix = ".gz" if gz else ""
        write_idx(folder / (images + suffix), x, gz)
        write_idx(folder / (labels + suffix), y, gz)
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_idx_reader_and_datamodule(tmp_path, gz):
    root = make_idx_set(tmp_path / "fm", gz=gz)
    x = read_idx(root / (SPLITS["test"][0] + (".gz" if gz else "")))
    assert x.shape == (20, 28, 28) and x.dtype == np.uint8
    dm = FashionMNISTData(root=str(root), batch_size=8, val_fraction=0.25)
    assert dm.split_sizes() == {"train": 30, "val": 10, "test": 20}
    xb, yb = next(iter(dm.test_dataloader()))
    assert xb.shape == (8, 1, 28, 28) and 0 <= xb.min() and xb.max() <= 1
    assert torch.allclose(xb[:, 0, 0, 0] * 255, (yb * 20).float())


def test_search_order_env_then_system(tmp_path, monkeypatch):
    make_idx_set(tmp_path / "data" / "mnist")
    monkeypatch.setenv("SNNEXP_DATA", str(tmp_path / "data"))
    assert MNISTData().files_dir() == tmp_path / "data" / "mnist"


def test_missing_files_error_names_every_place_and_the_ways_out(tmp_path, monkeypatch):
    monkeypatch.delenv("SNNEXP_DATA", raising=False)
    with pytest.raises(ConfigError) as e:
        MNISTData(root=str(tmp_path / "nowhere")).setup()
    msg = str(e.value)
    assert str(tmp_path / "nowhere") in msg and "/usr/share/datasets/mnist" in msg
    assert "dataset.root" in msg and "SNNEXP_DATA" in msg and "dataset.download=true" in msg


def test_download_fetches_from_a_mirror(tmp_path, monkeypatch):
    mirror = make_idx_set(tmp_path / "mirror")
    monkeypatch.setattr(MNISTData, "mirrors", ("file://" + str(mirror) + "/",))
    dm = MNISTData(root=str(tmp_path / "fresh"), download=True, val_fraction=0.25)
    assert dm.split_sizes()["test"] == 20
    assert not list((tmp_path / "fresh").glob("*.part"))


def test_bad_magic_is_reported(tmp_path):
    bad = tmp_path / "x.idx"
    bad.write_bytes(b"\x12\x34\x56\x78rubbish")
    with pytest.raises(ConfigError, match="not an IDX file"):
        read_idx(bad)


def test_cifar10_pickle_batches(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (6, 3072), dtype=np.uint8)
        labels = list(range(6))
        data[:, 0] = np.array(labels) * 10  # red channel, first pixel
        with open(d / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, f)
    dm = CIFAR10Data(root=str(tmp_path), batch_size=4, val_fraction=0.2)
    assert dm.split_sizes() == {"train": 24, "val": 6, "test": 6}
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (4, 3, 32, 32)
    assert torch.allclose(x[:, 0, 0, 0] * 255, (y * 10).float())


def test_normalize_standardises_with_training_statistics(tmp_path):
    root = make_idx_set(tmp_path / "fm")
    dm = FashionMNISTData(root=str(root), normalize=True, val_fraction=0.25)
    dm.setup()
    x_train = dm.splits["train"].tensors[0]
    assert abs(x_train.mean().item()) < 1e-4 and abs(x_train.std().item() - 1) < 1e-2
