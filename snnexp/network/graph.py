"""The one representation of a network: its layers as nodes, with their kinds, inputs and shapes.

    net = Network.of(model, in_shape=(1, 28, 28))
    for node in net:                      # topological order, from the input to the output
        node.name, node.kind.role, node.inputs, node.delayed, node.shape

`Network.of` reads a model's layer tree once: a SpikingModel's `net` (or a bare nn.Sequential)
is a series of layers, a nested nn.Sequential a series too, and a block declares its own nodes
(`Block.expand`): a `Residual` forks its input into two branches and joins them in a JOIN node; a
`Recurrent` becomes its neuron node, fed by its feedback chain at the previous step (`delayed`). Every leaf layer gets its kind
(`snnexp.network.kinds`), so a layer type nobody declared is refused here, with its path.
Nothing else in snnexp walks a model's layers.

Node names are module paths relative to the model ("net.4.body.1"); "input" is the model's input.
A node's `inputs` are summed (NIR's convention), except a JOIN's: (body output, shortcut output).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

from torch import nn

from snnexp.errors import ConfigError, check
from snnexp.network.blocks import Block
from snnexp.network.kinds import LayerKind, Role, kind_of

INPUT = "input"


@dataclass(frozen=True)
class Node:
    """One layer of the network."""

    name: str  # the module's path in the model ("net.3", "net.4.body.1")
    module: nn.Module
    kind: LayerKind
    inputs: tuple[str, ...]  # nodes whose output of the same step feeds this one (INPUT: the model's input)
    delayed: tuple[str, ...] = ()  # nodes whose output of the previous step feeds it (recurrence)
    shape: tuple[int, ...] | None = None  # one sample's output shape (no batch, no time), when known
    in_shape: tuple[int, ...] | None = None  # ... and input shape

    @property
    def role(self) -> Role:
        return self.kind.role

    @property
    def label(self) -> str:
        """The node's short name in exported graphs and metrics: kind prefix + its path's indices
        ("conv3" for net.3, "lif4_body_2" for net.4.body.2)."""
        path = self.name.split(".", 1)[1] if self.name.startswith("net.") else self.name
        return f"{self.kind.label(self.module)}{path.replace('.', '_')}"


class Network:
    """The nodes of a model in topological order, plus its output node."""

    def __init__(self, nodes: list[Node], output: str, in_shape: tuple[int, ...] | None):
        self.nodes = {n.name: n for n in nodes}
        self.output = output
        self.in_shape = in_shape

    @classmethod
    def of(cls, model: nn.Module, in_shape: Sequence[int] | None = None) -> "Network":
        """The network of a SpikingModel (its `net`) or of an nn.Sequential of layers.

        in_shape: one sample's input shape; with it every node gets its shapes (one zero sample
        through each stateless layer).
        """
        layers, prefix = _layers(model)
        builder = _Builder(None if in_shape is None else tuple(int(n) for n in in_shape))
        output = builder.series(layers, prefix, INPUT)
        return cls(builder.nodes, output, builder.in_shape)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def with_role(self, *roles: Role) -> list[Node]:
        return [n for n in self if n.role in roles]

    def successors(self, name: str) -> list[Node]:
        """Nodes that read `name` at the same step (not through a recurrent edge)."""
        return [n for n in self if name in n.inputs]

    def is_chain(self) -> bool:
        """True when every node reads the one before it and nothing else (no branch, no recurrence)."""
        previous = INPUT
        for node in self:
            if node.inputs != (previous,) or node.delayed:
                return False
            previous = node.name
        return previous == self.output

    def branched(self) -> list[Node]:
        """The nodes that make the network more than a chain: joins and recurrent neurons."""
        return [n for n in self if n.role is Role.JOIN or n.delayed]

    def spiking(self) -> list[Node]:
        """The spiking neuron layers, in order."""
        return [n for n in self if n.role is Role.NEURON and n.kind.spiking]

    def neurons(self) -> list[Node]:
        return [n for n in self if n.role is Role.NEURON]


class Layered(nn.Module):
    """A module whose layers are the nn.Sequential `net` (every SpikingModel is one)."""

    net: nn.Sequential


def _layers(model: nn.Module) -> tuple[nn.Sequential, str]:
    """The layer series of a model and its path prefix: a Layered model -> (model.net, "net")."""
    if isinstance(model, Layered):
        return model.net, "net"
    check(isinstance(model, nn.Sequential), "model", type(model).__name__,
          "the network representation reads a SpikingModel or an nn.Sequential of layers")
    return model, ""


class _Builder:
    """Builds the nodes (the `Builder` protocol blocks expand themselves with)."""

    def __init__(self, in_shape: tuple[int, ...] | None):
        self.nodes: list[Node] = []
        self.shapes: dict[str, tuple[int, ...] | None] = {INPUT: in_shape}
        self.in_shape = in_shape

    def series(self, layers: nn.Sequential, prefix: str, src: str) -> str:
        """Add `layers` one after the other from `src`; the name of the last node (src if empty)."""
        for i, m in enumerate(layers):
            name = f"{prefix}.{i}" if prefix else str(i)
            src = self.layer(m, name, src)
        return src

    def layer(self, m: nn.Module, name: str, src: str) -> str:
        if isinstance(m, nn.Sequential):
            return self.series(m, name, src)
        if isinstance(m, Block):
            return m.expand(self, name, src)  # a block declares its own nodes
        return self.add(name, m, (src,), (), _out_shape(kind_of(m, name), m, name, self.shapes[src]))

    def add(self, name: str, m: nn.Module, inputs: tuple[str, ...], delayed: tuple[str, ...],
            shape: tuple[int, ...] | None) -> str:
        self.nodes.append(Node(name, m, kind_of(m, name), inputs, delayed, shape, self.shapes[inputs[0]]))
        self.shapes[name] = shape
        return name


def _out_shape(kind: LayerKind, m: nn.Module, name: str, shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
    if shape is None:
        return None
    if kind.role is Role.NEURON:
        return shape
    try:
        return kind.out_shape(m, shape)
    except RuntimeError as e:
        raise ConfigError(f"layer {name} ({type(m).__name__}) does not take the shape {shape} that reaches it: "
                          f"{e}") from None
