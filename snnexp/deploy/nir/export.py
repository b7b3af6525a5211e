"""Export a trained float snnexp model as a NIR graph (`export_nir`), and the one NIR graph writer.

The graph has one node per layer of the model's network (`snnexp.network.Network.of`), named by
the layer's label (`conv0`, `lif2`, `fc9`, `lif4_body_2`), each the NIR node its kind writes
(`LayerKind.to_nir`): Linear -> Affine (Linear without a bias), Conv2d -> Conv2d, AvgPool2d ->
AvgPool2d, SumPool2d -> SumPool2d, Flatten -> Flatten, Voting -> Linear, Gain -> Scale, neurons
-> IF, LIF, CubaLIF, LI with their real time constants (`snnexp.neurons.nir`). Around them:

- BatchNorm folds into the Linear/Conv2d before it (float64, then float32);
- Dropout and Identity are left out; an `add` residual join too, since NIR sums a node's inputs:
  the readers of a left-out node read its inputs (a residual block's output node reads both branches);
- a recurrent layer (`snnexp.network.Recurrent`) is an edge from its feedback's last node back to
  its neuron, the form snnTorch's RLeaky exports (LIF -> Affine -> LIF).

A layer NIR cannot express (max-pooling, reset by subtraction, ALIF, Loihi's fixed point, a
logic-gate residual join, an ANN activation, ...) is refused by its path and the kind's reason.
Shapes exclude batch and time; dt (seconds per step) goes into the metadata.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Sequence

import nir
import numpy as np
import torch
from torch import Tensor, nn

from snnexp.errors import ConfigError, check
from snnexp.models.batchnorm import fold_batchnorm_params
from snnexp.network import INPUT, Network, Node, Role
from snnexp.network.layers.pairs import pair
from snnexp.neurons.nir import DEFAULT_DT

AVG_POOLS = ("avg", "sum")
NOTE = "snnexp spikes on v >= v_threshold, NIR on v > v_threshold (they differ only at equality)"


def export_nir(model: nn.Module, in_shape: Sequence[int], path: str | Path | None = None,
               dt: float = DEFAULT_DT, avg_pool: str = "avg") -> nir.NIRGraph:
    """The NIR graph of `model` (a SpikingModel, or an nn.Sequential of its layers) for inputs of
    `in_shape` (one sample, no batch or time), with dt seconds per step; written to `path` if given.

    avg_pool "avg" writes each average pool as NIR's AvgPool2d; "sum" as a SumPool2d with the
    1/window factor folded into a synapse next to it (the one before when the pool is that
    synapse's only reader: pooled currents; else the one after, through Flatten and other pools,
    when the pool is its only input: pooled spikes): the same network for importers without
    AvgPool2d (Norse 1.1), exact when the window area is a power of two (2x2).
    The model is not changed. Example: `export_nir(learner.model, dm.in_shape, "net.nir")`.
    """
    check(float(dt) > 0, "dt", dt, "must be > 0 seconds per step")
    check(avg_pool in AVG_POOLS, "avg_pool", avg_pool, f"choose one of {list(AVG_POOLS)}")
    net = Network.of(model, in_shape)
    writer = _Writer(net, float(dt), avg_pool == "sum")
    nodes, edges = writer.graph()
    return write_graph(nodes, edges, net.in_shape, net[net.output].shape if net.output != INPUT else net.in_shape,
                       {"source": "snnexp", "dt": float(dt), "note": NOTE}, path)


def check_exportable(model: nn.Module, in_shape: Sequence[int] | None = None, avg_pool: str = "avg") -> None:
    """Raise the ConfigError `export_nir` would raise, before any training. Without `in_shape` the
    checks that need no shapes (every layer's kind, the folds, the sum pools); with it, all of them."""
    if in_shape is not None:
        export_nir(model, in_shape, avg_pool=avg_pool)
        return
    _Writer(Network.of(model), DEFAULT_DT, avg_pool == "sum").graph()


def write_graph(nodes: dict[str, nir.NIRNode], edges: list[tuple[str, str]], in_shape: Sequence[int],
                out_shape: Sequence[int] | None, metadata: dict[str, Any],
                path: str | Path | None = None) -> nir.NIRGraph:
    """The NIR graph of `nodes` between an Input named "input" of `in_shape` and an Output named
    "output" of `out_shape` (edges name them), with `metadata`; written to `path` if given. The one
    place a NIR file is written (the float export and Loihi's integer net)."""
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array(in_shape)}), **nodes,
                                "output": nir.Output(output_type={"output": np.array(out_shape)})},
                         edges=edges, metadata=metadata)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        nir.write(str(path), graph)
    return graph


