"""Diehl & Cook (2015): unsupervised digit recognition with STDP, adaptive thresholds and inhibition."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from snnexp.errors import check
from snnexp.rules.stdp import Plasticity, STDPParams, check_params, init_weights_, normalise_
from snnexp.models.base import NeuronFactory, SpikingModel
from snnexp.models.readouts import AssignedReadout
from snnexp.neurons.alif import ALIF
from snnexp.neurons.fused.inhibited_alif import LayerEvents, events_of, inhibited_alif_events, supports
from snnexp.neurons.inhibition import LateralInhibition


class DiehlCook(SpikingModel):
    """Poisson input -> Linear(in, n_neurons) -> excitatory ALIF neurons with lateral inhibition
    -> label-assignment readout [T, N, num_classes].

    The paper's inhibitory population (one inhibitory neuron per excitatory neuron, inhibiting all
    the others) is folded into `LateralInhibition`: a spike lowers every other excitatory
    neuron's input at the next step by `inhibition` (or k-WTA with `k_wta`). Excitatory neurons
    come from the `neuron` group, which must be `alif`; `exc` overrides its values for this layer
    (BindsNET's, in mV above rest: threshold 13, tau 100 steps, theta_plus 0.05, theta decaying
    over 1e7 steps and kept across samples). Input weights (mV per input spike) start `w_init` on
    [w_min, w_init_max], stay in [w_min, w_max] and are normalised so each neuron's incoming
    weights sum to `norm` (78.4 for 28x28 inputs; null scales it by inputs / 784).
    `stdp` is the rule of the input weights (the learner reads `plasticity`: rule and norm).
    min_spikes / rate_boost / max_boosts: the paper's presentation protocol (a sample that makes the
    excitatory layer fire fewer than min_spikes spikes is shown again at a higher input rate; the
    paper: 5 spikes, +32 Hz, i.e. +0.032 per 1 ms step); null: every sample is shown once.
    `event_driven`: `run_events` drives the excitatory layer from the active inputs only (C++ kernel,
    `snnexp.neurons.fused.inhibited_alif`; on the CPU without k_wta); false: the dense layers
    (x @ W.T, then the step functions), the reference it equals up to the synapse's summation order.
    """

    learners = ("stdp",)

    def __init__(
        self,
        neuron: NeuronFactory,
        in_shape: Sequence[int],
        num_classes: int,
        n_neurons: int = 100,
        exc: Mapping[str, Any] | None = None,
        inhibition: float = 120.0,
        k_wta: int | None = None,
        w_init: str = "uniform",
        w_init_max: float = 0.3,
        w_min: float = 0.0,
        w_max: float = 1.0,
        norm: float | None = None,
        stdp: Mapping[str, float | str] | None = None,
        prediction: str = "all_activity",
        min_spikes: int | None = None,
        rate_boost: float = 0.032,
        max_boosts: int = 20,
        step_mode: str = "m",
        event_driven: bool = True,
        seed: int = 0,
    ):
        check(int(n_neurons) >= 1, "model.n_neurons", n_neurons, "must be >= 1 (the paper: 100, 400, 1600, 6400)")
        probe = neuron()
        check(isinstance(probe, ALIF), "neuron", type(probe).__name__.lower(),
              "model=diehl_cook needs adaptive thresholds: use neuron=alif (with learner=stdp)")
        n_in, n = math.prod(in_shape), int(n_neurons)
        self.norm = float(norm) if norm is not None else 78.4 * n_in / 784
        check(self.norm > 0, "model.norm", norm, "must be > 0 (sum of each neuron's input weights)")
        rule = check_params(STDPParams(w_min=float(w_min), w_max=float(w_max), **dict(stdp or {})), "model.stdp")
        check(min_spikes is None or int(min_spikes) >= 1, "model.min_spikes", min_spikes, "must be null or >= 1")
        check(float(rate_boost) > 0 and int(max_boosts) >= 1, "model.rate_boost", (rate_boost, max_boosts),
              "rate_boost must be > 0 and max_boosts >= 1")
        self.plasticity = Plasticity(rule, norm=self.norm, min_spikes=None if min_spikes is None else int(min_spikes),
                                     rate_boost=float(rate_boost), max_boosts=int(max_boosts))
        synapse = nn.Linear(n_in, n, bias=False)
        gen = torch.Generator().manual_seed(int(seed))
        init_weights_(synapse.weight, w_init, float(w_min), min(float(w_init_max), float(w_max)), gen)
        normalise_(synapse.weight, self.norm, float(w_max))
        exc_layer = neuron(features=n, persistent_theta=True, **dict(exc or {}))
        layers = [nn.Flatten(), synapse, LateralInhibition(exc_layer, inhibition, k_wta),
                  AssignedReadout(n, num_classes, prediction)]
        super().__init__(layers, step_mode, "spikes")
        self.in_shape = tuple(int(d) for d in in_shape)
        self.event_driven = bool(event_driven)

    @property
    def synapse(self) -> nn.Linear:
        return self.net[1]

    @property
    def excitatory(self) -> LateralInhibition:
        return self.net[2]

    @property
    def readout_layer(self) -> AssignedReadout:
        return self.net[3]

    def spiking_layers(self) -> dict[str, nn.Module]:
        return {"exc": self.excitatory}

    def thresholds(self) -> Tensor:
        """[n] the excitatory neurons' theta, carried across samples (`AdaptiveThresholds`)."""
        return self.excitatory.neuron.theta_rest

    def run_events(self, x_seq: Tensor) -> LayerEvents:
        """x_seq [T, N, *in_shape] -> the excitatory layer's spikes as events (`EventDriven`).

        In training mode the excitatory neurons book the sequence (theta's homeostasis) as in `forward`.
        No module is called, so no forward hook sees the run (the learner counts its activity).
        """
        x = x_seq.flatten(2)  # [T, N, *in_shape] -> [T, N, in]
        if self.event_driven and supports(x, self.excitatory):
            events = inhibited_alif_events(x, self.synapse.weight, self.excitatory)
            self.excitatory.neuron.homeostasis(events.state, x.shape[0])  # a no-op in eval mode
            return events
        drive = nn.functional.linear(x, self.synapse.weight)  # the dense reference: [T, N, in] -> [T, N, n]
        s_seq, state = self.excitatory.run_loop(drive, self.excitatory.initial_state(drive[0]))
        self.excitatory.neuron.homeostasis(state.inner, x.shape[0])
        return events_of(s_seq, state.inner)
