"""Bad data files end in a ConfigError that names the file and says what to do, before any work."""
import gzip
import os
import shutil

import numpy as np
import pytest

from snnexp.data.cifar10 import CIFAR10Data
from snnexp.data.events import DVSGestureData, NMNISTData
from snnexp.data.idx import SPLITS, FashionMNISTData
from snnexp.encoding.frames import Frames
from snnexp.encoding.poisson import Poisson
from snnexp.errors import ConfigError
from tests.conftest import QUICK, run_cli
from tests.data.event_files import write_dvs_gesture, write_nmnist
from tests.data.test_images import make_idx_set

TRAIN_IMAGES = SPLITS["train"][0]


def truncate(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep >= 0 else data[:len(data) + keep])


@pytest.mark.parametrize("gz, damage, words", [
    (True, lambda p: truncate(p, -100), "truncated or not a valid gzip"),  # gzip's EOFError today
    (True, lambda p: p.write_bytes(b"\x1f\x8b\x08rubbish" * 10), "truncated or not a valid gzip"),
    (True, lambda p: p.write_bytes(gzip.compress(gzip.decompress(p.read_bytes())[:-50])), "promises"),
    (False, lambda p: truncate(p, -50), "promises"),
    (False, lambda p: truncate(p, 10), "header alone"),
])
def test_truncated_or_corrupt_idx_names_the_file(tmp_path, gz, damage, words):
    root = make_idx_set(tmp_path / "fm", gz=gz)
    path = root / (TRAIN_IMAGES + (".gz" if gz else ""))
    damage(path)
    dm = FashionMNISTData(root=str(root))
    dm.use_encoder(Poisson(T=4))
    with pytest.raises(ConfigError, match=words) as e:
        dm.setup()  # at the start of fit, before any training
    assert str(path) in str(e.value) and "dataset.download=true" in str(e.value)


def test_idx_images_and_labels_that_do_not_pair(tmp_path):
    root = make_idx_set(tmp_path / "fm")
    shutil.copy(root / (SPLITS["test"][1] + ".gz"), root / (SPLITS["train"][1] + ".gz"))  # 20 labels for 40 images
    with pytest.raises(ConfigError, match="not a pair"):
        FashionMNISTData(root=str(root)).setup()


@pytest.mark.e2e
def test_truncated_idx_through_run_py_exits_2_without_training(tmp_path):
    root = make_idx_set(tmp_path / "fm")
    truncate(root / (TRAIN_IMAGES + ".gz"), -100)
    proc = run_cli(QUICK + ["dataset=fashion_mnist", f"dataset.root={root}", "logger=none"], tmp_path / "run",
                   check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert TRAIN_IMAGES in out and "Traceback" not in out
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_truncated_cifar_batch_names_the_file(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (d / name).write_bytes(b"\x80\x04\x95")  # the start of a pickle, cut off
    with pytest.raises(ConfigError, match="data_batch_1 is truncated or corrupt"):
        CIFAR10Data(root=str(tmp_path)).setup()


# -- recorded event sets: a partial download or extraction -------------------------------------

def nmnist(tmp_path, **limits):
    return NMNISTData(root=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"), val_fraction=0.25, **limits)


def set_up(dm):
    """What fit does first: the datamodule gets its encoder, then sets up (files checked, then framed)."""
    dm.use_encoder(Frames(T=4))
    dm.setup()


def test_nmnist_fixture_passes_with_limits_and_fails_as_a_full_dataset(tmp_path):
    write_nmnist(tmp_path / "data")  # 20 + 10 recordings of the official 60,000 + 10,000
    set_up(nmnist(tmp_path, limit_train=15, limit_val=5, limit_test=10))
    with pytest.raises(ConfigError, match=r"holds 20 recordings, the official train split has 60000") as e:
        set_up(nmnist(tmp_path))
    assert "NMNIST/Train" in str(e.value) and "dataset.limit_train" in str(e.value)
    with pytest.raises(ConfigError, match=r"holds 20 recordings, the limits need 24"):  # limits beyond what is there
        set_up(nmnist(tmp_path, limit_train=18, limit_val=6, limit_test=10))


def test_nmnist_missing_class_and_truncated_recording(tmp_path):
    root = write_nmnist(tmp_path / "data", per_class=2)
    limits = dict(limit_train=12, limit_val=4, limit_test=2)
    shutil.rmtree(root / "NMNIST" / "Test" / "9")  # extraction stopped before the last class
    with pytest.raises(ConfigError, match=r"no recordings of class\(es\) \[9\]") as e:
        set_up(nmnist(tmp_path, **limits))
    assert "NMNIST/Test" in str(e.value)
    write_nmnist(tmp_path / "data", per_class=2)
    bad = root / "NMNIST" / "Test" / "0" / "00000.bin"
    truncate(bad, -2)  # the last file written when the extraction stopped
    dm = nmnist(tmp_path, limit_train=12, limit_val=4, limit_test=20)  # reads every test recording
    with pytest.raises(ConfigError, match="not a whole number of 5-byte events") as e:
        set_up(dm)
    assert str(bad) in str(e.value)


def test_dvs_gesture_missing_split_and_truncated_npy(tmp_path):
    root = write_dvs_gesture(tmp_path / "data")
    limits = dict(limit_train=16, limit_val=6, limit_test=11, val_fraction=0.25)
    bad = root / "DVSGesture" / "ibmGestureTest" / "user30_fluorescent" / "3.npy"
    truncate(bad, -16)
    with pytest.raises(ConfigError, match="promises") as e:
        set_up(DVSGestureData(root=str(root), cache_dir=str(tmp_path / "c"), **limits))
    assert str(bad) in str(e.value)
    shutil.rmtree(root / "DVSGesture" / "ibmGestureTest")
    with pytest.raises(ConfigError, match="no data files") as e:
        set_up(DVSGestureData(root=str(root), cache_dir=str(tmp_path / "c"), **limits))
    assert "ibmGestureTest" in str(e.value)


def test_dvs_gesture_fixture_needs_limits(tmp_path):
    root = write_dvs_gesture(tmp_path / "data")
    with pytest.raises(ConfigError, match="the official train split has 1077"):
        set_up(DVSGestureData(root=str(root), cache_dir=str(tmp_path / "c")))
    os.remove(root / "DVSGesture" / "ibmGestureTrain" / "user01_fluorescent" / "10.npy")
    os.remove(root / "DVSGesture" / "ibmGestureTrain" / "user02_fluorescent" / "10.npy")
    with pytest.raises(ConfigError, match=r"class\(es\) \[10\]"):
        set_up(DVSGestureData(root=str(root), cache_dir=str(tmp_path / "c"), limit_train=10, limit_val=2,
                              limit_test=11))
