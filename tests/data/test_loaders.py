"""Loaders shaped for the device: pinned memory on CUDA (auto), persistent workers; where conversion runs."""
import numpy as np
import pytest
import torch

from snnexp.data.digits import DigitsData
from snnexp.data.loaders import conversion_device, pin
from snnexp.encoding.emulation import Flicker
from snnexp.errors import ConfigError


def test_pin_memory_auto_follows_cuda_and_can_be_forced():
    assert pin(None) == torch.cuda.is_available()
    assert pin(True) is True and pin(False) is False
    assert DigitsData().train_dataloader().pin_memory == torch.cuda.is_available()
    assert DigitsData(pin_memory=False).val_dataloader().pin_memory is False


def test_workers_persist_between_epochs():
    assert DigitsData(num_workers=1).train_dataloader().persistent_workers is True
    assert DigitsData(num_workers=0).train_dataloader().persistent_workers is False


def test_conversion_device_default_and_refusals():
    assert conversion_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert conversion_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="dataset.convert_device"):
        conversion_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            DigitsData(convert_device="cuda").use_encoder(Flicker(T=3))  # at build time, before any work


def test_cpu_conversion_through_the_device_argument_is_the_default_one(tmp_path):
    x = DigitsData().load()["train"][0][:20]
    enc = Flicker(T=3)
    assert np.array_equal(enc.convert(x, device="cpu"), enc.convert(x))
    assert np.array_equal(enc.convert(x, device=torch.device("cpu"), kernel=False), enc.convert(x))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_conversion_runs_on_cuda():
    """On CUDA the torch reference runs there: the same frames up to CUDA's float32 rounding."""
    x = DigitsData().load()["train"][0][:64]
    enc = Flicker(T=4)
    gpu, cpu = enc.convert(x, device="cuda"), enc.convert(x)
    assert gpu.shape == cpu.shape and gpu.dtype == np.uint8
    assert abs(int(gpu.sum()) - int(cpu.sum())) <= 0.01 * cpu.sum()  # a few events move by a rounding
