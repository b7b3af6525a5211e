import torch

from snnexp.data import DigitsData


def test_split_sizes_shapes_and_ranges():
    dm = DigitsData(batch_size=32, seed=0)
    sizes = dm.split_sizes()
    assert sum(sizes.values()) == 1797
    assert sizes["test"] == 360  # 20 % held out
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, *DigitsData.in_shape) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1 and y.max() < DigitsData.num_classes


def test_split_is_deterministic_per_seed_and_disjoint():
    a, b, c = DigitsData(seed=0), DigitsData(seed=0), DigitsData(seed=1)
    for dm in (a, b, c):
        dm.setup()
    assert torch.equal(a.splits["test"].tensors[0], b.splits["test"].tensors[0])
    assert not torch.equal(a.splits["test"].tensors[0], c.splits["test"].tensors[0])
    train = {tuple(r.flatten().tolist()) for r in a.splits["train"].tensors[0]}
    test = [tuple(r.flatten().tolist()) for r in a.splits["test"].tensors[0]]
    # digits has a few duplicate images; the split is by sample, so nearly all test images are unseen
    assert sum(t in train for t in test) < 5


def test_stratified_and_limited():
    dm = DigitsData(limit_train=100, limit_test=50)
    assert dm.split_sizes()["train"] == 100 and dm.split_sizes()["test"] == 50
    full = DigitsData()
    full.setup()
    counts = torch.bincount(full.splits["test"].tensors[1], minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38  # ~36 per class
