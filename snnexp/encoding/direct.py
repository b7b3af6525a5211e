"""Direct (analog) coding: the image itself is the input current at every step."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from snnexp.encoding.base import Encoder
from snnexp.errors import check


def direct_encode(x: Tensor, T: int, gain: float = 1.0) -> Tensor:
    """[N, ...] -> [T, N, ...]: x * gain repeated T times (a view when gain == 1, no copy)."""
    x = x if gain == 1.0 else x * gain
    return x.unsqueeze(0).expand(T, *x.shape)


@dataclass(frozen=True)
class Direct(Encoder):
    """`direct_encode` with fixed T; the first layer then learns its own encoding (Fang et al. 2021)."""

    T: int
    gain: float = 1.0

    def __post_init__(self):
        check(int(self.T) >= 1, "T", self.T, "must be >= 1 time step")

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return direct_encode(x, int(self.T), self.gain)
