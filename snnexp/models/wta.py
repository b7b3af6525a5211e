"""A supervised winner-take-all network trained by STDP with a teacher signal (hardware-efficient)."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from snnexp.errors import check
from snnexp.rules.stdp import init_weights_
from snnexp.models.base import ClassThresholds, NeuronFactory, SpikingModel
from snnexp.network.layers import Voting
from snnexp.network.layers import Gain
from snnexp.neurons.inhibition import LateralInhibition


class WTA(SpikingModel, ClassThresholds):
    """Input spikes -> Linear(in, K * per_class) -> per-class threshold -> neurons with lateral
    inhibition (-> Voting over each class's `per_class` neurons) -> [T, N, K].

    Output neuron j belongs to class j // per_class. Weights start `w_init` on [0, w_init_max].
    During training (learner=stdp) a teacher makes the correct class's neurons fire
    `learner.teacher_spikes` times per sample and STDP (`learner.stdp`, each output's input weights
    summed to at most `learner.norm`: conf/learner/stdp_defaults/wta.yaml) shapes each class's
    weights into its pattern. Each class c gets its own threshold theta_c = threshold * A_c, A_c the mean
    number of input spikes per step of its training images (`set_class_activity`): the synaptic
    current is divided by theta_c (a `Gain`), which for IF/LIF neurons with v_reset = 0 is the
    same as firing at theta_c, so dense classes (8) do not drown sparse ones (1).
    `inhibition`: a spike lowers the other outputs' input at the next step; `k_wta`: hard
    winners per step (1: classic WTA; null: off).
    """

    learners = ("stdp",)

    def __init__(
        self,
        neuron: NeuronFactory,
        in_shape: Sequence[int],
        num_classes: int,
        per_class: int = 1,
        threshold: float = 0.5,
        w_init: str = "uniform",
        w_init_max: float = 1.0,
        inhibition: float = 0.0,
        k_wta: int | None = 1,
        step_mode: str = "m",
        seed: int = 0,
    ):
        check(int(per_class) >= 1, "model.per_class", per_class, "must be >= 1 output neurons per class")
        check(float(threshold) > 0, "model.threshold", threshold, "must be > 0")
        check(float(w_init_max) > 0, "model.w_init_max", w_init_max, "must be > 0 (initial weights on [0, w_init_max])")
        n_in, n_out = math.prod(in_shape), int(num_classes) * int(per_class)
        self.per_class = int(per_class)
        self.threshold = float(threshold)
        synapse = nn.Linear(n_in, n_out, bias=False)
        init_weights_(synapse.weight, w_init, 0.0, float(w_init_max), torch.Generator().manual_seed(int(seed)))
        layers = [nn.Flatten(), synapse, Gain(n_out), LateralInhibition(neuron(), inhibition, k_wta)]
        if self.per_class > 1:
            layers.append(Voting(self.per_class))
        super().__init__(layers, step_mode, "spikes")
        self.in_shape = tuple(int(d) for d in in_shape)
        self.set_class_activity(torch.ones(int(num_classes)))

    @property
    def synapse(self) -> nn.Linear:
        return self.net[1]

    @property
    def output(self) -> LateralInhibition:
        return self.net[3]

    @torch.no_grad()
    def set_class_activity(self, activity: Tensor) -> None:
        """activity [K]: mean input spikes per step of each class's training images -> thresholds."""
        theta = self.threshold * activity.to(self.net[2].gain).clamp(min=1e-6)  # [K]
        self.net[2].gain.copy_((1 / theta).repeat_interleave(self.per_class))

    def class_thresholds(self) -> Tensor:
        return 1 / self.net[2].gain[:: self.per_class]

    def spiking_layers(self) -> dict[str, nn.Module]:
        return {"out": self.output}
