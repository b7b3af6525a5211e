"""Integrate-and-fire neuron (no leak). Named iaf.py because `if` is a Python keyword."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from snnexp.errors import check
from snnexp.neurons.base import FireParams, MembraneState, Select, SpikingNeuron, affine_coefficients, fire_and_reset


class IFParams(NamedTuple):
    fire: FireParams


def iaf_step(x_t: Tensor, state: MembraneState, p: IFParams,
             select: Select | None = None) -> tuple[Tensor, MembraneState]:
    """One step of the IF neuron: h = v + x_t, then s = H(h - v_threshold), v = reset(h, s).

    With reset by subtraction its firing rate times the threshold tends to
    ReLU(x) for constant x (Rueckauer et al. 2017). Shapes [N, ...].
    """
    s, v = fire_and_reset(iaf_charge(state.v, x_t), p.fire, select)
    return s, MembraneState(v)


def iaf_charge(v: Tensor, x_t: Tensor) -> Tensor:
    """`iaf_step`'s charge: h = v + x_t (the fused path reads its coefficients off it)."""
    return v + x_t


class IF(SpikingNeuron):
    """IF layer; the dynamics are `iaf_step`'s. Arguments: `SpikingNeuron`, and

    v_init: the membrane at the start of every sequence (default: v_reset). Converted QCFS
    networks start at v_threshold / 2 (Bu et al. 2022), so T steps round instead of flooring.
    """

    def __init__(self, *args, v_init: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.v_init = self.v_reset if v_init is None else float(v_init)
        check(self.v_init < float(self.v_threshold.detach()), "neuron.v_init", v_init, "must be below neuron.v_threshold")

    def initial_state(self, x_t: Tensor) -> MembraneState:
        return MembraneState(torch.full_like(x_t, self.v_init))

    def params(self) -> IFParams:
        return IFParams(self.fire_params())

    def step(self, x_t: Tensor, state: MembraneState, select: Select | None = None) -> tuple[Tensor, MembraneState]:
        return iaf_step(x_t, state, self.params(), select)

    def charge_coefficients(self) -> tuple[Tensor, Tensor, Tensor]:
        return affine_coefficients(iaf_charge, self.v_threshold)
