"""Train and evaluate on the CPU."""
from __future__ import annotations

from typing import Any

import torch

from snnexp.deploy.base import Target
from snnexp.errors import check


class CPUTarget(Target):
    """Lightning on the CPU. num_threads: torch's intra-op threads (null = torch's default).

    On a busy 2-core machine 1 thread can beat 2 (NOTES.md); sweeps run jobs
    side by side with 1 thread each.
    """

    def __init__(self, num_threads: int | None = None):
        check(num_threads is None or int(num_threads) >= 1, "deploy.num_threads", num_threads, "must be null or >= 1")
        self.num_threads = num_threads

    def setup(self) -> None:
        if self.num_threads is not None:
            torch.set_num_threads(int(self.num_threads))

    def trainer_kwargs(self) -> dict[str, Any]:
        return {"accelerator": "cpu"}
