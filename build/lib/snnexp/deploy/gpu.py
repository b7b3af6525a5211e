"""Train and evaluate on CUDA GPUs."""
from __future__ import annotations

from typing import Any

import torch

from snnexp.deploy.base import Target
from snnexp.errors import ConfigError


class GPUTarget(Target):
    """Lightning on CUDA GPUs (how many: trainer.devices). Stops at once without CUDA: no silent CPU fallback."""

    def __init__(self):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"deploy=gpu needs a CUDA GPU, but torch {torch.__version__} sees none "
                f"(torch.cuda.is_available() is False). Use deploy=cpu, or install a CUDA build of torch.")

    def trainer_kwargs(self) -> dict[str, Any]:
        return {"accelerator": "gpu"}
