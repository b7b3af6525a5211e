"""Run one NIR graph in every installed NIR simulator: snnexp's own importer, snnTorch 1.0, Norse 1.1.

Each runner takes the graph and x_seq [T, N, *in_shape] and returns the Output node's values
[T, N, K] (float32, on the CPU). The peers run one sample at a time, without a batch dimension,
as NIR's shapes are written: both map NIR's Flatten(start_dim=0) to torch's Flatten(0), which
would fold a batch into the features. Where a peer cannot run a graph faithfully (known importer
bugs, listed in `snntorch_refusal` / `norse_refusal` with the node and why: e.g. snnTorch fails on
recurrent graphs, Norse's executor sums residual branches from different steps) the runner raises
`PeerRefusal` instead of returning wrong spikes.
"""
from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import logging
import warnings
from typing import Callable

import nir
import numpy as np
import torch
from torch import Tensor

from snnexp.models.base import SpikingModel
from snnexp.models.nir_import import Topology, graph_dt, layers_from_nir, readout

# nirtorch's default map (used by snnTorch's importer) and snnTorch 1.0's own node_map
SNNTORCH_NODES = (nir.Input, nir.Output, nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d, nir.Flatten,
                  nir.AvgPool2d, nir.SumPool2d, nir.IF, nir.LIF, nir.CubaLIF)
# Norse 1.1's `_import_norse_module` (norse/torch/utils/import_nir.py); nirtorch.load drops anything else
NORSE_NODES = (nir.Input, nir.Output, nir.Affine, nir.Linear, nir.Conv2d, nir.Flatten, nir.SumPool2d, nir.IF,
               nir.LIF, nir.CubaLIF)


class PeerRefusal(Exception):
    """A peer cannot run this graph as NIR defines it; the message names the node and the reason."""


def _values(node: nir.NIRNode, field: str) -> np.ndarray:
    return np.asarray(getattr(node, field), dtype=np.float64)


def _nonzero(node: nir.NIRNode, field: str) -> bool:
    return bool(np.any(_values(node, field) != 0))


def _successors(graph: nir.NIRGraph, name: str) -> list[str]:
    return [dst for src, dst in graph.edges if src == name]


def snntorch_refusal(graph: nir.NIRGraph) -> str | None:
    """The first node snnTorch 1.0's `import_from_nir` cannot run faithfully, and why; None if none."""
    for name in Topology.of(graph).feedback:
        return (f"snnTorch 1.0 import_from_nir: node '{name}' ({type(graph.nodes[name]).__name__}) reads its own "
                f"output (a recurrent edge): read from a file, such a graph fails in nirtorch's interpreter "
                f"('GraphModule' object has no attribute 'items'; snnTorch's own RLeaky exports too), and the graph "
                f"object before writing runs with other spikes")
    for name in graph.nodes:
        node = graph.nodes[name]
        kind = type(node).__name__
        where = f"snnTorch 1.0 import_from_nir: node '{name}' ({kind})"
        if not isinstance(node, SNNTORCH_NODES):
            return f"{where} has no mapping (nirtorch.nir_to_torch raises 'Unknown node type')"
        if isinstance(node, nir.IF):
            return (f"{where} becomes snn.Leaky(beta=0.9) with reset by subtraction and init_hidden=False: a leak "
                    f"and a reset the node does not have")
        if isinstance(node, (nir.LIF, nir.CubaLIF)):
            if _nonzero(node, "v_leak"):
                return f"{where} has v_leak != 0, which snnTorch asserts against"
            if _nonzero(node, "v_reset"):
                return f"{where} has v_reset != 0; snnTorch's Leaky/Synaptic reset to zero and ignore it"
            if np.unique(_values(node, "v_threshold")).size > 1:
                return f"{where} has one threshold per neuron; snnTorch asserts a single value"
    return None


def norse_refusal(graph: nir.NIRGraph) -> str | None:
    """The first node Norse 1.1's `from_nir` cannot run faithfully, and why; None if none.

    Norse runs graphs with nirtorch 2.6's GraphExecutor, which orders the nodes depth-first from the
    Input (a node may run before one of its inputs, and then takes that input's value of the
    previous step, or none) and returns the last node it ran: sums of branches come out wrong, and
    a recurrent input is left out at the first step.
    """
    executor = "Norse 1.1 from_nir (nirtorch 2.6's GraphExecutor, depth-first from the Input)"
    topology = Topology.of(graph)
    for name, chain in topology.feedback.items():
        biased = [n for n in chain if isinstance(graph.nodes[n], nir.Affine) and _nonzero(graph.nodes[n], "bias")]
        if biased:
            return (f"{executor}: node '{name}' ({type(graph.nodes[name]).__name__}) reads its own output through "
                    f"'{biased[0]}', whose bias the executor leaves out at the first step (no previous value); NIR's "
                    f"recurrence reads zero spikes there, so the bias acts from the first step")
    for name, sources in topology.inputs.items():
        if len(sources) > 1:
            return (f"{executor}: node '{name}' ({type(graph.nodes[name]).__name__}) sums {len(sources)} inputs; the "
                    f"executor runs it when the first of its branches reaches it, with the other branches' values "
                    f"of the previous step, and returns the last node of the last branch, not the Output")
    for name in graph.nodes:
        node = graph.nodes[name]
        kind = type(node).__name__
        where = f"Norse 1.1 from_nir: node '{name}' ({kind})"
        if not isinstance(node, NORSE_NODES):
            after = _successors(graph, name)
            fate = ("and nirtorch.load leaves it out silently: the graph's output becomes this node's input"
                    if after and all(isinstance(graph.nodes[a], nir.Output) for a in after) else
                    f"so nirtorch.load leaves it out and fails on the edge to it (KeyError: '{name}')")
            return f"{where} has no mapping in Norse's _import_norse_module, {fate}"
        if isinstance(node, (nir.IF, nir.LIF, nir.CubaLIF)) and _nonzero(node, "v_reset"):
            return f"{where} has v_reset != 0; Norse's importer does not pass v_reset (it resets to 0)"
        if isinstance(node, (nir.IF, nir.LIF)) and not np.allclose(_values(node, "r"), 1.0):
            return f"{where} has r != 1; Norse's importer ignores r (it warns)"
        if isinstance(node, nir.CubaLIF) and _nonzero(node, "v_leak"):
            return f"{where} has v_leak != 0; Norse's importer also puts it into the synaptic current's leak"
        if isinstance(node, nir.SumPool2d) and np.any(np.asarray(node.padding) != 0):
            return f"{where} is padded; torch's LPPool2d, which Norse uses, has no padding"
    return None


