"""Train and evaluate on the CPU."""
from __future__ import annotations

from typing import Any, Literal

import torch

from snnexp.deploy.base import Target
from snnexp.errors import check
from snnexp.threads import auto_threads


class CPUTarget(Target):
    """Lightning on the CPU. num_threads: torch's intra-op threads: `auto` (the default) the CPUs this
    process may use and that no other process keeps busy (snnexp.threads), a number, or null for
    torch's own default (one per core of the machine)."""

    def __init__(self, num_threads: int | Literal["auto"] | None = "auto"):
        check(num_threads in (None, "auto") or int(num_threads) >= 1, "deploy.num_threads", num_threads,
              "must be auto, null or >= 1")
        self.num_threads = num_threads

    def setup(self) -> None:
        if self.num_threads == "auto":
            torch.set_num_threads(auto_threads())
        elif self.num_threads is not None:
            torch.set_num_threads(int(self.num_threads))

    def trainer_kwargs(self) -> dict[str, Any]:
        return {"accelerator": "cpu"}
