"""What snnexp knows about each layer type: its role in a network and how every consumer maps it.

A `LayerKind` is declared once per layer type, in the file that defines the layer (or, for
torch's own layers, in `snnexp/network/layers/`), with `@register(LayerClass)`. Every part that
reads a model's structure (NIR export and import, Loihi, ANN->SNN conversion, STDP, the metrics,
the neuron + pool fusion) reads it through `kind_of(module)` and the kind's declared role and
methods, never through its own `isinstance` ladder. A layer type nobody declared is refused here,
once, naming the layer and what to do.

Roles (what a consumer may assume about a layer):
- SYNAPSE: a weighted sum, `weight` [out, in, ...] and `bias` [out] or None (Linear, Conv2d);
- NORM: an affine map per channel that folds into the synapse before it (BatchNorm);
- POOL: pooling over space; `maximum` tells max from avg/sum (weighted sums);
- SHAPE: moves values without arithmetic (Flatten);
- PASS: the identity at evaluation (Dropout, Identity);
- SCALE: a fixed linear map with nothing to learn (Voting, Gain);
- NEURON: a stateful layer run over time (spiking neurons; the leaky-integrator readout);
- ACTIVATION: an ANN nonlinearity, where conversion puts a neuron (ReLU, QCFS);
- JOIN: where a residual connection meets its block's output (`snnexp.network.blocks.Residual`);
- RECURRENT: a neuron layer with a synapse from itself (`snnexp.network.blocks.Recurrent`);
- ATTENTION: a product of spike tensors (q k^T v: `snnexp.network.attention`), no weights.
"""
from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import torch
from torch import Tensor, nn

from snnexp.errors import ConfigError

if TYPE_CHECKING:
    import nir


class Role(enum.Enum):
    SYNAPSE = "synapse"
    NORM = "norm"
    POOL = "pool"
    SHAPE = "shape"
    PASS = "pass"
    SCALE = "scale"
    NEURON = "neuron"
    ACTIVATION = "activation"
    JOIN = "join"
    RECURRENT = "recurrent"
    ATTENTION = "attention"


class Unsupported(ConfigError):
    """A consumer cannot express a layer; the message names the layer and says what to do."""


