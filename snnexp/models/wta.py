"""A supervised winner-take-all network trained by STDP with a teacher signal (hardware-efficient)."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from snnexp.errors import check
from snnexp.rules.stdp import Plasticity, STDPParams, check_params, init_weights_, normalise_
from snnexp.models.base import ClassThresholds, NeuronFactory, SpikingModel
from snnexp.network.layers import Voting
from snnexp.network.layers import Gain
from snnexp.neurons.inhibition import LateralInhibition


class WTA(SpikingModel, ClassThresholds):
    """Input spikes -> Linear(in, K * per_class) -> per-class threshold -> neurons with lateral
    inhibition (-> Voting over each class's `per_class` neurons) -> [T, N, K].

    Output neuron j belongs to class j // per_class. During training a teacher makes the correct
    class's neurons fire `teacher_spikes` times per sample and STDP (`stdp`, weights in
    [w_min, w_max], init `w_init` on [w_min, w_init_max or w_max], each output's input weights summed to `norm`, by default half the inputs, or with `norm_cap`
    at most `norm`, so weights of pixels a class never uses are not inflated) shapes each class's weights
    into its pattern. Each class c gets its own threshold theta_c = threshold * A_c, A_c the mean
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
        w_init_max: float | None = None,
        w_min: float = 0.0,
        w_max: float = 1.0,
        norm: float | None = None,
        norm_cap: bool = True,
        teacher_spikes: int = 4,
        stdp: Mapping[str, float | str] | None = None,
        inhibition: float = 0.0,
        k_wta: int | None = 1,
        step_mode: str = "m",
        seed: int = 0,
    ):
        check(int(per_class) >= 1, "model.per_class", per_class, "must be >= 1 output neurons per class")
        check(float(threshold) > 0, "model.threshold", threshold, "must be > 0")
        check(int(teacher_spikes) >= 1, "model.teacher_spikes", teacher_spikes, "must be >= 1 spikes per sample")
        check(norm is None or float(norm) > 0, "model.norm", norm, "must be null (inputs / 2) or > 0")
        n_in, n_out = math.prod(in_shape), int(num_classes) * int(per_class)
        self.per_class = int(per_class)
        self.threshold = float(threshold)
        self.teacher_spikes = int(teacher_spikes)
        self.norm = n_in / 2 if norm is None else float(norm)
        self.norm_cap = bool(norm_cap)
        rule = check_params(STDPParams(w_min=float(w_min), w_max=float(w_max), **dict(stdp or {})), "model.stdp")
        self.plasticity = Plasticity(rule, norm=self.norm, norm_cap=self.norm_cap, teacher_spikes=self.teacher_spikes)
        synapse = nn.Linear(n_in, n_out, bias=False)
        w_hi = float(w_max) if w_init_max is None else min(float(w_init_max), float(w_max))
        init_weights_(synapse.weight, w_init, float(w_min), w_hi, torch.Generator().manual_seed(int(seed)))
        if not self.norm_cap:
            normalise_(synapse.weight, self.norm, float(w_max))
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
