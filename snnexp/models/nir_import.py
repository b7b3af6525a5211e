"""Read a NIR graph as snnexp layers (`layers_from_nir`); `snnexp.models.nir.NIRModel` wraps them.

Graphs read: a path from the Input to the Output, with
- forks and joins: a node with several incoming edges takes the sum of its inputs (NIR's rule), so
  the branches from a fork to the node where they meet again become `Residual(body, shortcut,
  "add")` blocks (nested as the graph nests them; three branches are two blocks);
- self-recurrence: a neuron node that reads its own output through a chain of stateless nodes
  becomes `Recurrent(neuron, feedback)`, fed its previous step's spikes (snnTorch's RLeaky
  exports lif -> affine_rec -> lif).
Any other cycle (e.g. through two neuron layers), branches that never meet again, a dead end, a
subgraph, an empty (None) node or a node type no layer kind reads is refused naming the node.
Each node becomes the layer its kind builds (`LayerKind.from_nir`; `snnexp.network.kinds.nir_kind`),
time constants read at dt seconds per step (`snnexp.neurons.nir`). An Input that declares a
leading batch dimension of 1 (Norse writes (1, 1, 8, 8)) is read as the sample shape when the
graph does not take the 1 as part of a sample (a layer refuses it, or it reaches the Output).
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

import nir
import numpy as np
from torch import nn

from snnexp.errors import ConfigError
from snnexp.network import Network, Recurrent, Residual, Role
from snnexp.network.kinds import LayerKind, nir_kind, nir_readable
from snnexp.neurons.nir import DEFAULT_DT, decay_rounding

log = logging.getLogger(__name__)


@dataclass
class Imported:
    """What a NIR graph becomes: layers in order, the shapes at both ends (no batch), dt and notes."""

    layers: list[nn.Module]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    dt: float
    names: list[str] = field(default_factory=list)  # the NIR nodes read, in the order their layers were built
    notes: list[str] = field(default_factory=list)


def graph_dt(graph: nir.NIRGraph, dt: float | None = None) -> float:
    """dt given, else the graph's metadata "dt" (snnexp and others write it), else 1e-4 s."""
    if dt is not None:
        return float(dt)
    meta = graph.metadata.get("dt") if isinstance(graph.metadata, dict) else None
    return float(np.asarray(meta).item()) if meta is not None else DEFAULT_DT


def layers_from_nir(graph: nir.NIRGraph, dt: float | None = None) -> Imported:
    """snnexp layers (batched, [N, ...]) computing `graph` at dt seconds per step."""
    dt = graph_dt(graph, dt)
    topology = Topology.of(graph)
    declared = topology.in_shape
    batched = len(declared) >= 2 and declared[0] == 1  # may be NIR's batch of 1
    try:
        imported = _Importer(graph, topology, dt).run(declared)
    except ConfigError as first:
        if not batched:
            raise
        try:
            return _Importer(graph, topology, dt).run(declared[1:])
        except ConfigError:
            raise first from None
    if batched and len(imported.out_shape) > 1 and imported.out_shape[0] == 1:  # the 1 went through: a batch
        try:
            return _Importer(graph, topology, dt).run(declared[1:])
        except ConfigError:
            return imported
    return imported


def readout(layers: list[nn.Module]) -> str:
    """"membrane" when the last neuron layer of `layers` is a leaky integrator, else "spikes"."""
    neurons = Network.of(nn.Sequential(*layers)).neurons()
    if not neurons:
        raise ConfigError("the NIR graph has no neuron node (IF, LIF, CubaLIF, LI)")
    return "spikes" if neurons[-1].kind.spiking else "membrane"


