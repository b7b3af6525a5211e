"""Adaptive-threshold LIF: every spike raises the neuron's threshold, which then relaxes back."""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from snnexp.errors import check
from snnexp.neurons.base import FireParams, MembraneState, Select, SpikingNeuron
from snnexp.neurons.lif import LIFParams, lif_step


class ALIFState(NamedTuple):
    v: Tensor  # membrane
    theta: Tensor  # threshold increase over v_threshold


class ALIFParams(NamedTuple):
    lif: LIFParams  # membrane dynamics (tau, decay_input) and firing (base threshold, reset)
    tau_theta: float  # time constant of the threshold's decay, in time steps
    theta_plus: float  # threshold increase per spike


def alif_step(x_t: Tensor, state: ALIFState, p: ALIFParams,
              select: Select | None = None) -> tuple[Tensor, ALIFState]:
    """One step of the ALIF neuron (Diehl & Cook 2015's adaptive threshold; Bellec et al. 2018).

    Charge as `lif_step`, fire at the raised threshold, reset, then adapt:
        h = LIF charge of v with x_t
        s = H(h - (v_threshold + theta))          (reset "subtract" removes v_threshold + theta)
        theta <- theta * exp(-1/tau_theta) + theta_plus * s
    Shapes [N, ...]; returns (s_t, new state). Order: charge -> fire -> (select) -> reset -> adapt:
    `select` (k-WTA) removes spikes before they reset or raise theta, so a loser does not adapt. The
    gradient flows through the spike and the raised threshold, not through theta's own update.
    """
    fire = p.lif.fire
    raised = FireParams(fire.v_threshold + state.theta, fire.v_reset, fire.reset, fire.detach_reset, fire.surrogate)
    s, v = lif_step(x_t, MembraneState(state.v), p.lif._replace(fire=raised), select)
    theta = state.theta * math.exp(-1 / p.tau_theta) + p.theta_plus * s.detach()
    return s, ALIFState(v.v, theta)


class ALIF(SpikingNeuron):
    """ALIF layer (`alif_step`). theta starts each sequence at the `theta_rest` buffer (0 at first).

    persistent_theta=True keeps theta across samples as homeostasis (Diehl & Cook): at the end of
    each sequence run in training mode `theta_rest` decays over all the batch's samples and their
    increments are added (as if the samples came one after another); a sequence run in eval mode leaves it
    as it is. The end of a sequence is the end of `run` (multi-step) or, in single-step mode, the
    model's `end_sequence()` call after its last step, so the booking uses the mode the sequence
    ran in. `theta_rest` has one value per neuron and needs `features` (the layer's size) up front.
    """

    def __init__(self, tau: float = 20.0, tau_theta: float = 100.0, theta_plus: float = 0.05,
                 decay_input: bool = True, persistent_theta: bool = False, features: int | None = None,
                 **fire_kwargs):
        super().__init__(**fire_kwargs)
        tau, tau_theta = float(tau), float(tau_theta)
        check(tau > 1, "neuron.tau", tau, "must be > 1 (time steps)")
        check(tau_theta > 0, "neuron.tau_theta", tau_theta, "must be > 0 (time steps)")
        check(float(theta_plus) >= 0, "neuron.theta_plus", theta_plus, "must be >= 0")
        check(not persistent_theta or features is not None, "neuron.persistent_theta", persistent_theta,
              "needs the layer size (features) to keep one theta per neuron")
        self.register_buffer("tau", torch.tensor(tau))
        self.tau_theta = tau_theta
        self.theta_plus = float(theta_plus)
        self.decay_input = bool(decay_input)
        self.persistent_theta = bool(persistent_theta)
        self.register_buffer("theta_rest", torch.zeros(int(features) if features else ()))
        self._steps = 0  # single-step mode: steps since reset(), for end_sequence()

    def params(self) -> ALIFParams:
        return ALIFParams(LIFParams(self.tau, self.decay_input, self.fire_params()), self.tau_theta, self.theta_plus)

    def initial_state(self, x_t: Tensor) -> ALIFState:
        return ALIFState(torch.full_like(x_t, self.v_reset), torch.zeros_like(x_t) + self.theta_rest)

    def step(self, x_t: Tensor, state: ALIFState, select: Select | None = None) -> tuple[Tensor, ALIFState]:
        return alif_step(x_t, state, self.params(), select)

    def run(self, x_seq: Tensor, state: ALIFState | None = None) -> tuple[Tensor, ALIFState]:
        s_seq, state = self.run_loop(x_seq, self.initial_state(x_seq[0]) if state is None else state)
        if self.step_mode == "m":
            self.homeostasis(state, x_seq.shape[0])
        return s_seq, state

    def reset(self) -> None:
        self._steps = 0
        super().reset()

    def end_sequence(self) -> None:
        if self.state is not None and self._steps:
            self.homeostasis(self.state, self._steps)
        self._steps = 0

    def forward(self, x: Tensor) -> Tensor:
        if self.step_mode == "s":
            self._steps += 1
        return super().forward(x)

    @torch.no_grad()
    def homeostasis(self, state: ALIFState, steps: int) -> None:
        """Homeostasis, as if the N samples of the batch came one after another: theta_rest decays over
        N sequences of `steps` steps, and each sample adds its increments (theta_T - theta_rest decayed
        over one sequence). (The increments' own decay during the later samples is left out.)"""
        if not (self.persistent_theta and self.training):
            return
        theta = state.theta.detach().flatten(0, -2)  # [N, features]
        gain = (theta - self.theta_rest * math.exp(-steps / self.tau_theta)).sum(0)  # [features]
        self.theta_rest.copy_(self.theta_rest * math.exp(-theta.shape[0] * steps / self.tau_theta) + gain)

    def extra_repr(self) -> str:
        return (f"tau={float(self.tau):g}, tau_theta={self.tau_theta:g}, theta_plus={self.theta_plus:g}, "
                f"persistent_theta={self.persistent_theta}, " + super().extra_repr())
