"""Rate coding: each pixel spikes at each step with probability proportional to its intensity."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from snnexp.encoding.base import Encoder
from snnexp.errors import check


def poisson_encode(x: Tensor, T: int, max_rate: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    """Bernoulli spikes with P(spike at a step) = clamp(x * max_rate, 0, 1).

    x: [N, ...] intensities in [0, 1]; returns [T, N, ...] in x's dtype, drawn on x's device
    from `generator` (which must live there: the same seed then gives the same spikes on that
    device, with no host round trip). The mean over T estimates x * max_rate (Norse's
    poisson_encode, per-step form).
    """
    if generator is not None and generator.device.type != x.device.type:
        raise ValueError(f"poisson_encode: the generator is on {generator.device}, the input on {x.device}; "
                         f"draw from torch.Generator(device=x.device)")
    p = (x * max_rate).clamp_(0, 1)
    u = torch.rand((T, *x.shape), generator=generator, device=x.device, dtype=x.dtype)
    return torch.lt(u, p, out=u)  # 1.0 where u < p, written over u (no bool tensor to convert)


@dataclass(frozen=True)
class Poisson(Encoder):
    """`poisson_encode` with fixed T and max_rate (spikes per step at intensity 1)."""

    input_range: ClassVar[tuple[float, float]] = (0.0, 1.0)  # intensities (dataset.normalize=false)
    rate_coded: ClassVar[bool] = True

    T: int
    max_rate: float = 1.0

    def __post_init__(self):
        check(int(self.T) >= 1, "T", self.T, "must be >= 1 time step")
        check(0 < self.max_rate <= 1, "encoding.max_rate", self.max_rate, "must be in (0, 1] spikes per step")

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return poisson_encode(x, int(self.T), self.max_rate, generator)
