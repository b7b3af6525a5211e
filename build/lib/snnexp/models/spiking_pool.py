"""Max-pooling over time for converted SNNs: a gate that passes the input with the largest total so far."""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from snnexp.neurons.base import Neuron


class PoolState(NamedTuple):
    """Running sum of every input unit since the start of the sequence."""

    total: Tensor


def spiking_max_pool_step(x_t: Tensor, state: PoolState, kernel_size: int, stride: int,
                          padding: int) -> tuple[Tensor, PoolState]:
    """One step: total += x_t; per window, pass x_t of the unit whose total is largest.

    Rueckauer et al. 2017 (sec. 2.2.3) gate spikes by each input's firing rate so far; the
    total of a spike input is its spike count, so this is their gate. On currents (a pool before
    the neuron) the total estimates the ANN's pre-activation, so the passed current averages to
    its max-pool. Ties go to the first unit of the window (torch's max_pool2d). Shapes:
    x_t [N, C, H, W] -> [N, C, H', W'].
    """
    total = state.total + x_t
    _, index = F.max_pool2d(total, kernel_size, stride, padding, return_indices=True)
    out = x_t.flatten(2).gather(2, index.flatten(2))  # [N, C, H*W] picked at [N, C, H'*W']
    return out.view_as(index).to(x_t.dtype), PoolState(total)


class SpikingMaxPool2d(Neuron):
    """`spiking_max_pool_step` as a stateful layer (reset per sequence, like the neurons)."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0, step_mode: str = "m"):
        super().__init__(step_mode)
        self.kernel_size = int(kernel_size)
        self.stride = int(stride) if stride is not None else self.kernel_size
        self.padding = int(padding)

    def initial_state(self, x_t: Tensor) -> PoolState:
        return PoolState(torch.zeros_like(x_t))

    def step(self, x_t: Tensor, state: PoolState) -> tuple[Tensor, PoolState]:
        return spiking_max_pool_step(x_t, state, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"step_mode={self.step_mode}")
