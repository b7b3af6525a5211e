"""Train and evaluate on CUDA GPUs."""
from __future__ import annotations

from typing import Any, Literal

import torch

from snnexp.deploy.cpu import CPUTarget
from snnexp.errors import ConfigError


class GPUTarget(CPUTarget):
    """Lightning on CUDA GPUs (how many: trainer.devices). Stops at once without CUDA: no silent CPU fallback.

    num_threads: torch's intra-op CPU threads (data loading and host-side work), as for deploy=cpu, so a
    preset's `deploy.num_threads` holds with deploy=gpu too. An option neither target takes is refused
    by name before anything is built (snnexp.typecheck). cudnn_benchmark: let cuDNN time its convolution
    algorithms on the first batch of each shape and keep the fastest (shapes are fixed within a run; the
    choice can differ between runs, so set it false where bit-equal reruns matter).
    """

    def __init__(self, num_threads: int | Literal["auto"] | None = "auto", cudnn_benchmark: bool = True):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"deploy=gpu needs a CUDA GPU, but torch {torch.__version__} sees none "
                f"(torch.cuda.is_available() is False). Use deploy=cpu, or install a CUDA build of torch.")
        super().__init__(num_threads)
        self.cudnn_benchmark = bool(cudnn_benchmark)

    def setup(self) -> None:
        super().setup()
        torch.backends.cudnn.benchmark = self.cudnn_benchmark

    def trainer_kwargs(self) -> dict[str, Any]:
        return {"accelerator": "gpu"}