class Topology:
    """A NIR graph's edges as snnexp reads them: same-step edges between the nodes of the forward
    graph (a DAG from the Input to the Output), and each recurrent neuron's feedback chain."""

    def __init__(self, graph: nir.NIRGraph):
        self.graph = graph
        self.inputs: dict[str, list[str]] = {n: [] for n in graph.nodes}
        self.outputs: dict[str, list[str]] = {n: [] for n in graph.nodes}
        self.feedback: dict[str, list[str]] = {}  # neuron -> its feedback nodes, from the one reading it
        self.input = self.output = ""
        self.in_shape: tuple[int, ...] = ()

    @classmethod
    def of(cls, graph: nir.NIRGraph) -> "Topology":
        top = cls(graph)
        for name, node in graph.nodes.items():
            if node is None:
                raise ConfigError(f"NIR node '{name}' is empty (None): its writer had no NIR node for that layer "
                                  f"(Norse 1.1 writes None for LICell and Flatten)")
            if isinstance(node, nir.NIRGraph):
                raise ConfigError(f"NIR node '{name}' is a subgraph; snnexp reads flat graphs (nodes and edges)")
        top.input, top.output = top.one(nir.Input), top.one(nir.Output)
        top.in_shape = tuple(int(n) for n in np.asarray(graph.nodes[top.input].input_type["input"]).ravel())
        for src, dst in dict.fromkeys(tuple(e) for e in graph.edges):  # NIR's edges: a set
            for end in (src, dst):
                if end not in graph.nodes:
                    raise ConfigError(f"NIR graph has an edge ({src!r}, {dst!r}) to a node '{end}' it does not have")
            top.outputs[src].append(dst)
            top.inputs[dst].append(src)
        for name in graph.nodes:
            top.find_feedback(name)
        top.check_acyclic()
        return top

    def one(self, cls: type) -> str:
        names = [n for n, node in self.graph.nodes.items() if isinstance(node, cls)]
        if len(names) != 1:
            raise ConfigError(f"NIR graph has {len(names)} {cls.__name__} nodes; snnexp reads graphs with exactly one")
        return names[0]

    def is_neuron(self, name: str) -> bool:
        kind = nir_kind(self.graph.nodes[name])
        return kind is not None and kind.role is Role.NEURON

    def find_feedback(self, neuron: str) -> None:
        """If `neuron` reads its own output through stateless nodes with one input and one output each,
        record that chain as its feedback and take it out of the forward graph."""
        if not self.is_neuron(neuron):
            return
        for src in list(self.inputs[neuron]):
            chain, current, seen = [], src, set()
            while current != neuron and current not in seen:
                seen.add(current)
                if (self.is_neuron(current) or current in (self.input, self.output)
                        or len(self.inputs[current]) != 1 or len(self.outputs[current]) != 1):
                    break
                chain.insert(0, current)
                current = self.inputs[current][0]
            if current != neuron:
                continue
            if neuron in self.feedback:
                raise ConfigError(f"NIR node '{neuron}' ({type(self.graph.nodes[neuron]).__name__}) reads its own "
                                  f"output through two paths; snnexp's recurrent layer has one feedback path")
            self.feedback[neuron] = chain
            self.inputs[neuron].remove(src)
            self.outputs[neuron].remove(chain[0] if chain else neuron)
            for name in chain:
                self.inputs[name], self.outputs[name] = [], []

    def reaches(self, source: str, target: str) -> bool:
        """True when a forward path of one edge or more leads from `source` to `target`."""
        stack, seen = list(self.outputs[source]), set()
        while stack:
            name = stack.pop()
            if name == target:
                return True
            if name not in seen:
                seen.add(name)
                stack += self.outputs[name]
        return False

    def check_acyclic(self) -> None:
        """Every forward node lies on a path from the Input to the Output, with no cycle."""
        chains = {n for chain in self.feedback.values() for n in chain}
        pending = {n: len(self.inputs[n]) for n in self.graph.nodes if n not in chains}
        ready, done = [self.input], []
        while ready:
            name = ready.pop()
            done.append(name)
            for dst in self.outputs[name]:
                pending[dst] -= 1
                if pending[dst] == 0:
                    ready.append(dst)
        left = [n for n in self.graph.nodes if n not in chains and n not in done]
        for name in sorted(left, key=lambda n: bool(self.inputs[n])):  # an unreached root first, then a cycle
            kind = type(self.graph.nodes[name]).__name__
            if not self.inputs[name]:
                raise ConfigError(f"NIR node '{name}' ({kind}) is not reached from the Input")
            if self.reaches(name, name):
                raise ConfigError(f"NIR node '{name}' ({kind}) lies on a cycle that is not a neuron reading its own "
                                  f"output through stateless nodes (e.g. a loop through two neuron layers); snnexp "
                                  f"reads only those recurrent loops")
        for name in done:
            if not self.outputs[name] and name != self.output:
                raise ConfigError(f"NIR node '{name}' ({type(self.graph.nodes[name]).__name__}) has no outgoing "
                                  f"edge: every path must lead to the Output")


@dataclass
class _Path:
    """Layers from a node's output to `stop`, a node summing several inputs (or the Output), which
    receives the sum of `ends` from them; `shape` is that sum's."""

    layers: list[nn.Module]
    ends: tuple[str, ...]
    stop: str
    shape: tuple[int, ...]


