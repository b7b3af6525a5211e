"""End to end: an N-MNIST fixture in the real binary format, and emulated events, train through run()."""
import pytest

from snnexp.experiment import run
from tests.conftest import QUICK
from tests.data.event_files import write_nmnist
from tests.helpers import compose_cfg

pytestmark = pytest.mark.e2e

EVENT_PLOTS = ["plots/event_frames.png", "plots/event_raster.png", "plots/raster.png"]


def test_nmnist_fixture_trains(tmp_path):
    """The fixture's label-dependent column is learnt: 4 epochs over its 36 training samples reach 1.0 on
    the 20 test samples (seeds 0, 1); with shuffled labels 0.2 at most."""
    root = write_nmnist(tmp_path / "data", per_class=2)
    cfg = compose_cfg(QUICK + ["dataset=nmnist", f"dataset.root={root}", "dataset.batch_size=4", "dataset.limit_train=36",
                               "dataset.limit_val=4", "dataset.limit_test=20",
                               f"dataset.cache_dir={tmp_path / 'cache'}", "logger=none", "trainer.max_epochs=4",
                               "trainer.limit_train_batches=1.0", "trainer.limit_test_batches=1.0"],
                      run_dir=tmp_path / "run")
    results = run(cfg)
    assert results["test/acc"] >= 0.6 and results["train/epochs"] == 4, results["test/acc"]
    for name in EVENT_PLOTS:
        assert (tmp_path / "run" / name).is_file(), name


@pytest.mark.parametrize("encoding", ["saccade", "flicker", "rotation"])
def test_emulated_events_train(encoding, tmp_path):
    """3 epochs on 640 emulated digits: 0.41 (rotation) to 0.78 on 64 test digits (seeds 0, 1); chance is 0.1."""
    cfg = compose_cfg(QUICK + [f"encoding={encoding}", "logger=none", "dataset.limit_train=640", "dataset.limit_val=16",
                               "dataset.limit_test=64", f"dataset.cache_dir={tmp_path / 'cache'}", "trainer.max_epochs=3",
                               "trainer.limit_train_batches=1.0", "trainer.limit_test_batches=1.0"],
                      run_dir=tmp_path / "run")
    results = run(cfg)
    assert results["test/acc"] >= 0.3, results["test/acc"]
    assert list((tmp_path / "cache").glob("digitsdata-train-*.npy"))  # <class name>-<pool>-<key hash>
    for name in EVENT_PLOTS:
        assert (tmp_path / "run" / name).is_file(), name
