"""Tonic event datasets on tiny files in the real formats, read through Tonic's own classes."""
import numpy as np
import pytest
import tonic
import torch

from snnexp.data.events import DVSGestureData, NMNISTData, SHDData
from snnexp.encoding.frames import Frames
from snnexp.errors import ConfigError
from tests.data.event_files import nmnist_bytes, write_dvs_gesture, write_nmnist, write_shd


def test_nmnist_records_read_back_through_tonic(tmp_path):
    t = np.array([5, 70_000, 8_388_000])  # the last needs all 23 timestamp bits
    path = tmp_path / "a.bin"
    path.write_bytes(nmnist_bytes([1, 33, 7], [2, 0, 33], t, [1, 0, 1]))
    ev = tonic.io.read_mnist_file(str(path), dtype=tonic.datasets.NMNIST.dtype)
    assert ev["x"].tolist() == [1, 33, 7] and ev["y"].tolist() == [2, 0, 33]
    assert ev["t"].tolist() == t.tolist() and ev["p"].tolist() == [1, 0, 1]


# The fixtures hold a few recordings of every class, not the official counts: the runs say so by
# their limits (which these fixtures fill exactly).
FIXTURE_LIMITS = {NMNISTData: dict(limit_train=15, limit_val=5, limit_test=10),
                  DVSGestureData: dict(limit_train=16, limit_val=6, limit_test=11), SHDData: {}}


def make(cls, root, tmp_path, T=4, **kw):
    dm = cls(root=str(root), batch_size=4, val_fraction=0.25, cache_dir=str(tmp_path / "cache"),
             **{**FIXTURE_LIMITS[cls], **kw})
    dm.use_encoder(Frames(T=T))
    return dm


def test_nmnist_extracted_folder_loads_frames_and_caches(tmp_path, monkeypatch):
    root = write_nmnist(tmp_path / "data")
    dm = make(NMNISTData, root, tmp_path, denoise_us=None)
    assert dm.split_sizes() == {"train": 15, "val": 5, "test": 10}
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (4, 4, 2, 34, 34) and y.tolist() == [0, 1, 2, 3]
    ds = tonic.datasets.NMNIST  # the same sample framed by Tonic directly
    events = tonic.io.read_mnist_file(str(root / "NMNIST/Test/0/00000.bin"), dtype=ds.dtype)
    expected = tonic.transforms.ToFrame(sensor_size=ds.sensor_size, n_time_bins=4)(events)
    assert np.array_equal(x[0].numpy(), expected)
    assert Frames(T=4)(x).shape == (4, 4, 2, 34, 34)  # the learner's step: time-first
    # a second datamodule reads the cache: framing is not called again
    monkeypatch.setattr(NMNISTData, "frames_of", lambda *a: pytest.fail("framed again"))
    again = make(NMNISTData, root, tmp_path, denoise_us=None)
    x2, _ = next(iter(again.test_dataloader()))
    assert torch.equal(x2, x)


def test_nmnist_options_change_the_cache_key(tmp_path):
    root = write_nmnist(tmp_path / "data")
    a = make(NMNISTData, root, tmp_path, first_saccade_only=True, limit_test=2)
    a.setup()
    b = make(NMNISTData, root, tmp_path, first_saccade_only=False, limit_test=2)
    b.setup()
    assert len(list((tmp_path / "cache").glob("nmnistdata-test-*.npy"))) == 2
    assert not np.array_equal(np.asarray(a.splits["test"].frames), np.asarray(b.splits["test"].frames))


def test_missing_files_say_where_and_never_download(tmp_path):
    dm = make(NMNISTData, tmp_path / "empty", tmp_path)
    with pytest.raises(ConfigError, match="dataset.download=true") as e:
        dm.setup()
    assert str(tmp_path / "empty" / "NMNIST") in str(e.value)
    with pytest.raises(ConfigError, match="dataset.root is not set"):
        NMNISTData(root=None).open(True)


def test_static_encoder_on_events_is_refused():
    from snnexp.encoding.poisson import Poisson

    with pytest.raises(ConfigError, match="encoding=frames"):
        NMNISTData(root="x").use_encoder(Poisson(T=4))


def test_dvs_gesture_real_layout(tmp_path):
    root = write_dvs_gesture(tmp_path / "data")
    dm = make(DVSGestureData, root, tmp_path)
    assert dm.split_sizes() == {"train": 16, "val": 6, "test": 11}
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (4, 4, 2, 128, 128) and x.sum() > 0


def test_shd_700_channels_through_the_mlp(tmp_path):
    from snnexp.models.mlp import MLP
    from snnexp.neurons.lif import LIF

    root = write_shd(tmp_path / "data")
    dm = make(SHDData, root, tmp_path)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 4, 1, 700) and dm.in_shape == (1, 700)
    assert x.sum() > 0 and int(y.max()) < 20
    model = MLP(neuron=LIF, in_shape=dm.in_shape, num_classes=dm.num_classes, hidden=[16])
    assert model(Frames(T=4)(x)).shape == (4, 4, 20)
