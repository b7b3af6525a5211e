"""The one datamodule base: every dataset refuses the same bad split keys with the same message, and
val_fraction=0 (no validation split) means the same for still images, emulated and recorded events."""
import numpy as np
import pytest

from snnexp.data.cifar10 import CIFAR10Data
from snnexp.data.datamodule import SplitDataModule
from snnexp.data.digits import DigitsData
from snnexp.data.events import DVSGestureData, NMNISTData, SHDData
from snnexp.data.idx import FashionMNISTData, MNISTData
from snnexp.encoding.emulation import Saccade
from snnexp.encoding.frames import Frames
from snnexp.errors import ConfigError
from snnexp.experiment import build
from tests.data.event_files import write_dvs_gesture, write_nmnist, write_shd
from tests.data.test_images import make_idx_set
from tests.helpers import compose_cfg, options

DATAMODULES = [DigitsData, MNISTData, FashionMNISTData, CIFAR10Data, NMNISTData, DVSGestureData, SHDData]

BAD_KEYS = [
    ("batch_size", 0, "dataset.batch_size=0 is invalid: must be >= 1"),
    ("num_workers", -1, "dataset.num_workers=-1 is invalid: must be >= 0"),
    ("val_fraction", 1.0, "dataset.val_fraction=1.0 is invalid: must be in [0, 1) (0: train on the whole"),
    ("val_fraction", -0.1, "dataset.val_fraction=-0.1 is invalid: must be in [0, 1)"),
    ("limit_train", 0, "dataset.limit_train=0 is invalid: must be null or >= 1"),
    ("limit_val", 0, "dataset.limit_val=0 is invalid: must be null or >= 1"),
    ("limit_test", -5, "dataset.limit_test=-5 is invalid: must be null or >= 1"),
]


def test_every_dataset_option_is_a_split_datamodule():
    classes = {type(build_dataset(option)) for option in options("dataset")}
    assert classes == set(DATAMODULES) and all(issubclass(c, SplitDataModule) for c in classes)


def build_dataset(option: str, *overrides: str):
    from hydra.utils import instantiate

    return instantiate(compose_cfg([f"dataset={option}", *overrides]).dataset)


@pytest.mark.parametrize("cls", DATAMODULES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("key, value, message", BAD_KEYS, ids=[f"{k}={v}" for k, v, _ in BAD_KEYS])
def test_every_datamodule_refuses_a_bad_split_key_alike(cls, key, value, message):
    with pytest.raises(ConfigError) as refused:
        cls(**{key: value})  # before any file is read
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize("option", ["digits", "nmnist"])
def test_a_bad_val_fraction_is_refused_by_build(option):
    """Through snnexp's build, in-process: the same one message for still images and recorded events."""
    with pytest.raises(ConfigError, match=r"dataset\.val_fraction=1\.5 is invalid: must be in \[0, 1\)"):
        build(compose_cfg([f"dataset={option}", "dataset.val_fraction=1.5"]))


def no_validation(dm) -> dict[str, int]:
    sizes = dm.split_sizes()
    assert len(dm.val_dataloader()) == 0  # an empty loader: Lightning runs no validation
    return sizes


def test_val_fraction_zero_trains_on_every_training_image():
    dm = DigitsData(val_fraction=0, limit_val=7)  # limit_val has nothing to limit
    assert no_validation(dm) == {"train": 1437, "val": 0, "test": 360}  # 1,797 images, 20 % held out for test
    split = DigitsData(val_fraction=0.1)  # the same test split: its train and val together are the training part
    split.setup()

    def rows(*datasets):
        return sorted(x.numpy().tobytes() for ds in datasets for x in ds.tensors[0])

    assert rows(dm.splits["train"]) == rows(split.splits["train"], split.splits["val"])
    assert rows(dm.splits["test"]) == rows(split.splits["test"])


def test_val_fraction_zero_with_an_official_test_split(tmp_path):
    dm = FashionMNISTData(root=str(make_idx_set(tmp_path / "fm")), val_fraction=0)
    assert no_validation(dm) == {"train": 40, "val": 0, "test": 20}


@pytest.mark.parametrize("cls, writer, sizes", [(NMNISTData, write_nmnist, (20, 10)),
                                                (DVSGestureData, write_dvs_gesture, (22, 11)),
                                                (SHDData, write_shd, (40, 20))], ids=["nmnist", "dvs_gesture", "shd"])
def test_val_fraction_zero_for_recorded_events(tmp_path, cls, writer, sizes):
    """Every training recording trains, in file order; limits still apply, and limit_train alone picks
    the recordings to frame (limit_val has nothing to fill)."""
    root = str(writer(tmp_path / "data"))
    kw = dict(root=root, val_fraction=0, denoise_us=None, cache_dir=str(tmp_path / "cache"))
    limits = dict(limit_train=sizes[0], limit_test=sizes[1]) if cls is not SHDData else {}
    dm = cls(**kw, **limits)
    dm.use_encoder(Frames(T=2))
    assert no_validation(dm) == {"train": sizes[0], "val": 0, "test": sizes[1]}
    assert dm.splits["train"].index.tolist() == list(range(sizes[0]))
    fewer = cls(**kw, limit_train=5, limit_val=3, limit_test=2)
    fewer.use_encoder(Frames(T=2))
    assert no_validation(fewer) == {"train": 5, "val": 0, "test": 2}
    if cls is not SHDData:  # one file per recording: only the 5 the limits need are framed
        assert len(fewer.pools()[1]["train"]) == 5


def test_val_fraction_zero_emulated_events_convert_only_the_prefix_the_limits_need(tmp_path):
    dm = DigitsData(val_fraction=0, limit_train=30, limit_test=10, cache_dir=str(tmp_path))
    dm.use_encoder(Saccade(T=2))
    assert no_validation(dm) == {"train": 30, "val": 0, "test": 10}
    (cache,) = tmp_path.glob("*.npy")
    assert len(np.load(cache)) < 400  # a stratified prefix of the 1,797 images, not all of them
