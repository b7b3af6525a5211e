"""Diehl & Cook (2015): unsupervised digit recognition with STDP, adaptive thresholds and inhibition."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from snnexp.errors import check
from snnexp.rules.stdp import init_weights_
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
    [0, w_init_max]. How they learn is the learner's (learner=stdp: the rule `learner.stdp`, the
    weight sum `learner.norm`, the paper's re-presentation `learner.min_spikes`; their Diehl & Cook
    defaults are in conf/learner/stdp_defaults/diehl_cook.yaml).
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
        prediction: str = "all_activity",
        step_mode: str = "m",
        event_driven: bool = True,
        seed: int = 0,
    ):
        check(int(n_neurons) >= 1, "model.n_neurons", n_neurons, "must be >= 1 (the paper: 100, 400, 1600, 6400)")
        probe = neuron()
        check(isinstance(probe, ALIF), "neuron", type(probe).__name__.lower(),
              "model=diehl_cook needs adaptive thresholds: use neuron=alif (with learner=stdp)")
        check(float(w_init_max) > 0, "model.w_init_max", w_init_max, "must be > 0 (initial weights on [0, w_init_max])")
        n_in, n = math.prod(in_shape), int(n_neurons)
        synapse = nn.Linear(n_in, n, bias=False)
        gen = torch.Generator().manual_seed(int(seed))
        init_weights_(synapse.weight, w_init, 0.0, float(w_init_max), gen)
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
