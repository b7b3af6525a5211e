"""Parametric LIF: an LIF whose time constant is learnt, one per layer (Fang et al., ICCV 2021)."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from snnexp.errors import check
from snnexp.neurons.base import MembraneState, Select, SpikingNeuron, affine_coefficients
from snnexp.neurons.lif import LIFParams, lif_charge, lif_step


class PLIF(SpikingNeuron):
    """LIF (`lif_step`) with tau = 1 / sigmoid(w), w a learnable scalar; tau starts at `init_tau`.

    The sigmoid keeps tau > 1 whatever w becomes, as in the paper.
    """

    def __init__(self, init_tau: float = 2.0, decay_input: bool = True, **fire_kwargs):
        super().__init__(**fire_kwargs)
        init_tau = float(init_tau)
        check(init_tau > 1, "neuron.init_tau", init_tau, "must be > 1 (time steps)")
        self.w = nn.Parameter(torch.tensor(-math.log(init_tau - 1)))  # sigmoid(w) = 1 / init_tau
        self.decay_input = bool(decay_input)

    @property
    def tau(self) -> Tensor:
        return 1 / torch.sigmoid(self.w)

    def params(self) -> LIFParams:
        return LIFParams(self.tau, self.decay_input, self.fire_params())

    def step(self, x_t: Tensor, state: MembraneState, select: Select | None = None) -> tuple[Tensor, MembraneState]:
        return lif_step(x_t, state, self.params(), select)

    def charge_coefficients(self) -> tuple[Tensor, Tensor, Tensor]:
        p = self.params()  # the coefficients depend on w through tau: its gradient flows
        return affine_coefficients(lambda v, x_t: lif_charge(v, x_t, p), self.v_threshold)

    def extra_repr(self) -> str:
        return f"tau={self.tau.item():.4g} (learnt), decay_input={self.decay_input}, " + super().extra_repr()