def where(node: Node) -> str:
    """'layer net.3 (Conv2d)': a layer's path in the model (a bare Sequential's layers named as in a model)."""
    path = node.name if node.name.startswith("net.") else f"net.{node.name}"
    return f"layer {path} ({type(node.module).__name__})"


def refusal(node: Node, e: Exception) -> ConfigError:
    """The kind's reason (which may start with the layer type) as an error naming the layer's path."""
    kind, reason = type(node.module).__name__, str(e)
    rest = reason[len(kind):] if reason.startswith(kind + " ") else f": {reason}"
    return ConfigError(f"export to NIR: {where(node)}{rest}")


class _Writer:
    """The NIR nodes and edges of a Network: one pass in topological order, then the folds."""

    def __init__(self, net: Network, dt: float, sum_pools: bool):
        self.net, self.dt, self.sum_pools = net, dt, sum_pools
        self.nodes: dict[str, nir.NIRNode] = {}  # written: layer path -> NIR node
        self.names: dict[str, str] = {INPUT: "input"}  # layer path -> NIR node name
        self.alias: dict[str, tuple[str, ...]] = {INPUT: (INPUT,)}  # layer path -> the written nodes it sums
        self.params: dict[str, tuple[Tensor, Tensor]] = {}  # SYNAPSE -> folded (weight, bias), float64
        self.weight_scale: dict[str, float] = {}  # SYNAPSE -> a sum pool's 1/window on its input

    def graph(self) -> tuple[dict[str, nir.NIRNode], list[tuple[str, str]]]:
        for node in self.net:
            if node.role is Role.NORM:
                self.fold(node)
                continue
            written = self.write(node, node.module)
            if written is None:
                self.alias[node.name] = self.sources(node.inputs)
            else:
                self.nodes[node.name], self.names[node.name] = written, node.label
                self.alias[node.name] = (node.name,)
        if self.sum_pools:
            for name in [n for n, v in self.nodes.items() if isinstance(v, nir.AvgPool2d)]:
                self.as_sum_pool(self.net[name])
        for name in set(self.params) | set(self.weight_scale):
            self.nodes[name] = self.write(self.net[name], self.folded(self.net[name]))
        return {self.names[n]: v for n, v in self.nodes.items()}, self.edges()

    def write(self, node: Node, module: nn.Module) -> nir.NIRNode | None:
        try:
            return node.kind.to_nir(module, node.in_shape, self.dt)
        except ConfigError as e:  # the kind's Unsupported, or a neuron's refusal
            raise refusal(node, e) from None

    def sources(self, names: Sequence[str]) -> tuple[str, ...]:
        """The written nodes whose sum reaches a layer reading `names`."""
        return tuple(s for n in names for s in self.alias[n])

    def edges(self) -> list[tuple[str, str]]:
        edges = []
        for name in self.nodes:
            node = self.net[name]
            for group in (node.inputs, node.delayed):
                sources = self.sources(group)
                if len(set(sources)) < len(sources):
                    raise ConfigError(f"export to NIR: {where(node)} reads the same layer twice (x + x through "
                                      f"left-out layers); NIR sums distinct edges")
                edges += [(self.names[s], self.names[name]) for s in sources]
        return edges + [(self.names[s], "output") for s in self.alias[self.net.output]]

    def readers(self, name: str) -> list[Node]:
        """Layers that read `name`'s output, at the same step or the next."""
        return [n for n in self.net if name in n.inputs or name in n.delayed]

    def reads_only(self, source: str, reader: str) -> bool:
        """True when `reader` is the only layer reading `source`, directly or through left-out PASS layers
        and folded BatchNorms."""
        readers = self.readers(source)
        return bool(readers) and all(r.name == reader or (r.role in (Role.PASS, Role.NORM) and
                                                          self.reads_only(r.name, reader)) for r in readers)

    def fold(self, node: Node) -> None:
        """A BatchNorm: into the Linear/Conv2d before it (that nothing else reads); float64."""
        src = self.sources(node.inputs)
        bn = node.module
        if (len(src) != 1 or src[0] == INPUT or self.net[src[0]].role is not Role.SYNAPSE
                or not self.reads_only(src[0], node.name) or not bn.track_running_stats):
            raise ConfigError(f"export to NIR: {where(node)} has no Linear/Conv2d right before it to fold into "
                              f"(read by nothing else, with running statistics)")
        self.params[src[0]] = fold_batchnorm_params(*self.weights(src[0]), bn)
        self.alias[node.name] = src

    def weights(self, name: str) -> tuple[Tensor, Tensor]:
        """A synapse's (weight, bias) so far, float64 (a zero bias when it has none)."""
        if name in self.params:
            return self.params[name]
        m = self.net[name].module
        bias = m.bias.detach() if m.bias is not None else torch.zeros(m.weight.shape[0])
        return m.weight.detach().cpu().double(), bias.cpu().double()

    def as_sum_pool(self, node: Node) -> None:
        """avg_pool=sum: write the AvgPool2d as a SumPool2d; its 1/window goes into a synapse next to it."""
        pool = self.nodes[node.name]
        window = 1 / math.prod(pair(pool.kernel_size))
        self.nodes[node.name] = nir.SumPool2d(kernel_size=pool.kernel_size, stride=pool.stride, padding=pool.padding)
        self.names[node.name] = node.label.replace("avgpool", "sumpool", 1)
        src = self.sources(node.inputs)
        if len(src) == 1 and src[0] != INPUT and self.net[src[0]].role is Role.SYNAPSE and \
                self.reads_only(src[0], node.name):  # pooled currents: the synapse before
            w, b = self.weights(src[0])
            self.params[src[0]] = (w * window, b * window)
            return
        for after in self.synapses_after(node, node.name):  # pooled spikes: the synapses after, on their weights
            self.weight_scale[after] = self.weight_scale.get(after, 1.0) * window

    def synapses_after(self, pool: Node, current: str) -> list[str]:
        """The synapses that read only `current` (through Flatten and pools), all of its readers."""
        readers = [n for n in self.net if n.name in self.nodes and current in self.sources(n.inputs + n.delayed)]
        found = []
        for reader in readers:
            if self.sources(reader.inputs) != (current,) or reader.delayed or \
                    reader.role not in (Role.SYNAPSE, Role.SHAPE, Role.POOL):
                raise ConfigError(f"export to NIR with avg_pool=sum: {where(pool)} has no synapse before it that "
                                  f"only it reads, and {where(reader)} reads it before any synapse (or with other "
                                  f"layers): its 1/window has no weights to fold into; use avg_pool=avg")
            found += [reader.name] if reader.role is Role.SYNAPSE else self.synapses_after(pool, reader.name)
        if not found:
            raise ConfigError(f"export to NIR with avg_pool=sum: {where(pool)} has no synapse before or after it to "
                              f"fold its 1/window into: use avg_pool=avg")
        return found

    def folded(self, node: Node) -> nn.Module:
        """A copy of a synapse with its folded weights: the float32 a simulator runs."""
        w, b = self.weights(node.name)
        w = w * self.weight_scale.get(node.name, 1.0)
        m = copy.deepcopy(node.module)
        has_bias = node.module.bias is not None or bool(torch.any(b != 0))
        m.weight = nn.Parameter(w.float())
        m.bias = nn.Parameter(b.float()) if has_bias else None
        return m


