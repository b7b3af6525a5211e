"""Lateral inhibition around any neuron layer: a spike lowers the other neurons' membranes."""
from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from snnexp.errors import check
from snnexp.neurons.base import Homeostatic, Neuron, SpikingNeuron


class InhibitedState(NamedTuple):
    inner: Any  # the wrapped neuron's state (a NamedTuple with a membrane field `v`)
    s: Tensor  # the previous step's spikes [N, features]


def inhibit_step(step, x_t: Tensor, state: InhibitedState, strength: float, k: int | None,
                 rest: float) -> tuple[Tensor, InhibitedState]:
    """One step of a layer with lateral inhibition over its last dimension (features).

    Soft (strength > 0): each neuron's input is lowered by strength times the number of OTHER
    neurons that spiked at the previous step: x_t - strength * (sum(s_prev) - s_prev).
    Hard k-WTA (k given): of the neurons that cross threshold in this step, only the k with the
    largest input current fire; the selection happens inside the neuron's step, after its
    threshold test and before its reset and adaptation, so a loser is not adapted (ALIF's theta
    stays). When any fires, every other neuron's membrane goes to `rest`.
    `step(x_t, inner_state, select) -> (s, inner_state)` is the wrapped neuron's step. Shapes [N, features].
    """
    if strength > 0:
        x_t = x_t - strength * (state.s.sum(-1, keepdim=True) - state.s)
    if k is None:
        s, inner = step(x_t, state.inner)
        return s, InhibitedState(inner, s.detach())
    s, inner = step(x_t, state.inner, lambda s: s * winners(s, x_t, k))
    any_spike = s.detach().amax(-1, keepdim=True) > 0
    losers = any_spike & (s.detach() == 0)
    inner = inner._replace(v=torch.where(losers, torch.full_like(inner.v, rest), inner.v))
    return s, InhibitedState(inner, s.detach())


def winners(s: Tensor, x_t: Tensor, k: int) -> Tensor:
    """Mask [N, features]: 1 for the (at most) k spiking neurons with the largest input current."""
    score = torch.where(s > 0, x_t, torch.full_like(x_t, -torch.inf))  # non-spiking ones rank last
    top = score.topk(min(k, score.shape[-1]), dim=-1).indices
    return torch.zeros_like(s).scatter_(-1, top, 1.0) * (s.detach() > 0)


class LateralInhibition(Neuron):
    """Wraps a neuron layer (`inhibit_step`): soft inhibition of `strength` and/or hard k-WTA.

    Works with any neuron whose state has a membrane `v`; the layer's features are its last
    dimension ([N, features] per step). The wrapped neuron keeps its own parameters and state
    (e.g. ALIF's theta); `neuron` is the instance, reachable as `.neuron`.
    """

    def __init__(self, neuron: SpikingNeuron, strength: float = 0.0, k: int | None = None, step_mode: str = "m"):
        super().__init__(step_mode)
        check(float(strength) >= 0, "model.inhibition", strength, "must be >= 0")
        check(k is None or int(k) >= 1, "model.k_wta", k, "must be null or >= 1 winners per step")
        self.neuron = neuron
        self.strength = float(strength)
        self.k = None if k is None else int(k)
        self._steps = 0  # single-step mode: steps since reset()

    def initial_state(self, x_t: Tensor) -> InhibitedState:
        return InhibitedState(self.neuron.initial_state(x_t), torch.zeros_like(x_t))

    def step(self, x_t: Tensor, state: InhibitedState) -> tuple[Tensor, InhibitedState]:
        return inhibit_step(self.neuron.step, x_t, state, self.strength, self.k, self.neuron.v_reset)

    def run(self, x_seq: Tensor, state: InhibitedState | None = None) -> tuple[Tensor, InhibitedState]:
        s_seq, state = self.run_loop(x_seq, self.initial_state(x_seq[0]) if state is None else state)
        if self.step_mode == "m":
            self._end_sequence(state, x_seq.shape[0])
        return s_seq, state

    def forward(self, x: Tensor) -> Tensor:
        if self.step_mode == "s":
            self._steps += 1
        return super().forward(x)

    def reset(self) -> None:
        self._steps = 0
        super().reset()

    def end_sequence(self) -> None:
        if self.state is not None and self._steps:
            self._end_sequence(self.state, self._steps)
        self._steps = 0

    def _end_sequence(self, state: InhibitedState, steps: int) -> None:
        if isinstance(self.neuron, Homeostatic):  # e.g. ALIF's persistent theta
            self.neuron.homeostasis(state.inner, steps)

    def extra_repr(self) -> str:
        return f"strength={self.strength:g}, k={self.k}"
