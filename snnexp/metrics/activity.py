"""Firing rates, activation sparsity and synaptic operations, counted by forward hooks while evaluating.

The hooks only add to tensors on the model's device: nothing is read back to the host until
`compute()`, which the learners call once per evaluation epoch (no per-step device sync).
Definitions follow NeuroBench (see `snnexp.metrics.synops`); `rate/*` are snnexp's own.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from snnexp.metrics.synops import is_spikes
from snnexp.models.base import SpikingModel
from snnexp.network import Network, Role, kind_of


class ActivityMonitor:
    """Accumulates per-layer spikes and per-sample synaptic operations over `update` calls.

    Use as a context manager around evaluation batches, call `add_samples(n)` per batch;
    `compute()` returns 0-dim tensors (Lightning's `self.log` takes them as they are):
    - "rate/<layer>": spikes per neuron per step; "rate/mean": over all spiking neurons;
    - "activation_sparsity": zeros / outputs of every spiking layer, all steps and samples
      (NeuroBench's ActivationSparsity with the spiking layers as its activation layers);
    - "synops/ac", "synops/mac": effective operations per sample on spike inputs (accumulates)
      and on analog inputs (multiply-accumulates); "synops" = their sum;
      "synops/dense": per sample if every input and weight were nonzero (NeuroBench's "Dense");
    - for a model built of named blocks (`SpikingModel.block_of`: resnet, vgg, spikformer, rsnn):
      "block/<block>/rate", "block/<block>/synops/ac" and "block/<block>/synops/mac", the same
      counts over each block's neurons and synapses.
    """

    def __init__(self, model: nn.Module):
        """model: a SpikingModel (its layers named as `spiking_layers` names them) or an nn.Sequential."""
        self.model = model
        network = Network.of(model)
        if isinstance(model, SpikingModel):
            self.neurons = model.spiking_layers()
        else:
            self.neurons = {node.label: node.module for node in network.spiking()}
        self.synapses = network.with_role(Role.SYNAPSE)
        block_of = model.block_of if isinstance(model, SpikingModel) else lambda name: None
        label_block = {node.label: block_of(node.name) for node in network.spiking()}
        self.neuron_block = {n: label_block.get(n) for n in self.neurons}  # layer label -> block (or None)
        self.synapse_block = {id(node.module): block_of(node.name) for node in self.synapses}
        self.blocks = list(dict.fromkeys(b for b in [*self.neuron_block.values(), *self.synapse_block.values()] if b))
        self.handles: list = []
        self.reset()

    def reset(self) -> None:
        self.spikes: dict[str, Any] = {n: 0 for n in self.neurons}  # 0-dim tensors after the first call
        self.nonzero: dict[str, Any] = {n: 0 for n in self.neurons}
        self.slots = {n: 0 for n in self.neurons}  # neuron-steps seen (shapes only: a Python int)
        self.acs: Any = 0
        self.macs: Any = 0
        self.block_acs: dict[str, Any] = {b: 0 for b in self.blocks}
        self.block_macs: dict[str, Any] = {b: 0 for b in self.blocks}
        self.dense = 0
        self.samples = 0

    def __enter__(self) -> "ActivityMonitor":
        for name, m in self.neurons.items():
            self.handles.append(m.register_forward_hook(self._neuron_hook(name)))
        for node in self.synapses:
            self.handles.append(node.module.register_forward_hook(self._synapse_hook))
        return self

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def _neuron_hook(self, name: str):
        def hook(module, inputs, s: Tensor) -> None:
            s = s.detach()
            self.add_spikes(name, s.sum(dtype=torch.float64), torch.count_nonzero(s), s.numel())
        return hook

    def _synapse_hook(self, module, inputs, output) -> None:
        self.add_synapse(module, inputs[0])

    def add_spikes(self, name: str, spikes: Tensor, nonzero: Tensor | int, slots: int) -> None:
        """Count a layer's output without a hook (an event-driven run): its spike total, nonzero
        outputs and neuron-steps (slots)."""
        self.spikes[name] = self.spikes[name] + spikes
        self.nonzero[name] = self.nonzero[name] + nonzero
        self.slots[name] += slots

    def add_synapse(self, module: nn.Module, x: Tensor) -> None:
        """Count the synaptic operations of `module` (a synapse: its kind counts them) on its input x."""
        x = x.detach()
        kind = kind_of(module)
        ops = kind.synops(module, x)
        spikes = is_spikes(x)
        acs, macs = torch.where(spikes, ops, torch.zeros_like(ops)), torch.where(spikes, torch.zeros_like(ops), ops)
        self.acs, self.macs = self.acs + acs, self.macs + macs
        block = self.synapse_block.get(id(module))
        if block is not None:
            self.block_acs[block] = self.block_acs[block] + acs
            self.block_macs[block] = self.block_macs[block] + macs
        self.dense += kind.dense_ops(module, tuple(x.shape))

    @property
    def synops(self) -> Any:
        """Effective synaptic operations counted so far, all samples (ACs + MACs; a 0-dim tensor once counted)."""
        return self.acs + self.macs

    def add_samples(self, n: int) -> None:
        self.samples += n

    def compute(self) -> dict[str, Tensor]:
        device = next((p.device for p in self.model.parameters()), torch.device("cpu"))
        count = lambda value: _tensor(value, device)  # noqa: E731
        out = {f"rate/{n}": count(self.spikes[n]) / max(self.slots[n], 1) for n in self.neurons}
        total_slots = max(sum(self.slots.values()), 1)
        out["rate/mean"] = count(sum(self.spikes.values())) / total_slots
        out["activation_sparsity"] = 1 - count(sum(self.nonzero.values())) / total_slots
        samples = max(self.samples, 1)
        acs, macs = count(self.acs) / samples, count(self.macs) / samples
        out.update({"synops": acs + macs, "synops/ac": acs, "synops/mac": macs,
                    "synops/dense": count(self.dense) / samples})
        for b in self.blocks:
            layers = [n for n, block in self.neuron_block.items() if block == b]
            if layers:
                slots = max(sum(self.slots[n] for n in layers), 1)
                out[f"block/{b}/rate"] = count(sum(self.spikes[n] for n in layers)) / slots
            out[f"block/{b}/synops/ac"] = count(self.block_acs[b]) / samples
            out[f"block/{b}/synops/mac"] = count(self.block_macs[b]) / samples
        return out


def _tensor(value: Any, device: torch.device) -> Tensor:
    """A count as a float64 tensor on `device` (a Python number when no hook added to it)."""
    if isinstance(value, Tensor):
        return value.to(device=device, dtype=torch.float64)
    return torch.tensor(float(value), dtype=torch.float64, device=device)
