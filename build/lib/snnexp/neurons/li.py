"""Leaky integrator: a non-spiking readout whose membrane is the network's output."""
from __future__ import annotations

import torch
from torch import Tensor

from snnexp.errors import check
from snnexp.neurons.base import MembraneState, Neuron


def li_step(x_t: Tensor, state: MembraneState, tau: Tensor | float) -> tuple[Tensor, MembraneState]:
    """v = v + (x_t - v) / tau; returns (v, state). No threshold, no reset. Shapes [N, ...]."""
    v = state.v + (x_t - state.v) / tau
    return v, MembraneState(v)


class LI(Neuron):
    """Leaky-integrator readout (`li_step`): outputs its membrane, [T, N, K] for a [T, N, K] input."""

    def __init__(self, tau: float = 2.0, step_mode: str = "m"):
        super().__init__(step_mode)
        tau = float(tau)
        check(tau >= 1, "model.readout_tau", tau, "must be >= 1 (time steps; 1 = no memory)")
        self.register_buffer("tau", torch.tensor(tau))

    def initial_state(self, x_t: Tensor) -> MembraneState:
        return MembraneState(torch.zeros_like(x_t))

    def step(self, x_t: Tensor, state: MembraneState) -> tuple[Tensor, MembraneState]:
        return li_step(x_t, state, self.tau)

    def extra_repr(self) -> str:
        return f"tau={float(self.tau):g}"