class _Importer:
    def __init__(self, graph: nir.NIRGraph, top: Topology, dt: float):
        self.graph, self.top, self.dt = graph, top, dt
        self.names: list[str] = []
        self.notes: list[str] = []

    def run(self, in_shape: tuple[int, ...]) -> Imported:
        path = self.walk(self.top.input, in_shape)
        if path.stop != self.top.output or set(path.ends) != set(self.top.inputs[path.stop]):
            raise self.unmatched(path)
        return Imported(path.layers, in_shape, path.shape, self.dt, self.names, self.notes)

    def walk(self, current: str, shape: tuple[int, ...], layers: list[nn.Module] | None = None,
             first: str | None = None) -> _Path:
        """The layers from `current`'s output (of `shape`) along its path (through `first`, if given)
        until a node that sums several inputs, or the Output."""
        layers = [] if layers is None else layers
        after = first
        while True:
            if after is None:
                successors = self.top.outputs[current]
                if len(successors) > 1:
                    fork = self.fork(current, successors, shape)
                    layers += fork.layers
                    if fork.stop == self.top.output or set(fork.ends) != set(self.top.inputs[fork.stop]):
                        return _Path(layers, fork.ends, fork.stop, fork.shape)
                    current, shape = fork.stop, self.add(fork.stop, fork.shape, layers)  # the join's own layer
                    continue
                after = successors[0]
            if len(self.top.inputs[after]) > 1 or after == self.top.output:
                return _Path(layers, (current,), after, shape)
            current, shape, after = after, self.add(after, shape, layers), None

    def fork(self, source: str, successors: list[str], shape: tuple[int, ...]) -> _Path:
        """The branches from `source` to where they meet: one Residual sum (nested as the graph nests)."""
        branches = [self.walk(source, shape, first=s) for s in successors]
        while True:
            stops = list(dict.fromkeys(b.stop for b in branches))
            if len(stops) == 1:
                return self.join(source, branches)
            for stop in stops:
                group = [b for b in branches if b.stop == stop]
                if stop != self.top.output and len(group) > 1 and \
                        set(e for b in group for e in b.ends) == set(self.top.inputs[stop]):
                    joined = self.join(source, group)
                    layers = joined.layers
                    rest = self.walk(stop, self.add(stop, joined.shape, layers), layers)
                    branches = [b for b in branches if b.stop != stop] + [rest]
                    break
            else:
                kind = type(self.graph.nodes[source]).__name__
                raise ConfigError(f"NIR node '{source}' ({kind}) forks into branches that meet at different nodes "
                                  f"({', '.join(repr(s) for s in stops)}); snnexp reads forks whose branches meet "
                                  f"again in one sum (residual blocks)")

    def join(self, source: str, branches: list[_Path]) -> _Path:
        """Branches from `source` that meet at one node: Residual(body, shortcut, "add"), nested for more."""
        shapes = list(dict.fromkeys(b.shape for b in branches))
        stop = branches[0].stop
        if len(shapes) > 1:
            kind = type(self.graph.nodes[source]).__name__
            raise ConfigError(f"NIR node '{source}' ({kind}) has {len(branches)} outgoing edges that meet at "
                              f"'{stop}' with different shapes {', '.join(map(str, shapes))}; a sum needs one shape")
        branches = sorted(branches, key=lambda b: -len(b.layers))  # the longest is the body, an empty one the shortcut
        block = Residual(branches[0].layers, branches[1].layers, "add")
        for b in branches[2:]:
            block = Residual([block], b.layers, "add")
        return _Path([block], tuple(e for b in branches for e in b.ends), stop, shapes[0])

    def unmatched(self, path: _Path) -> ConfigError:
        stop = path.stop
        others = [n for n in self.top.inputs[stop] if n not in path.ends]
        return ConfigError(f"NIR node '{stop}' ({type(self.graph.nodes[stop]).__name__}) sums inputs that do not "
                           f"come from one fork ({', '.join(repr(n) for n in others)} among them); snnexp reads "
                           f"sums whose inputs branch from one node (residual blocks)")

    def kind(self, name: str) -> LayerKind:
        node = self.graph.nodes[name]
        kind = nir_kind(node)
        if kind is None:
            raise ConfigError(f"NIR node '{name}' ({type(node).__name__}) is not supported by snnexp's importer; it "
                              f"takes Input, Output, {', '.join(nir_readable())}")
        return kind

    def add(self, name: str, shape: tuple[int, ...], layers: list[nn.Module]) -> tuple[int, ...]:
        """Append the layer(s) of node `name` for an input of `shape`; their output shape."""
        node = self.graph.nodes[name]
        module = self.kind(name).from_nir(node, name, shape, self.dt)
        self.names.append(name)
        note = decay_rounding(module, node, self.dt)
        if note:
            log.warning("NIR node '%s': %s", name, note)
            self.notes.append(f"{name}: {note}")
        if name in self.top.feedback:
            module = self.recurrent(name, module, shape)
        layers += list(module) if isinstance(module, nn.Sequential) else [module]
        return self.out_shape(name, module, shape)

    def recurrent(self, name: str, module: nn.Module, shape: tuple[int, ...]) -> nn.Sequential:
        """Recurrent(neuron, feedback chain); layers the kind put before the neuron (a CubaLIF's input
        gain, linear) act on the input and on the feedback alike."""
        before = list(module)[:-1] if isinstance(module, nn.Sequential) else []
        neuron = module[-1] if isinstance(module, nn.Sequential) else module
        feedback: list[nn.Module] = []
        fb_shape = shape
        for node in self.top.feedback[name]:
            fb_shape = self.add(node, fb_shape, feedback)
        if fb_shape != shape:
            raise ConfigError(f"NIR node '{name}' ({type(self.graph.nodes[name]).__name__}) reads its own output "
                              f"back with shape {fb_shape}; its input has shape {shape}")
        return nn.Sequential(*before, Recurrent(neuron, feedback + [copy.deepcopy(m) for m in before]))

    def out_shape(self, name: str, module: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
        try:
            net = Network.of(nn.Sequential(module), shape)
        except ConfigError as e:
            raise ConfigError(f"NIR node '{name}' ({type(self.graph.nodes[name]).__name__}) does not take the shape "
                              f"{shape} that reaches it: {e}") from None
        return net[net.output].shape
