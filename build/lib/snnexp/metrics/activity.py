"""Firing rates and synaptic operations, counted by forward hooks while evaluating."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnexp.neurons.base import SpikingNeuron


def synaptic_ops(layer: nn.Module, x: Tensor) -> Tensor:
    """Synaptic events one forward call of `layer` causes: every nonzero input times its fan-out.

    Linear: nnz(x) * out_features. Conv2d: for each output position and channel,
    the nonzero inputs in its receptive field (exact at borders and strides).
    For spike inputs this is SynOps; for analog inputs it counts MACs.
    """
    active = (x != 0).to(torch.float32)
    if isinstance(layer, nn.Linear):
        return active.sum() * layer.out_features
    if isinstance(layer, nn.Conv2d):
        per_pixel = active.sum(1, keepdim=True)  # [B, C_in, H, W] -> [B, 1, H, W]
        ones = per_pixel.new_ones(1, 1, *layer.kernel_size)
        in_field = F.conv2d(per_pixel, ones, stride=layer.stride, padding=layer.padding, dilation=layer.dilation)
        return in_field.sum() * (layer.out_channels // layer.groups)
    raise TypeError(f"no synaptic-op count for {type(layer).__name__}")


class ActivityMonitor:
    """Accumulates per-layer firing rates and SynOps per sample over `update` calls.

    Use as a context manager around evaluation batches; `compute()` returns
    {"rate/<layer>": spikes per neuron per step, "rate/mean": over all neurons,
    "synops": synaptic operations per sample}.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        if hasattr(model, "spiking_layers"):
            self.neurons = model.spiking_layers()
        else:
            self.neurons = {n: m for n, m in model.named_modules() if isinstance(m, SpikingNeuron)}
        self.synapses = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
        self.handles: list = []
        self.reset()

    def reset(self) -> None:
        self.spikes = {n: 0.0 for n in self.neurons}
        self.slots = {n: 0 for n in self.neurons}  # neuron-steps seen
        self.synops = 0.0
        self.samples = 0

    def __enter__(self) -> "ActivityMonitor":
        for name, m in self.neurons.items():
            self.handles.append(m.register_forward_hook(self._neuron_hook(name)))
        for m in self.synapses.values():
            self.handles.append(m.register_forward_hook(self._synapse_hook))
        return self

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def _neuron_hook(self, name: str):
        def hook(module, inputs, s: Tensor) -> None:
            self.spikes[name] += float(s.detach().sum())
            self.slots[name] += s.numel()
        return hook

    def _synapse_hook(self, module, inputs, output) -> None:
        self.synops += float(synaptic_ops(module, inputs[0].detach()))

    def add_samples(self, n: int) -> None:
        self.samples += n

    def compute(self) -> dict[str, float]:
        out = {f"rate/{n}": self.spikes[n] / max(self.slots[n], 1) for n in self.neurons}
        total_slots = sum(self.slots.values())
        out["rate/mean"] = sum(self.spikes.values()) / max(total_slots, 1)
        out["synops"] = self.synops / max(self.samples, 1)
        return out
