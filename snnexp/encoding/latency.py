"""Latency (time-to-first-spike) coding: each pixel fires once, brighter pixels earlier."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from snnexp.encoding.base import Encoder
from snnexp.errors import check

MAPPINGS = ("linear", "log")


def log_tau(T: int, threshold: float, tau: float | None) -> float:
    """The log mapping's time constant in steps: `tau`, or for tau=None the one that fits the window,
    (T - 1) / ln(1 / threshold), so that the dimmest pixel that fires does so at the last step."""
    return float(tau) if tau is not None else (T - 1) / math.log(1.0 / threshold)


def latency_times(x: Tensor, T: int, mapping: str = "linear", threshold: float = 0.01,
                  tau: float | None = None) -> Tensor:
    """Spike step of each pixel, as a float tensor shaped like x (on its device); +inf where it stays silent.

    x in [0, 1]; a pixel at or below `threshold` never fires, nor does one later than step T - 1.
    linear: t = (1 - x) / (1 - threshold) * (T - 1), rounded: x = 1 fires at step 0.
    log: t = tau * ln(1 / x), rounded: an RC time-to-first-spike code. The neuron's threshold is a
    capacitor discharging through a resistor, theta(t) = exp(-t / tau) from 1, and a pixel of
    intensity x fires when theta(t) falls to x; so every factor e of intensity costs tau steps
    (brighter pixels early, intensity resolved in proportion, as the eye's log response). With
    tau=None it fits the window (`log_tau`): x = 1 at step 0, x just above threshold at step T - 1.
    (The charging form, t = tau * ln(x / (x - threshold)) ~ tau * threshold / x, fired every pixel
    brighter than 0.1 at step 0 with threshold 0.01 and tau = 5: it can only spread intensities
    within a few times the threshold.)
    """
    x = x.clamp(0, 1)
    active = x > threshold
    if mapping == "linear":
        t = torch.round((1 - x) / (1 - threshold) * (T - 1))
    else:
        safe = torch.where(active, x, torch.ones_like(x))
        t = torch.round(-log_tau(T, threshold, tau) * torch.log(safe))
    return torch.where(active & (t <= T - 1), t, torch.full_like(x, math.inf))


def latency_encode(x: Tensor, T: int, mapping: str = "linear", threshold: float = 0.01,
                   tau: float | None = None) -> Tensor:
    """[N, ...] intensities -> [T, N, ...] spikes on x's device, at most one per pixel (`latency_times`)."""
    t = latency_times(x, T, mapping, threshold, tau)
    steps = torch.arange(T, device=x.device, dtype=x.dtype).view(T, *([1] * x.dim()))
    return (steps == t.unsqueeze(0)).to(x.dtype)


@dataclass(frozen=True)
class Latency(Encoder):
    """`latency_encode` with fixed parameters; deterministic (the generator is not used)."""

    input_range: ClassVar[tuple[float, float]] = (0.0, 1.0)  # intensities (dataset.normalize=false)

    T: int
    mapping: str = "linear"
    threshold: float = 0.01
    tau: float | None = None

    def __post_init__(self):
        check(int(self.T) >= 1, "T", self.T, "must be >= 1 time step")
        check(self.mapping in MAPPINGS, "encoding.mapping", self.mapping, f"choose one of {list(MAPPINGS)}")
        check(0 <= self.threshold < 1, "encoding.threshold", self.threshold, "must be in [0, 1)")
        check(self.tau is None or self.tau > 0, "encoding.tau", self.tau,
              "must be > 0 (time steps), or null to fit the log mapping to the T steps")
        check(self.mapping != "log" or self.tau is not None or self.threshold > 0, "encoding.threshold",
              self.threshold, "must be > 0 for mapping=log with tau=null (the dimmest pixel that fires sets the window)")

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return latency_encode(x, int(self.T), self.mapping, self.threshold, self.tau)
