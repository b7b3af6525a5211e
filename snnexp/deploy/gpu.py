"""Train and evaluate on CUDA GPUs."""
from __future__ import annotations

from typing import Any

import torch

from snnexp.deploy.base import Target
from snnexp.errors import ConfigError, check


class GPUTarget(Target):
    """Lightning on `devices` CUDA GPUs. Stops at once without CUDA: no silent CPU fallback."""

    def __init__(self, devices: int = 1):
        check(int(devices) >= 1, "deploy.devices", devices, "must be >= 1")
        if not torch.cuda.is_available():
            raise ConfigError(
                f"deploy=gpu needs a CUDA GPU, but torch {torch.__version__} sees none "
                f"(torch.cuda.is_available() is False). Use deploy=cpu, or install a CUDA build of torch.")
        available = torch.cuda.device_count()
        check(int(devices) <= available, "deploy.devices", devices, f"this machine has {available} CUDA device(s)")
        self.devices = int(devices)

    def trainer_kwargs(self) -> dict[str, Any]:
        return {"accelerator": "gpu", "devices": self.devices}
