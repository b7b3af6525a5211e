"""Export a trained float snnexp model as a NIR graph (`export_nir`).

The graph is a chain Input -> ... -> Output with one node per layer of `model.net`:

    nn.Linear           -> Affine (Linear without a bias)
    nn.Conv2d           -> Conv2d (zero bias when it has none)
    nn.BatchNorm1d/2d   -> folded into the Linear/Conv2d just before it (float64, then float32)
    nn.AvgPool2d        -> AvgPool2d;  SumPool2d (snnexp.models.nir) -> SumPool2d
    nn.Flatten          -> Flatten (NIR shapes have no batch: start_dim - 1)
    Voting(p)           -> Linear with 1/p in each class's block
    neurons             -> IF, LIF, CubaLIF, LI with their real time constants (neurons/nir.py)
    nn.Dropout, nn.Identity: left out (evaluation)

Refused by name (ConfigError): max-pooling (NIR 1.0 has no max node, and a maximum is not a
weighted sum), reset by subtraction, ALIF's adaptive threshold, Loihi's fixed point, layers with
no NIR node. Shapes exclude batch and time; dt (seconds per step) goes into the metadata.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import nir
import numpy as np
import torch
from torch import Tensor, nn

from snnexp.models.batchnorm import fold_batchnorm_params
from snnexp.neurons.nir import DEFAULT_DT, neuron_node
from snnexp.errors import ConfigError, check
from snnexp.network.layers import Voting
from snnexp.network.layers import SumPool2d
from snnexp.neurons.base import Neuron

SKIPPED = (nn.Dropout, nn.Identity)
MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveMaxPool2d)


@dataclass
class _Synapse:
    """A Linear/Conv2d waiting for a BatchNorm to fold into it (float64)."""

    name: str
    module: nn.Module
    weight: Tensor
    bias: Tensor
    in_shape: tuple[int, ...]


AVG_POOLS = ("avg", "sum")


def export_nir(model: nn.Module, in_shape: Sequence[int], path: str | Path | None = None,
               dt: float = DEFAULT_DT, avg_pool: str = "avg") -> nir.NIRGraph:
    """The NIR graph of `model` (a SpikingModel, or an nn.Sequential of its layers) for inputs of
    `in_shape` (one sample, no batch or time), with dt seconds per step; written to `path` if given.

    avg_pool "avg" writes each AvgPool2d as NIR's AvgPool2d; "sum" as a SumPool2d with the
    1/window factor folded into the synapse next to it (the one before when the pool acts on
    currents, the one after when it acts on spikes): the same network for importers without
    AvgPool2d (Norse 1.1), exact when the window area is a power of two (2x2).
    The model is not changed. Example: `export_nir(learner.model, dm.in_shape, "net.nir")`.
    """
    check(float(dt) > 0, "dt", dt, "must be > 0 seconds per step")
    check(avg_pool in AVG_POOLS, "avg_pool", avg_pool, f"choose one of {list(AVG_POOLS)}")
    layers = _layers(model)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array(in_shape)})}
    shape = tuple(int(n) for n in in_shape)
    pending: _Synapse | None = None
    carry = 1.0  # a sum pool's 1/window waiting for the next synapse's weights

    def add(name: str, node: nir.NIRNode) -> None:
        nodes[name] = node

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            add(pending.name, _synapse_node(pending))
            pending = None

    for i, m in enumerate(layers):
        kind = type(m).__name__
        if isinstance(m, SKIPPED):
            continue
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if pending is None:
                raise ConfigError(f"export to NIR: layer net.{i} ({kind}) has no Linear/Conv2d right before it to "
                                  f"fold into")
            pending.weight, pending.bias = fold_batchnorm_params(pending.weight, pending.bias, m)
            continue
        as_sum = isinstance(m, nn.AvgPool2d) and avg_pool == "sum"
        if as_sum:  # the 1/window goes into the synapse before (pooled currents) or after (pooled spikes)
            window = 1 / math.prod(_pair(m.kernel_size))
            if pending is not None:
                pending.weight, pending.bias = pending.weight * window, pending.bias * window
            else:
                carry *= window
        flush()
        refuse_layer(m, f"net.{i}")
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            bias = m.bias.detach() if m.bias is not None else torch.zeros(m.weight.shape[0])
            prefix = "fc" if isinstance(m, nn.Linear) else "conv"
            pending = _Synapse(f"{prefix}{i}", m, m.weight.detach().cpu().double() * carry, bias.cpu().double(), shape)
            carry = 1.0
        elif carry != 1.0 and not isinstance(m, (nn.AvgPool2d, nn.Flatten)):
            raise ConfigError(f"export to NIR with avg_pool=sum: layer net.{i} ({kind}) lies between an average pool "
                              f"and the synapse its 1/window should fold into: use avg_pool=avg")
        elif isinstance(m, Neuron):
            add(f"{kind.lower()}{i}", neuron_node(m, shape, float(dt), f"net.{i}"))
        else:
            add(*_shape_node(m, i, shape, as_sum))
        shape = _out_shape(m, shape)
    flush()
    if carry != 1.0:
        raise ConfigError("export to NIR with avg_pool=sum: the last average pool has no synapse after it to fold "
                          "its 1/window into: use avg_pool=avg")
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    names = list(nodes)
    graph = nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), metadata={
        "source": "snnexp", "dt": float(dt),
        "note": "snnexp spikes on v >= v_threshold, NIR on v > v_threshold (they differ only at equality)"})
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        nir.write(str(path), graph)
    return graph


def _synapse_node(syn: _Synapse) -> nir.NIRNode:
    m = syn.module
    w = syn.weight.float().numpy()  # the float32 a simulator runs; an unfolded layer is unchanged
    b = syn.bias.float().numpy()
    has_bias = m.bias is not None or bool(np.any(b != 0))
    if isinstance(m, nn.Linear):
        return nir.Affine(weight=w, bias=b) if has_bias else nir.Linear(weight=w)
    if m.padding_mode != "zeros" or isinstance(m.padding, str):
        raise ConfigError(f"export to NIR: {syn.name} (Conv2d) needs numeric zero padding, has "
                          f"padding={m.padding!r}, padding_mode={m.padding_mode!r}")
    return nir.Conv2d(input_shape=tuple(syn.in_shape[1:]), weight=w, stride=tuple(m.stride),
                      padding=tuple(m.padding), dilation=tuple(m.dilation), groups=m.groups, bias=b)


def _layers(model: nn.Module) -> nn.Sequential:
    layers = model.net if hasattr(model, "net") else model
    check(isinstance(layers, nn.Sequential), "model", type(model).__name__,
          "export_nir takes a SpikingModel or an nn.Sequential of layers")
    return layers


def refuse_layer(m: nn.Module, name: str) -> None:
    """ConfigError naming `m` when NIR cannot express it (shape-independent checks)."""
    kind = type(m).__name__
    if isinstance(m, MAX_POOLS) or "MaxPool" in kind:
        raise ConfigError(f"export to NIR: layer {name} ({kind}) is a max-pool; NIR 1.0 has no max node (a "
                          f"maximum is not a weighted sum): use model.pool=avg")
    if isinstance(m, Neuron):
        neuron_node(m, (1,), DEFAULT_DT, name)
    elif not isinstance(m, (nn.Linear, nn.Conv2d, nn.Flatten, nn.AvgPool2d, SumPool2d, Voting, *SKIPPED,
                            nn.BatchNorm1d, nn.BatchNorm2d)):
        raise ConfigError(f"export to NIR: layer {name} ({kind}) has no NIR node; NIR takes Linear, Conv2d, "
                          f"BatchNorm (folded), AvgPool2d, Flatten, Voting and the neurons IF/LIF/PLIF/CUBA/LI")


def check_exportable(model: nn.Module) -> None:
    """Raise the ConfigError `export_nir` would raise for a layer, before any training (no shapes needed)."""
    for i, m in enumerate(_layers(model)):
        refuse_layer(m, f"net.{i}")


def _shape_node(m: nn.Module, i: int, shape: tuple[int, ...], as_sum: bool = False) -> tuple[str, nir.NIRNode]:
    """Stateless layers that are not synapses: pooling, flatten, voting."""
    kind = type(m).__name__
    if isinstance(m, nn.Flatten):
        start = m.start_dim - 1 if m.start_dim > 0 else m.start_dim
        end = m.end_dim - 1 if m.end_dim > 0 else m.end_dim
        return f"flatten{i}", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=start, end_dim=end)
    if isinstance(m, (nn.AvgPool2d, SumPool2d)):
        ks, st, pad = (_pair(v) for v in (m.kernel_size, m.stride or m.kernel_size, m.padding))
        if getattr(m, "ceil_mode", False) or getattr(m, "divisor_override", None) is not None \
                or (any(pad) and not getattr(m, "count_include_pad", True)):
            raise ConfigError(f"export to NIR: layer net.{i} ({kind}) needs ceil_mode=False, no divisor_override "
                              f"and count_include_pad with padding")
        as_sum = as_sum or isinstance(m, SumPool2d)
        cls, name = (nir.SumPool2d, "sumpool") if as_sum else (nir.AvgPool2d, "avgpool")
        return f"{name}{i}", cls(kernel_size=np.array(ks), stride=np.array(st), padding=np.array(pad))
    if isinstance(m, Voting):
        k = shape[-1] // m.per_class
        weight = np.kron(np.eye(k), np.full((1, m.per_class), 1 / m.per_class)).astype(np.float32)  # [K, K*p]
        return f"voting{i}", nir.Linear(weight=weight)
    raise AssertionError(f"refuse_layer let {kind} through")


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


@torch.no_grad()
def _out_shape(m: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape after a stateless layer for one sample (neurons keep shapes)."""
    if isinstance(m, Neuron):
        return shape
    was_training = m.training
    out = m.eval()(torch.zeros(1, *shape, dtype=next(m.parameters(), torch.zeros(())).dtype))
    m.train(was_training)
    return tuple(out.shape[1:])