def run_snnexp(graph: nir.NIRGraph, x_seq: Tensor, dt: float | None = None) -> Tensor:
    """snnexp's importer, batched."""
    imported = layers_from_nir(graph, dt)
    model = SpikingModel(imported.layers, step_mode="m", readout=readout(imported.layers)).eval()
    with torch.no_grad():
        return model(x_seq.float()).cpu()


def run_snntorch(graph: nir.NIRGraph, x_seq: Tensor, dt: float | None = None) -> Tensor:
    """snnTorch 1.0's `import_from_nir` (a torch.fx module over nirtorch), one sample at a time."""
    import snntorch
    from snntorch.import_nir import import_from_nir

    if graph_dt(graph, dt) != 1e-4:
        raise PeerRefusal(f"snnTorch 1.0 import_from_nir assumes dt = 1e-4 s; the graph uses {graph_dt(graph, dt):g}")
    reason = snntorch_refusal(graph)
    if reason:
        raise PeerRefusal(reason)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a line per graph and per scaled threshold
        net = import_from_nir(graph).eval()
    neurons = [m for m in net.modules() if isinstance(m, snntorch.SpikingNeuron)]

    def sample(x: Tensor) -> Tensor:  # [T, *in_shape] -> [T, K]
        for m in neurons:  # init_hidden neurons keep their state in the module
            m.mem = torch.zeros(0)
            if hasattr(m, "syn"):
                m.syn = torch.zeros(0)
        return _steps(net, x)

    return _per_sample(sample, x_seq)


def run_norse(graph: nir.NIRGraph, x_seq: Tensor, dt: float | None = None) -> Tensor:
    """Norse 1.1's `norse.torch.from_nir` (nirtorch's GraphExecutor), one sample at a time."""
    import norse.torch

    reason = norse_refusal(graph)
    if reason:
        raise PeerRefusal(reason)
    with warnings.catch_warnings():  # nirtorch.load's DeprecationWarning
        warnings.simplefilter("ignore")
        logging.getLogger().disabled, was = True, logging.getLogger().disabled
        try:
            net = norse.torch.from_nir(graph, dt=graph_dt(graph, dt)).eval()
        finally:
            logging.getLogger().disabled = was

    return _per_sample(lambda x: _steps(net, x), x_seq)


def _steps(net: Callable, x: Tensor) -> Tensor:
    """x [T, ...] stepped through a stateful `net(x_t, state) -> (out, state)`: the outputs [T, ...]."""
    state, outs = None, []
    for x_t in x:
        out, state = net(x_t, state)
        outs.append(out)
    return torch.stack(outs)


def _per_sample(run: Callable[[Tensor], Tensor], x_seq: Tensor) -> Tensor:
    """[T, N, ...] -> [T, N, K], one unbatched sample [T, ...] at a time."""
    with torch.no_grad():
        return torch.stack([run(x_seq[:, n].float()).float() for n in range(x_seq.shape[1])], 1)


SIMULATORS: dict[str, tuple[str | None, Callable[..., Tensor]]] = {
    "snnexp": (None, run_snnexp),
    "snntorch": ("snntorch", run_snntorch),
    "norse": ("norse", run_norse),
}


def installed() -> list[str]:
    """The simulators whose package is importable here (snnexp always)."""
    return [name for name, (package, _) in SIMULATORS.items()
            if package is None or importlib.util.find_spec(package) is not None]


def simulate(name: str, graph: nir.NIRGraph, x_seq: Tensor, dt: float | None = None) -> Tensor:
    """Run `graph` on x_seq [T, N, ...] in simulator `name` -> [T, N, K]; PeerRefusal if it cannot.
    Each simulator gets its own copy (snnTorch's importer rewrites a recurrent graph in place)."""
    return SIMULATORS[name][1](copy.deepcopy(graph), x_seq, dt)
