"""The LoihiNet in torch, bit for bit as lava-nc runs it (`snnexp.deploy.loihi.lava_runner`).

Alignment with Lava: every Dense/Conv in Lava delivers one step late, so layer l runs l steps
behind the input; each layer's own clock starts at its per-sample reset step (LIFReset), when its
input is the silent step that follows every sample. Seen from each layer's own clock, every layer
reads the layer before at the same step, which is what this model computes: a silent step 0,
then the sample's T steps, all layers at once. A recurrent Dense (the layer's spikes back to
itself) also arrives one step late, and one step is exactly the feedback's own delay:
h_t = x_t + W s_{t-1} on the layer's clock, with s_{-1} = 0 at the reset step (the runner zeroes
that Dense's buffered sum, which holds the previous sample's last spikes, at each sample's start).
A residual shortcut into layer i from population j runs here as a `Residual` block (the layers
between them plus layer i's synapse, and the shortcut's synapse), all at the same step; in Lava
it arrives i - j - 1 steps later than a plain synapse would, which puts it on layer i's clock.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from snnexp.deploy.loihi.net import LoihiNet
from snnexp.models.base import SpikingModel
from snnexp.network import LayerKind, Recurrent, Residual, Role, register
from snnexp.neurons.base import Neuron
from snnexp.neurons.cuba import CUBA, DECAY_UNITY


class FixedPointNet(nn.Module):
    """The LoihiNet in torch, bit for bit as Lava runs it: integer weights, fixed-point CUBA.

    forward: x_seq [T, N, *in_shape] binary -> spikes [T + 1, N, K]: a silent step comes first
    (Lava's per-sample reset step, when only the bias charges), then the T steps of the sample.
    """

    def __init__(self, net: LoihiNet):
        super().__init__()
        layers: list[nn.Module] = []
        after = {-1: 0}  # population index -> how many of `layers` compute its spikes
        for i, layer in enumerate(net.layers):
            syn = [nn.Flatten()] if layer.flatten_from is not None else []
            syn.append(_synapse(layer.kind, layer.weight, layer.stride, layer.padding))
            if layer.skip is not None:  # the block from the shortcut's source to this synapse, plus the shortcut
                skip, start = layer.skip, after[layer.skip.source]
                shortcut = [nn.Flatten()] if skip.flatten_from is not None else []
                shortcut.append(_synapse(skip.kind, skip.weight, skip.stride, skip.padding))
                syn = [Residual(layers[start:] + syn, shortcut, "add")]
                layers = layers[:start]
            neuron = CUBA(current_decay=layer.i_decay / DECAY_UNITY, voltage_decay=layer.v_decay / DECAY_UNITY,
                          v_threshold=float(layer.vth), fixed_point=True, w_scale=1.0)
            bias = torch.from_numpy(layer.bias.astype(np.float64))  # [C] -> [C, 1, 1] for images
            neuron.bias = bias.view(-1, *[1] * (len(layer.out_shape) - 1))
            if layer.recurrent is not None:  # h_t = x_t + W s_{t-1}: Lava's Dense from the layer to itself
                neuron = Recurrent(neuron, _synapse("dense", layer.recurrent))
            layers += syn + ([FirstStepPulse(float(layer.v_init)), neuron] if layer.v_init else [neuron])
            after[i] = len(layers)
        self.model = SpikingModel(layers, step_mode="m", readout="spikes")
        self.readout = net.readout

    @torch.no_grad()
    def forward(self, x_seq: Tensor) -> Tensor:
        x_seq = torch.cat([torch.zeros_like(x_seq[:1]), x_seq]).double()  # [T+1, N, ...]
        return self.model(x_seq)


def _synapse(kind: str, weight: np.ndarray, stride=(1, 1), padding=(0, 0)) -> nn.Module:
    """A float64 Linear ([out, in]) or Conv2d ([out, in, kh, kw]) with the integer weights, no bias."""
    w = torch.from_numpy(weight.astype(np.float64))
    if kind == "conv":
        syn = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), stride=stride, padding=padding, bias=False,
                        dtype=torch.float64)
    else:
        syn = nn.Linear(w.shape[1], w.shape[0], bias=False, dtype=torch.float64)
    syn.weight.data.copy_(w)
    return syn


class FirstStepPulse(Neuron):
    """Adds `current` to the input of the sample's first step (step 1, after the silent reset step 0).

    The clock-axon pulse the Lava runner sends for an initial membrane (module docstring).
    """

    def __init__(self, current: float):
        super().__init__(step_mode="m")
        self.current = float(current)

    def initial_state(self, x_t: Tensor) -> int:
        return 0  # steps seen

    def step(self, x_t: Tensor, t: int) -> tuple[Tensor, int]:
        return (x_t + self.current if t == 1 else x_t), t + 1


@register(FirstStepPulse)
class PulseKind(LayerKind):
    """The fixed-point model's first-step pulse: a constant added at one step (Loihi's, not a user's layer)."""

    role = Role.SCALE
    name = "pulse"


@torch.no_grad()
def predictions(counts: Tensor, readout: nn.Sequential) -> Tensor:
    """[N, K'] output spike counts -> [N] predicted classes, through the net's fixed readout scales
    (e.g. Voting: [N, K*per_class] -> [N, K])."""
    return readout(counts.double()).argmax(-1) if len(readout) else counts.argmax(-1)
