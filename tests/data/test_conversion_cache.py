"""Converted datasets: converted once per dataset (not per seed), keyed by the converting code, robust to a bad file."""
import importlib
import logging
import sys

import numpy as np
import pytest
import torch

from snnexp.data.cache import cached_array, code_version
from snnexp.data.digits import DigitsData
from snnexp.data.events import NMNISTData
from snnexp.encoding.emulation import Saccade
from snnexp.encoding.frames import Frames
from snnexp.encoding.latency import Latency
from snnexp.encoding.poisson import Poisson
from snnexp.errors import ConfigError
from tests.data.event_files import write_nmnist


def digits(tmp_path, seed, **kw):
    dm = DigitsData(seed=seed, cache_dir=str(tmp_path / "cache"), **kw)
    dm.use_encoder(Saccade(T=3))
    dm.setup()
    return dm


def test_every_seed_reads_the_one_conversion(tmp_path, monkeypatch):
    a = digits(tmp_path, seed=0)
    files = sorted((tmp_path / "cache").glob("*.npy"))
    assert [f.name.split("-")[0] for f in files] == ["digitsdata"] and files[0].with_suffix(".json").is_file()
    monkeypatch.setattr(Saccade, "convert", lambda *a, **k: pytest.fail("converted again for another seed"))
    b = digits(tmp_path, seed=1)
    assert sorted((tmp_path / "cache").glob("*.npy")) == files
    # other splits, the same frames: each sample is its image's row of the one conversion
    assert not np.array_equal(a.splits["test"].index, b.splits["test"].index)
    frames = np.load(files[0])
    x, _ = b.splits["val"][3]
    assert torch.equal(x, torch.from_numpy(frames[b.splits["val"].index[3]]))


def test_split_matches_the_unconverted_dataset(tmp_path):
    """Converted or not, a seed's splits hold the same images (the split is drawn the same way)."""
    plain = DigitsData(seed=4)
    plain.setup()
    converted = digits(tmp_path, seed=4)
    images = DigitsData().load()["train"][0]
    for split in ("train", "val", "test"):
        rows = converted.splits[split].index[:5]
        assert torch.equal(plain.splits[split].tensors[0][:5], torch.from_numpy(images[rows]))


def test_limited_runs_convert_one_seed_independent_prefix(tmp_path, monkeypatch):
    limits = dict(limit_train=30, limit_val=10, limit_test=10)
    a = digits(tmp_path, seed=0, **limits)
    (file,) = (tmp_path / "cache").glob("*.npy")
    prefix = len(np.load(file))
    assert 50 <= prefix < 400  # far fewer than the 1,797 images
    monkeypatch.setattr(Saccade, "convert", lambda *a, **k: pytest.fail("converted again"))
    b = digits(tmp_path, seed=1, **limits)
    assert {k: len(v) for k, v in b.splits.items()} == {"train": 30, "val": 10, "test": 10}
    assert max(ds.index.max() for ds in (*a.splits.values(), *b.splits.values())) < prefix


@pytest.mark.parametrize("damage", [lambda p: p.write_bytes(p.read_bytes()[:-1000]),  # truncated
                                    lambda p: p.write_bytes(b"not a numpy file at all"),  # corrupt header
                                    lambda p: np.save(p, np.zeros((2, 2), np.uint8))])  # another array
def test_a_bad_cache_file_is_converted_again_with_a_warning(tmp_path, caplog, damage):
    calls = []

    def make():
        calls.append(1)
        return np.arange(6000, dtype=np.uint8).reshape(60, 100)

    first = np.array(cached_array(tmp_path, "x", {"k": "v"}, make, shape=(60, 100)))
    (path,) = tmp_path.glob("x-*.npy")
    damage(path)
    with caplog.at_level(logging.WARNING):
        again = cached_array(tmp_path, "x", {"k": "v"}, make, shape=(60, 100))
    assert np.array_equal(again, first) and len(calls) == 2
    assert str(path) in caplog.text and "converting again" in caplog.text


def test_an_unwritable_cache_folder_is_a_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(ConfigError, match="dataset.cache_dir") as e:
        cached_array(blocker / "cache", "x", {"k": "v"}, lambda: np.zeros(3, np.uint8))
    assert str(blocker) in str(e.value)


def test_code_version_follows_the_source(tmp_path, monkeypatch):
    """Editing the converting code changes the key by itself (a module named snnexp* counts)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    module = tmp_path / "snnexp_tmp_converter.py"
    module.write_text("class Conv:\n    def convert(self, x):\n        return x + 1\n")
    import snnexp_tmp_converter as m

    before = code_version(m.Conv(), Saccade(T=3))
    assert before == code_version(m.Conv(), Saccade(T=3))
    module.write_text("class Conv:\n    def convert(self, x):\n        return x + 2\n")
    importlib.reload(m)
    assert code_version(m.Conv(), Saccade(T=3)) != before
    sys.modules.pop("snnexp_tmp_converter")
    # the emulation's own code is in its version: dvs.py and the compiled kernel reach it
    reached = code_version.__globals__["_snnexp_modules"]([sys.modules["snnexp.encoding.emulation"]])
    assert {"snnexp.encoding.dvs", "snnexp.encoding.dvs_cpu"} <= {mod.__name__ for mod in reached}


def test_recorded_events_framed_once_for_every_seed(tmp_path, monkeypatch):
    root = write_nmnist(tmp_path / "data")
    kw = dict(root=str(root), cache_dir=str(tmp_path / "cache"), val_fraction=0.25, limit_train=15, limit_val=5,
              limit_test=10, denoise_us=None)
    a = NMNISTData(seed=0, **kw)
    a.use_encoder(Frames(T=4))
    a.setup()
    monkeypatch.setattr(NMNISTData, "frames_of", lambda *a: pytest.fail("framed again for another seed"))
    b = NMNISTData(seed=1, **kw)
    b.use_encoder(Frames(T=4))
    b.setup()
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2  # the train and the test recordings
    assert not np.array_equal(a.splits["val"].index, b.splits["val"].index)


@pytest.mark.parametrize("encoder", [Poisson(T=4), Latency(T=4, mapping="log"), Saccade(T=4)])
def test_normalize_with_an_encoder_that_needs_intensities_is_refused_before_loading(encoder, monkeypatch):
    dm = DigitsData(normalize=True)
    monkeypatch.setattr(DigitsData, "load", lambda self: pytest.fail("loaded the data first"))
    with pytest.raises(ConfigError, match="dataset.normalize=true is invalid with encoding=") as e:
        dm.use_encoder(encoder)
    assert type(encoder).__name__.lower() in str(e.value) and "encoding=direct" in str(e.value)


def test_normalize_with_direct_is_fine():
    from snnexp.encoding.direct import Direct

    dm = DigitsData(normalize=True)
    assert isinstance(dm.use_encoder(Direct(T=2)), Direct)
