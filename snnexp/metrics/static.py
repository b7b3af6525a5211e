"""Metrics of the trained network itself, as NeuroBench defines them (its `metrics/static/`)."""
from __future__ import annotations

import torch
from torch import nn

from snnexp.network import Network, Role


def footprint_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer (BatchNorm statistics, neuron constants, ...)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def connection_sparsity(model: nn.Module) -> float:
    """Zero weights / all weights of the synapses (NeuroBench's connection layers; recurrent ones
    included). NeuroBench rounds it to 4 decimals; this is the exact ratio."""
    zeros, total = 0, 0
    for node in Network.of(model).with_role(Role.SYNAPSE):
        zeros += int(torch.count_nonzero(node.module.weight.detach() == 0))
        total += node.module.weight.numel()
    return zeros / total if total else 0.0


def static_metrics(model: nn.Module) -> dict[str, float | int]:
    """results.json keys: model/footprint_bytes, model/params, model/connection_sparsity."""
    return {"model/footprint_bytes": footprint_bytes(model), "model/params": parameter_count(model),
            "model/connection_sparsity": connection_sparsity(model)}
