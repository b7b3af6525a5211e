"""Which layers of a SpikingModel STDP can train, and recording their pre/post spikes.

A plastic layer is a Linear or Conv2d synapse followed, through shape-keeping layers (BatchNorm,
Dropout, Gain) and at most pooling, by a spiking neuron layer. Its pre spikes are the synapse's
input, its post spikes the neuron's output. When pooling sits between them (csnn's conv -> BN ->
pool -> neuron) the post spikes are copied back onto every synapse output in the pooling window
(nearest upsampling), so each conv position "fired" when its pooled neuron did. Recording uses
forward hooks that only read tensors; nothing writes gradients.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnexp.rules.stdp import Conv, conv_of
from snnexp.network.layers import Gain
from snnexp.neurons.base import Neuron, SpikingNeuron
from snnexp.neurons.inhibition import LateralInhibition

SYNAPSES = (nn.Linear, nn.Conv2d)
PASS_THROUGH = (nn.BatchNorm1d, nn.BatchNorm2d, nn.Dropout, nn.Identity, Gain)
POOLS = (nn.MaxPool2d, nn.AvgPool2d)


@dataclass
class Plastic:
    """One STDP-capable synapse and the neuron layer that receives it."""

    name: str  # e.g. "net.1" (the synapse's place in the model)
    synapse: nn.Linear | nn.Conv2d
    neuron: nn.Module
    pooled: bool  # pooling between synapse and neuron: post spikes are upsampled
    conv: Conv | None = None
    is_output: bool = False  # its neuron is the model's last neuron layer

    @property
    def weight(self) -> Tensor:
        return self.synapse.weight


def _spiking(m: nn.Module) -> bool:
    return isinstance(m, (SpikingNeuron, LateralInhibition))


def plastic_layers(model: nn.Module) -> list[Plastic]:
    """The plastic layers of `model.net` (an nn.Sequential), in order."""
    layers = list(model.net)
    found: list[Plastic] = []
    last_neuron = max((i for i, m in enumerate(layers) if isinstance(m, Neuron)), default=-1)
    for i, layer in enumerate(layers):
        if not isinstance(layer, SYNAPSES):
            continue
        pooled = False
        for j in range(i + 1, len(layers)):
            nxt = layers[j]
            if isinstance(nxt, POOLS):
                pooled = True
            elif _spiking(nxt):
                conv = conv_of(layer) if isinstance(layer, nn.Conv2d) else None
                found.append(Plastic(f"net.{i}", layer, nxt, pooled, conv, is_output=j == last_neuron))
                break
            elif not isinstance(nxt, PASS_THROUGH):
                break
    return found


@dataclass
class Recorder:
    """Context manager: records pre spikes (synapse inputs) and post spikes (neuron outputs) of
    the plastic layers during one model call, as [T, N, ...] tensors (see `pre_post`)."""

    layers: list[Plastic]
    T: int
    pre: dict[str, list[Tensor]] = field(default_factory=dict)
    post: dict[str, list[Tensor]] = field(default_factory=dict)
    out_hw: dict[str, tuple[int, int]] = field(default_factory=dict)
    handles: list = field(default_factory=list)

    def __enter__(self) -> "Recorder":
        for p in self.layers:
            self.pre[p.name], self.post[p.name] = [], []
            self.handles.append(p.synapse.register_forward_hook(self._synapse_hook(p.name)))
            self.handles.append(p.neuron.register_forward_hook(self._neuron_hook(p.name)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def _synapse_hook(self, name: str):
        def hook(module, inputs, out):
            self.pre[name].append(inputs[0].detach())
            if out.dim() == 4:
                self.out_hw[name] = tuple(out.shape[-2:])
        return hook

    def _neuron_hook(self, name: str):
        def hook(module, inputs, s):
            self.post[name].append(s.detach())
        return hook

    def pre_post(self, p: Plastic) -> tuple[Tensor, Tensor]:
        """(pre_seq [T, N, in...], post_seq [T, N, out...]) of one layer, post at the synapse's resolution."""
        pre, post = self.pre[p.name], self.post[p.name]
        # single-step mode: T calls of [N, ...]; multi-step: synapse saw [T*N, ...], neuron [T, N, ...]
        pre_seq = torch.stack(pre) if len(pre) > 1 else pre[0].unflatten(0, (self.T, -1))
        post_seq = torch.stack(post) if len(post) > 1 else post[0]
        if self.T == 1 and len(post) == 1 and post_seq.dim() == pre_seq.dim() - 1:
            post_seq = post_seq.unsqueeze(0)
        if p.pooled:  # [T, N, C, h, w] -> [T*N, C, H', W'] nearest -> [T, N, C, H', W']
            up = F.interpolate(post_seq.flatten(0, 1), size=self.out_hw[p.name], mode="nearest")
            post_seq = up.unflatten(0, post_seq.shape[:2])
        return pre_seq.contiguous(), post_seq.contiguous()
