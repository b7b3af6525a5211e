"""Which layers of a SpikingModel STDP can train, and recording their pre/post spikes.

A plastic layer is a synapse whose kind is `plastic` (Linear, Conv2d), followed, through layers
that keep the values' meaning (NORM, PASS, SCALE roles) and at most pooling, by a spiking neuron
layer, as the network representation (`SpikingModel.network()`) shows it. Its pre spikes are
the synapse's input, its post spikes the neuron's output. When pooling sits between them (csnn's
conv -> BN -> pool -> neuron) the post spikes are copied back onto every synapse output in the
pooling window (nearest upsampling), so each conv position "fired" when its pooled neuron did.
A recurrent synapse (it reaches its neuron at the next step) and a synapse whose path forks or
meets a residual join are not plastic: `fixed_synapses` names them. Recording uses forward hooks
that only read tensors; nothing writes gradients.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnexp.models.base import SpikingModel
from snnexp.network import Network, Node, Role

PASS_THROUGH = (Role.NORM, Role.PASS, Role.SCALE)


@dataclass
class Plastic:
    """One STDP-capable synapse and the neuron layer that receives it."""

    name: str  # e.g. "net.1" (the synapse's place in the model)
    synapse: nn.Module
    neuron: nn.Module
    pooled: bool  # pooling between synapse and neuron: post spikes are upsampled
    conv: Any = None  # the rule's geometry of a conv synapse (`LayerKind.stdp_geometry`); None: dense
    is_output: bool = False  # its neuron is the model's last neuron layer

    @property
    def weight(self) -> Tensor:
        return self.synapse.weight


def _receiving_neuron(network: Network, synapse: Node) -> tuple[Node | None, bool]:
    """(the spiking neuron node `synapse` drives through pass-through layers and pools, pooled), or (None, _)."""
    pooled, current = False, synapse
    while True:
        after = network.successors(current.name)
        if len(after) != 1:
            return None, pooled
        current = after[0]
        if current.role is Role.POOL:
            pooled = True
        elif current.role is Role.NEURON:
            return (current if current.kind.spiking else None), pooled
        elif current.role not in PASS_THROUGH:
            return None, pooled


def plastic_layers(model: SpikingModel) -> list[Plastic]:
    """The plastic layers of `model`, in order."""
    network = model.network()
    last_neuron = ([n.name for n in network.neurons()] or [None])[-1]
    found: list[Plastic] = []
    for node in network.with_role(Role.SYNAPSE):
        neuron, pooled = _receiving_neuron(network, node) if node.kind.plastic else (None, False)
        if neuron is not None:
            found.append(Plastic(node.name, node.module, neuron.module, pooled, node.kind.stdp_geometry(node.module),
                                 is_output=neuron.name == last_neuron))
    return found


def fixed_synapses(model: SpikingModel) -> list[str]:
    """The synapses STDP leaves as they are (recurrent ones, ones before a residual join), by path."""
    trained = {p.name for p in plastic_layers(model)}
    return [n.name for n in model.network().with_role(Role.SYNAPSE) if n.name not in trained]


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
        if post[0].dim() == pre[0].dim() + 1:  # multi-step: the synapse saw [k*N, ...], the neuron [k, N, ...]
            # one call per segment of the sequence (one for all T steps unless learner.memory cuts it)
            pre_seq = torch.cat([a.unflatten(0, (b.shape[0], -1)) for a, b in zip(pre, post)])
            post_seq = torch.cat(post)
        else:  # single-step mode: T calls of [N, ...]
            pre_seq, post_seq = torch.stack(pre), torch.stack(post)
        if p.pooled:  # [T, N, C, h, w] -> [T*N, C, H', W'] nearest -> [T, N, C, H', W']
            up = F.interpolate(post_seq.flatten(0, 1), size=self.out_hw[p.name], mode="nearest")
            post_seq = up.unflatten(0, post_seq.shape[:2])
        return pre_seq.contiguous(), post_seq.contiguous()
