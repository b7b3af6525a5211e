"""An ALIF layer with soft lateral inhibition, driven by its active inputs only (inhibited_alif.cpp).

Diehl & Cook's excitatory layer, `LateralInhibition(ALIF)` behind a bias-free Linear synapse, run
for a whole [T, N, in] input without a [T, N, n] tensor: per step the synapse adds the weight rows
of the inputs that spiked (about 2 % of them at the paper's rate) instead of a dense product, and
the spikes come back as events. The arithmetic is `inhibit_step` -> `alif_step` rounded the same
way; only the synapse's summation order differs from `x @ W.T` (tests: same spikes, same theta).
No gradients (STDP trains this layer). Hard k-WTA (`k_wta`) and CUDA run the dense path.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from snnexp.neurons.alif import ALIF
from snnexp.neurons.fused.dispatch import available
from snnexp.neurons.inhibition import LateralInhibition


class LayerEvents(NamedTuple):
    """One sequence of a spiking layer, as events. E spikes in all."""

    counts: Tensor  # [N, n] spikes per sample and neuron
    t: Tensor  # [E] int64 time step of each spike
    b: Tensor  # [E] int64 sample
    j: Tensor  # [E] int64 neuron
    state: object  # the layer's final state (ALIFState [N, n]); None when not kept


def supports(x_seq: Tensor, layer: LateralInhibition) -> bool:
    """Whether the kernel runs this layer on x_seq [T, N, in]: a CPU float tensor, an ALIF inside
    soft (or no) inhibition, no k-WTA, and the C++ kernels built here."""
    return (x_seq.device.type == "cpu" and x_seq.dtype in (torch.float32, torch.float64) and x_seq.dim() == 3
            and isinstance(layer, LateralInhibition) and isinstance(layer.neuron, ALIF) and layer.k is None
            and available("cpu"))


@torch.no_grad()
def inhibited_alif_events(x_seq: Tensor, weight: Tensor, layer: LateralInhibition) -> LayerEvents:
    """x_seq [T, N, in] input spikes (or any values; zeros are skipped), weight [n, in] -> LayerEvents.

    theta starts at the neuron's `theta_rest`; booking the sequence (homeostasis) is the caller's.
    """
    from snnexp.neurons.alif import ALIFState

    if not available("cpu"):  # loads the library; supports() says so before anyone calls this
        raise RuntimeError("the C++ kernels could not be built here: run the dense path (supports() is False)")
    neuron: ALIF = layer.neuron
    x = x_seq.to(weight.dtype)
    counts, events, v, theta = torch.ops.snnexp_fused.inhibited_alif_forward(
        x, weight.detach(), neuron.theta_rest.detach(), float(neuron.v_reset), float(neuron.v_threshold),
        float(neuron.tau), bool(neuron.decay_input), math.exp(-1 / neuron.tau_theta), float(neuron.theta_plus),
        neuron.reset_mode == "subtract", float(layer.strength))
    return LayerEvents(counts, events[:, 0], events[:, 1], events[:, 2], ALIFState(v, theta))


def events_of(s_seq: Tensor, state: object = None) -> LayerEvents:
    """The events of dense spikes s_seq [T, N, n] (the reference path's output), ordered as the kernel's."""
    b, t, j = s_seq.transpose(0, 1).nonzero(as_tuple=True)  # by sample, then time, then neuron
    return LayerEvents(s_seq.sum(0), t, b, j, state)
