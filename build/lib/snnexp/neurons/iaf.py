"""Integrate-and-fire neuron (no leak). Named iaf.py because `if` is a Python keyword."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from snnexp.neurons.base import FireParams, MembraneState, Select, SpikingNeuron, fire_and_reset


class IFParams(NamedTuple):
    fire: FireParams


def iaf_step(x_t: Tensor, state: MembraneState, p: IFParams,
             select: Select | None = None) -> tuple[Tensor, MembraneState]:
    """One step of the IF neuron: h = v + x_t, then s = H(h - v_threshold), v = reset(h, s).

    With reset by subtraction its firing rate times the threshold tends to
    ReLU(x) for constant x (Rueckauer et al. 2017). Shapes [N, ...].
    """
    s, v = fire_and_reset(state.v + x_t, p.fire, select)
    return s, MembraneState(v)


class IF(SpikingNeuron):
    """IF layer; the dynamics are `iaf_step`'s. Arguments: `SpikingNeuron`."""

    def params(self) -> IFParams:
        return IFParams(self.fire_params())

    def step(self, x_t: Tensor, state: MembraneState, select: Select | None = None) -> tuple[Tensor, MembraneState]:
        return iaf_step(x_t, state, self.params(), select)

    def charge_coefficients(self) -> tuple[Tensor, Tensor, Tensor]:
        one = torch.ones((), dtype=self.v_threshold.dtype, device=self.v_threshold.device)
        return one, one, one * 0
