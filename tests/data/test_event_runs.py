"""End to end: an N-MNIST fixture in the real binary format, and emulated events, train through run()."""
import pytest

from snnexp.experiment import run
from tests.conftest import QUICK
from tests.data.event_files import write_nmnist
from tests.helpers import compose_cfg

EVENT_PLOTS = ["plots/event_frames.png", "plots/event_raster.png", "plots/raster.png"]


def test_nmnist_fixture_trains_one_step(tmp_path):
    root = write_nmnist(tmp_path / "data")
    cfg = compose_cfg(QUICK + ["dataset=nmnist", "encoding=frames", f"dataset.root={root}", "dataset.batch_size=4",
                               "dataset.limit_train=18", "dataset.limit_val=2", "dataset.limit_test=10",
                               f"dataset.cache_dir={tmp_path / 'cache'}", "logger=none", "trainer.limit_train_batches=1"],
                      run_dir=tmp_path / "run")
    results = run(cfg)
    assert 0.0 <= results["test/acc"] <= 1.0 and results["train/epochs"] == 1
    for name in EVENT_PLOTS:
        assert (tmp_path / "run" / name).is_file(), name


@pytest.mark.parametrize("encoding", ["saccade", "flicker", "rotation"])
def test_emulated_events_train(encoding, tmp_path):
    cfg = compose_cfg(QUICK + [f"encoding={encoding}", "logger=none", "dataset.limit_train=64", "dataset.limit_val=16",
                               "dataset.limit_test=16", f"dataset.cache_dir={tmp_path / 'cache'}"], run_dir=tmp_path / "run")
    results = run(cfg)
    assert 0.0 <= results["test/acc"] <= 1.0
    assert list((tmp_path / "cache").glob("digits-train-*.npy"))
    for name in EVENT_PLOTS:
        assert (tmp_path / "run" / name).is_file(), name
