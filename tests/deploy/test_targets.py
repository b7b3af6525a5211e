import pytest
import torch

from snnexp.deploy import CPUTarget, GPUTarget
from snnexp.errors import ConfigError


def test_cpu_target_sets_threads():
    before = torch.get_num_threads()
    try:
        CPUTarget(num_threads=1).setup()
        assert torch.get_num_threads() == 1
        assert CPUTarget().trainer_kwargs()["accelerator"] == "cpu"
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_gpu_target_refuses_without_cuda():
    with pytest.raises(ConfigError, match="use deploy=cpu|Use deploy=cpu"):
        GPUTarget()
