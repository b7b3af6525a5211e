"""The samples each split holds, pinned: the first indices (into the dataset's pool) of train, val
and test, for a few seeds, computed on main before the datamodules shared one base (issue 26).
A refactor of splits, limits or loaders must keep them."""
import pytest

from snnexp.data.cache import FrameDataset
from snnexp.data.digits import DigitsData
from snnexp.data.events import DVSGestureData, EventDataModule, NMNISTData, SHDData
from snnexp.data.idx import FashionMNISTData
from snnexp.encoding.emulation import Saccade
from snnexp.encoding.frames import Frames
from tests.data.event_files import write_dvs_gesture, write_nmnist, write_shd
from tests.data.test_images import make_idx_set

FIRST = 6  # indices pinned per split


def pool_indices(dm, split: str) -> list[int]:
    """The first indices of `split` into its pool (the official train or test set, or all images):
    for frames, the rows of the converted pool; for images held in memory, the first pool row equal
    to each sample (the pool as load() reads it)."""
    dm.setup()
    ds = dm.splits[split]
    if isinstance(ds, FrameDataset):
        index = ds.index[:FIRST]
        if isinstance(dm, EventDataModule):  # rows of the framed recordings -> recordings of the pool
            _, picked = dm.pools()
            index = picked["train" if split != "test" else "test"][index]
        return [int(i) for i in index]
    arrays = dm.load()
    x_pool = arrays["test" if split == "test" and "test" in arrays else "train"][0]
    rows = {x_pool[i].tobytes(): i for i in range(len(x_pool) - 1, -1, -1)}  # the first of equal rows wins
    return [rows[x.numpy().tobytes()] for x in ds.tensors[0][:FIRST]]


def pins(dm) -> dict[str, list[int]]:
    return {split: pool_indices(dm, split) for split in ("train", "val", "test")}


DIGITS = {
    (0, 0.1): {"train": [1385, 458, 653, 1355, 759, 1712], "val": [54, 755, 5, 347, 851, 1368],
               "test": [1496, 188, 705, 820, 413, 744]},
    (1, 0.1): {"train": [1085, 1237, 165, 592, 1710, 1010], "val": [1661, 142, 1617, 434, 429, 1323],
               "test": [1403, 1354, 1702, 274, 1656, 548]},
    (0, 0.0): {"train": [1346, 295, 257, 385, 1640, 849], "val": [], "test": [1496, 188, 705, 820, 413, 744]},
}


@pytest.mark.parametrize("seed, val_fraction", sorted(DIGITS))
def test_digits_splits_are_pinned(seed, val_fraction):
    assert pins(DigitsData(seed=seed, val_fraction=val_fraction)) == DIGITS[seed, val_fraction]


def test_digits_limits_keep_the_first_of_each_split():
    assert pins(DigitsData(seed=0, limit_train=3, limit_val=2, limit_test=4)) == {
        "train": DIGITS[0, 0.1]["train"][:3], "val": DIGITS[0, 0.1]["val"][:2], "test": DIGITS[0, 0.1]["test"][:4]}


def test_emulated_events_split_a_pinned_prefix(tmp_path):
    dm = DigitsData(seed=0, limit_train=30, limit_val=10, limit_test=10, cache_dir=str(tmp_path))
    dm.use_encoder(Saccade(T=2))
    assert pins(dm) == {"train": [50, 34, 63, 16, 27, 32], "val": [115, 9, 43, 18, 110, 88],
                        "test": [8, 120, 48, 109, 2, 80]}


def test_idx_official_test_in_file_order(tmp_path):
    dm = FashionMNISTData(root=str(make_idx_set(tmp_path / "fm")), seed=3, val_fraction=0.25)
    assert pins(dm) == {"train": [24, 17, 3, 11, 19, 0], "val": [20, 2, 33, 14, 6, 31], "test": [0, 1, 2, 3, 4, 5]}


EVENTS = {
    (NMNISTData, 0): {"train": [0, 1, 3, 5, 7, 8], "val": [2, 4, 6, 13, 19], "test": [0, 1, 2, 3, 4, 5]},
    (NMNISTData, 1): {"train": [0, 2, 3, 4, 5, 6], "val": [1, 7, 10, 16, 18], "test": [0, 1, 2, 3, 4, 5]},
    (DVSGestureData, 2): {"train": [0, 1, 2, 3, 4, 5], "val": [7, 12, 13, 15, 17, 20], "test": [0, 1, 2, 3, 4, 5]},
    (SHDData, 0): {"train": [0, 5, 6, 7, 8, 9], "val": [1, 2, 3, 4, 11, 18], "test": [0, 1, 2, 3, 4, 5]},
}


def event_dm(cls, tmp_path, seed, **kw):
    writer = {NMNISTData: write_nmnist, DVSGestureData: write_dvs_gesture, SHDData: write_shd}[cls]
    dm = cls(root=str(writer(tmp_path / "data")), seed=seed, val_fraction=0.25, cache_dir=str(tmp_path / "cache"),
             denoise_us=None, **kw)
    dm.use_encoder(Frames(T=2))
    return dm


NMNIST_LIMITS = dict(limit_train=15, limit_val=5, limit_test=10)


@pytest.mark.parametrize("seed", [0, 1])
def test_nmnist_splits_are_pinned(tmp_path, seed):
    got = pins(event_dm(NMNISTData, tmp_path, seed, **NMNIST_LIMITS))
    assert got == EVENTS[NMNISTData, seed]


def test_dvs_gesture_splits_are_pinned(tmp_path):
    got = pins(event_dm(DVSGestureData, tmp_path, 2, limit_train=16, limit_val=6, limit_test=11))
    assert got == EVENTS[DVSGestureData, 2]


def test_shd_splits_are_pinned(tmp_path):
    assert pins(event_dm(SHDData, tmp_path, 0)) == EVENTS[SHDData, 0]
