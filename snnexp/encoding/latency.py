"""Latency (time-to-first-spike) coding: each pixel fires once, brighter pixels earlier."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from snnexp.errors import check

MAPPINGS = ("linear", "log")


def latency_times(x: Tensor, T: int, mapping: str = "linear", threshold: float = 0.01, tau: float = 5.0) -> Tensor:
    """Spike step of each pixel, as a float tensor shaped like x; +inf where it stays silent.

    x in [0, 1]; a pixel at or below `threshold` never fires.
    linear: t = (1 - x) / (1 - threshold) * (T - 1), rounded: x = 1 fires at step 0.
    log: t = tau * ln(x / (x - threshold)) - tau * ln(1 / (1 - threshold)), the charging time of an
    RC neuron with time constant tau (steps), shifted so that x = 1 fires at step 0; later than
    step T - 1 means silent.
    """
    x = x.clamp(0, 1)
    active = x > threshold
    if mapping == "linear":
        t = torch.round((1 - x) / (1 - threshold) * (T - 1))
    else:
        safe = torch.where(active, x, torch.ones_like(x))
        t = torch.round(tau * torch.log(safe / (safe - threshold)) - tau * math.log(1 / (1 - threshold)))
    return torch.where(active & (t <= T - 1), t, torch.full_like(x, math.inf))


def latency_encode(x: Tensor, T: int, mapping: str = "linear", threshold: float = 0.01, tau: float = 5.0) -> Tensor:
    """[N, ...] intensities -> [T, N, ...] spikes, at most one per pixel (`latency_times`)."""
    t = latency_times(x, T, mapping, threshold, tau)
    steps = torch.arange(T, device=x.device, dtype=x.dtype).view(T, *([1] * x.dim()))
    return (steps == t.unsqueeze(0)).to(x.dtype)


@dataclass(frozen=True)
class Latency:
    """`latency_encode` with fixed parameters; deterministic (the generator is not used)."""

    input_range: ClassVar[tuple[float, float]] = (0.0, 1.0)  # intensities (dataset.normalize=false)

    T: int
    mapping: str = "linear"
    threshold: float = 0.01
    tau: float = 5.0

    def __post_init__(self):
        check(int(self.T) >= 1, "T", self.T, "must be >= 1 time step")
        check(self.mapping in MAPPINGS, "encoding.mapping", self.mapping, f"choose one of {list(MAPPINGS)}")
        check(0 <= self.threshold < 1, "encoding.threshold", self.threshold, "must be in [0, 1)")
        check(self.tau > 0, "encoding.tau", self.tau, "must be > 0 (time steps)")

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return latency_encode(x, int(self.T), self.mapping, self.threshold, self.tau)
