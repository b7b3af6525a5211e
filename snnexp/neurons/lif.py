"""Leaky integrate-and-fire neuron."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from snnexp.errors import check
from snnexp.neurons.base import FireParams, MembraneState, Select, SpikingNeuron, affine_coefficients, fire_and_reset


class LIFParams(NamedTuple):
    tau: Tensor | float  # membrane time constant, in time steps (> 1)
    decay_input: bool
    fire: FireParams


def lif_step(x_t: Tensor, state: MembraneState, p: LIFParams,
             select: Select | None = None) -> tuple[Tensor, MembraneState]:
    """One step of the discrete-time LIF neuron (SpikingJelly's LIFNode; Gerstner et al. 2014, ch. 1).

    Charge, with tau in steps and x_t the input current:
        decay_input:     h = v + (x_t - (v - v_reset)) / tau
        not decay_input: h = v - (v - v_reset) / tau + x_t
    then fire and reset (`fire_and_reset`): s = H(h - v_threshold), v = reset(h, s).
    Shapes: x_t and state.v are [N, ...]; returns (s_t, new state), same shape.
    """
    s, v = fire_and_reset(lif_charge(state.v, x_t, p), p.fire, select)
    return s, MembraneState(v)


def lif_charge(v: Tensor, x_t: Tensor, p: LIFParams) -> Tensor:
    """`lif_step`'s charge h(v, x_t); affine in (v, x_t), so the fused path reads its coefficients off it."""
    if p.decay_input:
        return v + (x_t - (v - p.fire.v_reset)) / p.tau
    return v - (v - p.fire.v_reset) / p.tau + x_t


class LIF(SpikingNeuron):
    """LIF layer; the dynamics are `lif_step`'s. Firing/reset arguments: `SpikingNeuron`."""

    def __init__(self, tau: float = 2.0, decay_input: bool = True, **fire_kwargs):
        super().__init__(**fire_kwargs)
        tau = float(tau)
        check(tau > 1, "neuron.tau", tau, "must be > 1 (time steps; tau = 2 halves the gap to v_reset each step)")
        self.register_buffer("tau", torch.tensor(tau))
        self.decay_input = bool(decay_input)

    def params(self) -> LIFParams:
        return LIFParams(self.tau, self.decay_input, self.fire_params())

    def step(self, x_t: Tensor, state: MembraneState, select: Select | None = None) -> tuple[Tensor, MembraneState]:
        return lif_step(x_t, state, self.params(), select)

    def charge_coefficients(self) -> tuple[Tensor, Tensor, Tensor]:
        p = self.params()
        return affine_coefficients(lambda v, x_t: lif_charge(v, x_t, p), self.v_threshold)

    def extra_repr(self) -> str:
        return f"tau={float(self.tau):g}, decay_input={self.decay_input}, " + super().extra_repr()

