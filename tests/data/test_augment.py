"""Batch augmentation (snnexp.data.augment): every output is the input shifted within the padding
(zero border) and, with flip, possibly mirrored; only training batches are augmented."""
import types

import pytest
import torch

import snnexp
from snnexp.data.augment import CropFlip
from snnexp.data.digits import DigitsData
from snnexp.errors import ConfigError


def _shifted(image, dy, dx, p):
    padded = torch.nn.functional.pad(image, (p, p, p, p))
    h, w = image.shape[-2:]
    return padded[..., p + dy:p + dy + h, p + dx:p + dx + w]


def _which(out, image, p, flip):
    """The (dy, dx, mirrored) that turn `image` into `out`, or None."""
    for mirrored in ((False, True) if flip else (False,)):
        source = image.flip(-1) if mirrored else image
        for dy in range(-p, p + 1):
            for dx in range(-p, p + 1):
                if torch.equal(out, _shifted(source, dy, dx, p)):
                    return dy, dx, mirrored
    return None


def test_each_image_is_a_crop_of_its_padded_self_and_every_shift_and_flip_occurs():
    torch.manual_seed(0)
    images = torch.rand(400, 3, 6, 5) + 0.1  # no zeros inside: a shift is recognisable by its border
    out = CropFlip(padding=2, flip=True, seed=3)(images)
    found = [_which(o, i, 2, True) for o, i in zip(out, images)]
    assert None not in found
    assert {(dy, dx) for dy, dx, _ in found} == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}
    mirrored = sum(m for *_, m in found)
    assert 150 < mirrored < 250  # p = 1/2: 400 draws within 5 standard deviations


def test_the_same_seed_gives_the_same_augmentation_and_another_seed_another():
    images = torch.rand(64, 1, 8, 8)
    a, b, c = (CropFlip(2, True, seed)(images) for seed in (0, 0, 1))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_flip_alone_only_mirrors_and_padding_zero_is_off():
    images = torch.rand(50, 1, 4, 4)
    out = CropFlip(0, True, 0)(images)
    assert all(torch.equal(o, i) or torch.equal(o, i.flip(-1)) for o, i in zip(out, images))
    assert not CropFlip(0, False, 0)


def test_only_training_batches_are_augmented():
    dm = DigitsData(crop_padding=1, flip=True, seed=0)
    x, y = torch.rand(8, 1, 8, 8) + 0.1, torch.arange(8)
    dm.trainer = types.SimpleNamespace(training=False)
    assert dm.on_after_batch_transfer((x, y), 0)[0] is x
    dm.trainer = types.SimpleNamespace(training=True)
    out, labels = dm.on_after_batch_transfer((x, y), 0)
    assert labels is y and not torch.equal(out, x) and out.shape == x.shape


def test_augmenting_images_that_are_converted_to_events_is_refused():
    with pytest.raises(ConfigError, match=r"dataset.crop_padding.*encoding=saccade converts them"):
        snnexp.build(snnexp.compose(["encoding=saccade", "+dataset.crop_padding=2", "deploy.num_threads=1"]))
    with pytest.raises(ConfigError, match=r"dataset.crop_padding"):
        DigitsData(crop_padding=-1)


@pytest.mark.e2e
def test_a_training_run_augments_every_training_batch_and_nothing_else(monkeypatch, tmp_path):
    seen = []
    original = CropFlip.__call__
    monkeypatch.setattr(CropFlip, "__call__", lambda self, x: seen.append(len(x)) or original(self, x))
    results = snnexp.run(["dataset.limit_train=96", "dataset.limit_val=32", "dataset.limit_test=32", "T=2",
                          "dataset.batch_size=32", "trainer.max_epochs=2", "+dataset.crop_padding=1", "+dataset.flip=true",
                          "logger=none", "deploy.num_threads=1", "trainer.enable_progress_bar=false"], run_dir=tmp_path / "run")
    assert seen == [32] * 6  # 3 training batches x 2 epochs; validation and test batches untouched
    assert 0 <= results["test/acc"] <= 1


def test_flip_alone_with_converted_events_names_dataset_flip():
    with pytest.raises(ConfigError, match=r"dataset.flip=True is invalid"):
        snnexp.build(snnexp.compose(["encoding=saccade", "+dataset.flip=true", "deploy.num_threads=1"]))
