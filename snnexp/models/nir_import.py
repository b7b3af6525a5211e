"""Read a NIR graph as snnexp layers (`layers_from_nir`); `snnexp.models.nir.NIRModel` wraps them.

Nodes taken: Input, Output, Affine, Linear (a block-average matrix becomes Voting), Conv2d,
Flatten, SumPool2d, AvgPool2d, IF, LIF, CubaLIF, LI (time constants read at dt seconds per
step: neurons/nir.py). The graph must be a chain (one path from Input to Output): a
branch, a recurrent edge, a subgraph or any other node type is refused naming the node.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import nir
import numpy as np
import torch
from torch import nn

from snnexp.neurons.nir import DEFAULT_DT, decay_rounding, neuron_from_node
from snnexp.errors import ConfigError
from snnexp.network.layers import Voting
from snnexp.network.layers import SumPool2d

log = logging.getLogger(__name__)
NEURONS = (nir.IF, nir.LIF, nir.CubaLIF, nir.LI)


@dataclass
class Imported:
    """What a NIR graph becomes: layers in order, the shapes at both ends (no batch), dt and notes."""

    layers: list[nn.Module]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    dt: float
    names: list[str] = field(default_factory=list)  # the NIR node of each layer
    notes: list[str] = field(default_factory=list)


def graph_dt(graph: nir.NIRGraph, dt: float | None = None) -> float:
    """dt given, else the graph's metadata "dt" (snnexp and others write it), else 1e-4 s."""
    if dt is not None:
        return float(dt)
    meta = graph.metadata.get("dt") if isinstance(graph.metadata, dict) else None
    return float(np.asarray(meta).item()) if meta is not None else DEFAULT_DT


def chain(graph: nir.NIRGraph) -> list[str]:
    """Node names from Input to Output; ConfigError for anything but one straight path."""
    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise ConfigError(f"NIR graph has {len(inputs)} Input nodes; snnexp reads graphs with exactly one")
    outgoing: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for src, dst in graph.edges:
        outgoing[src].append(dst)
    order, name = [], inputs[0]
    while True:
        if name in order:
            raise ConfigError(f"NIR node '{name}' is reached twice: a recurrent graph, snnexp reads feed-forward chains")
        order.append(name)
        node = graph.nodes[name]
        if isinstance(node, nir.Output):
            return order
        if len(outgoing[name]) != 1:
            raise ConfigError(f"NIR node '{name}' ({type(node).__name__}) has {len(outgoing[name])} outgoing edges; "
                              f"snnexp reads chains (one path from Input to Output)")
        name = outgoing[name][0]


def layers_from_nir(graph: nir.NIRGraph, dt: float | None = None) -> Imported:
    """snnexp layers (batched, [N, ...]) computing `graph` at dt seconds per step."""
    dt = graph_dt(graph, dt)
    order = chain(graph)
    first = graph.nodes[order[0]]
    in_shape = tuple(int(n) for n in np.asarray(first.input_type["input"]).ravel())
    out = Imported([], in_shape, in_shape, dt)
    shape = in_shape
    for name in order[1:-1]:
        node = graph.nodes[name]
        layer = _layer(node, name, shape, dt)
        if isinstance(node, NEURONS):
            note = decay_rounding(layer, node, dt)
            if note:
                log.warning("NIR node '%s': %s", name, note)
                out.notes.append(f"{name}: {note}")
        else:
            shape = _check_shape(layer, name, node, shape)
        out.layers.append(layer)
        out.names.append(name)
    out.out_shape = shape
    return out


def _layer(node: nir.NIRNode, name: str, shape: tuple[int, ...], dt: float) -> nn.Module:
    kind = type(node).__name__
    if isinstance(node, NEURONS):
        return neuron_from_node(node, name, dt)
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = torch.as_tensor(np.asarray(node.weight), dtype=torch.float32)
        if w.dim() != 2:
            raise ConfigError(f"NIR node '{name}' ({kind}) has a {w.dim()}-d weight; snnexp takes [out, in]")
        per_class = _voting(w) if isinstance(node, nir.Linear) else None
        if per_class is not None:
            return Voting(per_class)
        layer = nn.Linear(w.shape[1], w.shape[0], bias=isinstance(node, nir.Affine))
        with torch.no_grad():
            layer.weight.copy_(w)
            if layer.bias is not None:
                layer.bias.copy_(torch.as_tensor(np.asarray(node.bias), dtype=torch.float32))
        return layer
    if isinstance(node, nir.Conv2d):
        w = torch.as_tensor(np.asarray(node.weight), dtype=torch.float32)
        padding = node.padding if isinstance(node.padding, str) else _pair(node.padding)
        layer = nn.Conv2d(w.shape[1] * int(node.groups), w.shape[0], tuple(w.shape[2:]), stride=_pair(node.stride),
                          padding=padding, dilation=_pair(node.dilation), groups=int(node.groups))
        with torch.no_grad():
            layer.weight.copy_(w)
            layer.bias.copy_(torch.as_tensor(np.asarray(node.bias), dtype=torch.float32))
        return layer
    if isinstance(node, nir.Flatten):
        start, end = int(node.start_dim), int(node.end_dim)
        return nn.Flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end)  # + the batch dim
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        cls = nn.AvgPool2d if isinstance(node, nir.AvgPool2d) else SumPool2d
        return cls(_pair(node.kernel_size), _pair(node.stride), _pair(node.padding))
    raise ConfigError(f"NIR node '{name}' ({kind}) is not supported by snnexp's importer; it takes Input, Output, "
                      f"Affine, Linear, Conv2d, Flatten, SumPool2d, AvgPool2d, IF, LIF, CubaLIF and LI")


def _voting(w: torch.Tensor) -> int | None:
    """p if w is [K, K*p] with 1/p on each class's block of p inputs (snnexp's Voting), else None."""
    k, n = w.shape
    if n % k or n == k:
        return None
    p = n // k
    expected = torch.kron(torch.eye(k), torch.full((1, p), 1 / p)).to(w.dtype)
    return p if torch.equal(w, expected) else None


def _pair(v) -> tuple[int, int]:
    a = np.asarray(v).ravel()
    return (int(a[0]), int(a[0])) if a.size == 1 else (int(a[0]), int(a[1]))


@torch.no_grad()
def _check_shape(layer: nn.Module, name: str, node: nir.NIRNode, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Run one zero sample through a stateless layer: its output shape, or a ConfigError naming the node."""
    try:
        return tuple(layer(torch.zeros(1, *shape)).shape[1:])
    except RuntimeError as e:
        raise ConfigError(f"NIR node '{name}' ({type(node).__name__}) does not take the shape {shape} that "
                          f"reaches it: {e}") from None