class LayerKind:
    """One layer type's role and its mapping for each consumer. Subclass per layer type.

    Methods take the layer `m` and, where shapes matter, `shape` (one sample's: no batch, no time).
    A method a consumer needs and a kind does not override raises `Unsupported` with the reason,
    so the refusal is declared here and not guessed by the consumer.
    """

    role: Role
    name: str = "layer"  # prefix of its node names in exported graphs (fc, conv, lif, ...)
    homogeneous: bool = False  # f(c x) = c f(x) for c > 0: conversion's normalisation passes through it
    spiking: bool = False  # NEURON: emits spikes (False: the leaky-integrator readout's membrane)
    plastic: bool = False  # SYNAPSE: STDP may train its weight
    maximum: bool = False  # POOL: a maximum over each window (not a weighted sum: no NIR or Loihi form)
    nir_types: tuple[type, ...] = ()  # the NIR node classes `from_nir` reads

    def label(self, m: nn.Module) -> str:
        """Prefix of the layer's node names in exported graphs and metrics (fc, conv, lif, ...)."""
        return self.name

    # -- shapes ------------------------------------------------------------------------------
    def out_shape(self, m: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
        """One sample's output shape for input `shape`: a zero sample through a stateless layer."""
        was_training = m.training
        dtype = next(m.parameters(), torch.zeros(())).dtype
        with torch.no_grad():
            out = m.eval()(torch.zeros(1, *shape, dtype=dtype))
        m.train(was_training)
        return tuple(out.shape[1:])

    # -- NIR -----------------------------------------------------------------------------------
    def to_nir(self, m: nn.Module, shape: tuple[int, ...], dt: float) -> "nir.NIRNode | None":
        """The NIR node of `m` (None: left out of the graph, e.g. dropout at evaluation; an `add` join,
        whose readers read both branches). `shape` is the layer's input shape, or None before
        training when it is unknown (`check_exportable`): then raise the shape-free refusals and
        return a node without the shape's fields, or None."""
        raise Unsupported(f"{type(m).__name__} has no NIR node")

    def from_nir(self, node: "nir.NIRNode", name: str, shape: tuple[int, ...], dt: float) -> nn.Module:
        """The layer that computes a NIR node of one of `nir_types` at dt seconds per step."""
        raise Unsupported(f"NIR node '{name}' ({type(node).__name__}) is not read by {type(self).__name__}")

    # -- ANN->SNN conversion -------------------------------------------------------------------
    def ann(self, m: nn.Module, last: bool) -> nn.Module | None:
        """The layer's counterpart in the ANN a spiking backbone is trained as (None: dropped).

        last: `m` is the network's final layer. Default: an unchanged copy (stateless layers).
        """
        import copy

        return copy.deepcopy(m)

    def snn(self, m: nn.Module) -> nn.Module | None:
        """The layer's counterpart in the SNN a (normalised) ANN converts to (None: dropped). ACTIVATIONs
        become the conversion's neuron and SYNAPSEs carry its threshold: `snnexp.learners.conversion`.
        Default: an unchanged copy (stateless layers)."""
        import copy

        return copy.deepcopy(m)

    def average(self, m: nn.Module) -> nn.Module:
        """POOL with `maximum`: the average pool over the same windows (conversion's max_pool=avg)."""
        raise Unsupported(f"{type(m).__name__} has no average-pool counterpart")

    # -- metrics -------------------------------------------------------------------------------
    def synops(self, m: nn.Module, x: Tensor) -> Tensor:
        """SYNAPSE: effective synaptic operations of m(x), a float64 0-dim tensor (NeuroBench)."""
        raise Unsupported(f"{type(m).__name__} has no synaptic-operation count")

    def dense_ops(self, m: nn.Module, shape: tuple[int, ...]) -> int:
        """SYNAPSE: operations of m on an input of `shape` (batch included) if all were nonzero."""
        raise Unsupported(f"{type(m).__name__} has no synaptic-operation count")

    # -- STDP ----------------------------------------------------------------------------------
    def stdp_geometry(self, m: nn.Module) -> Any:
        """SYNAPSE with `plastic`: what the STDP rule needs of its geometry (a conv's `Conv`; None: dense)."""
        return None

    # -- fusion --------------------------------------------------------------------------------
    def fused_window(self, m: nn.Module) -> int:
        """POOL: k when the pool is a k x k max-pool of stride k that a spiking neuron before it may
        compute in the same kernel (`Neuron.forward_pooled`); 0 otherwise."""
        return 0


_KINDS: dict[type, LayerKind] = {}
_NIR: dict[type, LayerKind] = {}
K = TypeVar("K", bound=type)


def register(*layer_types: type) -> Callable[[type[LayerKind]], type[LayerKind]]:
    """Class decorator: declare the kind of `layer_types` (and of their subclasses)."""

    def add(kind_cls: type[LayerKind]) -> type[LayerKind]:
        kind = kind_cls()
        for t in layer_types:
            _KINDS[t] = kind
        for t in kind.nir_types:
            _NIR[t] = kind
        return kind_cls

    return add


def find_kind(m: nn.Module) -> LayerKind | None:
    """The kind declared for `m`'s class or its nearest base class; None if none was."""
    for cls in type(m).__mro__:
        if cls in _KINDS:
            return _KINDS[cls]
    return None


def kind_of(m: nn.Module, where: str = "") -> LayerKind:
    """The kind of `m`; ConfigError naming it (at `where`, e.g. "model.net.3") when none is declared."""
    kind = find_kind(m)
    if kind is None:
        at = f" at {where}" if where else ""
        raise ConfigError(
            f"layer{at} ({type(m).__name__}) is not a layer type snnexp's network representation knows; "
            f"known: {known()}. Declare it with @snnexp.network.register({type(m).__name__}) on a LayerKind "
            f"(snnexp/network/kinds.py says what a kind declares)")
    return kind


def nir_kind(node: Any) -> LayerKind | None:
    """The kind that reads NIR nodes of `node`'s class, or None."""
    for cls in type(node).__mro__:
        if cls in _NIR:
            return _NIR[cls]
    return None


def nir_readable() -> list[str]:
    """Names of the NIR node classes some kind reads (for messages)."""
    return sorted({t.__name__ for t in _NIR})


def known() -> list[str]:
    return sorted({t.__name__ for t in _KINDS})
