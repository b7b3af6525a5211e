"""Write a LoihiNet as lava-dl's netx HDF5 and as a NIR graph.

netx (what `lava.lib.dl.netx.hdf5.Network` reads): root group `layer`, subgroups '0', '1', ...
in order; each has `type` ('input' | 'flatten' | 'dense' | 'conv', fixed-length ASCII as lava-dl
writes it) and `shape` (c, h, w) or (n,); dense adds `inFeatures`, `outFeatures`, `weight`
[out, in]; conv adds `inChannels`, `outChannels`, `kernelSize`, `stride`, `padding`, `dilation`
(each (h, w)), `groups`, `weight` [out, in, kh, kw] (torch's cross-correlation; netx flips it);
`bias` (the neuron bias mantissa, only when nonzero); and `neuron/` with type 'CUBA', `iDecay`
(Lava du + 1), `vDecay` (Lava dv), `vThMant`, `refDelay` 1, `gradedSpike` False; and, for an
initial membrane (netx has no field for it), `vInitMant` and `vInitExp`: snnexp's Lava runner
sends a first-step pulse of vInitMant << vInitExp (`snnexp.deploy.loihi.convert`); lava-dl's
reader ignores them. Integers throughout, in Loihi's units.

netx reads chains: a LoihiNet with a recurrent layer or a shortcut is refused there (`write_netx`).
snnexp's Lava runner reads the same layout with more in a layer's group, `recurrent` [out, out]
(a Dense from the layer's neurons to themselves) and `skip/` (a residual shortcut: `type`,
`source` (layer index, -1 the input), `weight`, `stride`, `padding`), from `write_lava`
(lava.h5, which no netx reader should be given).

NIR (`nir` package): Input -> [Flatten] -> Conv2d | Linear -> CubaLIF ... -> Output, the same
integer weights, with continuous time constants for a step of `dt` seconds (Euler: decay =
dt/tau); a recurrent layer adds a Linear `rec<i>` from its CubaLIF back to it (a cycle, as NIR
writes recurrence). Loihi's rounding, 24-bit wrap and its one-step synapse delay have no NIR form.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from snnexp.deploy.loihi.net import LoihiLayer, LoihiNet
from snnexp.deploy.nir.export import write_graph
from snnexp.errors import ConfigError
from snnexp.neurons.cuba import DECAY_UNITY
from snnexp.neurons.nir import cuba_lif


def _type(group: h5py.Group, name: str) -> None:
    group.create_dataset("type", (1,), "S10", [name.encode("ascii")])


def refuse_netx(net: LoihiNet) -> None:
    """ConfigError when `net` is not a chain that lava-dl's netx can read (a recurrent layer, a shortcut)."""
    for layer in net.layers:
        if layer.recurrent is not None or layer.skip is not None:
            what = ("is recurrent (a Dense from its neurons to themselves)" if layer.recurrent is not None else
                    "has a residual shortcut (a synapse from an earlier layer)")
            raise ConfigError(
                f"deploy=loihi: the layer after {layer.name} {what}, and lava-dl's netx format (net.h5) reads chains "
                f"of layers only: set deploy.netx=false (snnexp's Lava runner still runs it from lava.h5, and net.nir "
                f"keeps the graph)")


def write_netx(net: LoihiNet, path: Path) -> Path:
    """Write `net` as a netx HDF5 file at `path` (a chain: `refuse_netx`)."""
    refuse_netx(net)
    return _write(net, path)


def write_lava(net: LoihiNet, path: Path) -> Path:
    """Write `net` for snnexp's Lava runner: netx's layout, plus `recurrent` weights (not netx: see above)."""
    return _write(net, path)


def _write(net: LoihiNet, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        root = f.create_group("layer")
        index = 0

        def group() -> h5py.Group:
            nonlocal index
            g = root.create_group(str(index))
            index += 1
            return g

        g = group()
        _type(g, "input")
        g.create_dataset("shape", data=np.array(net.in_shape))
        for layer in net.layers:
            if layer.flatten_from is not None:
                g = group()
                _type(g, "flatten")
                g.create_dataset("shape", data=np.array(layer.in_shape))
            _write_layer(group(), layer)
    return path


def _write_layer(g: h5py.Group, layer: LoihiLayer) -> None:
    _type(g, layer.kind)
    g.create_dataset("shape", data=np.array(layer.out_shape))
    if layer.kind == "dense":
        g.create_dataset("inFeatures", data=layer.weight.shape[1])
        g.create_dataset("outFeatures", data=layer.weight.shape[0])
    else:
        g.create_dataset("inChannels", data=layer.weight.shape[1])
        g.create_dataset("outChannels", data=layer.weight.shape[0])
        g.create_dataset("kernelSize", data=np.array(layer.weight.shape[2:]))
        g.create_dataset("stride", data=np.array(layer.stride))
        g.create_dataset("padding", data=np.array(layer.padding))
        g.create_dataset("dilation", data=np.array([1, 1]))
        g.create_dataset("groups", data=1)
    g.create_dataset("weight", data=layer.weight.astype(np.int32))
    if layer.recurrent is not None:
        g.create_dataset("recurrent", data=layer.recurrent.astype(np.int32))
    if layer.skip is not None:
        s = g.create_group("skip")
        _type(s, layer.skip.kind)
        s.create_dataset("source", data=layer.skip.source)
        s.create_dataset("weight", data=layer.skip.weight.astype(np.int32))
        s.create_dataset("stride", data=np.array(layer.skip.stride))
        s.create_dataset("padding", data=np.array(layer.skip.padding))
    if np.any(layer.bias != 0):
        g.create_dataset("bias", data=layer.bias.astype(np.int32))
    n = g.create_group("neuron")
    _type(n, "CUBA")
    n.create_dataset("iDecay", data=layer.i_decay)
    n.create_dataset("vDecay", data=layer.v_decay)
    n.create_dataset("vThMant", data=layer.vth)
    n.create_dataset("refDelay", data=1)
    n.create_dataset("gradedSpike", data=False)
    if layer.v_init:
        n.create_dataset("vInitMant", data=layer.v_init_mant)
        n.create_dataset("vInitExp", data=layer.v_init_exp)


def write_nir(net: LoihiNet, path: Path, dt: float = 1e-4):
    """Write `net` as a NIR graph at `path` (through the one NIR writer, `snnexp.deploy.nir.write_graph`);
    returns the graph. dt: seconds per time step."""
    import nir

    nodes: dict = {}
    edges: list[tuple[str, str]] = []
    last = "input"

    def add(name: str, node) -> None:
        nonlocal last
        nodes[name] = node
        edges.append((last, name))
        last = name

    for i, layer in enumerate(net.layers):
        if layer.flatten_from is not None:
            add(f"flatten{i}", nir.Flatten(input_type={"input": np.array(layer.flatten_from)}, start_dim=0, end_dim=-1))
        w = layer.weight.astype(np.float64)
        if layer.kind == "conv":
            add(f"conv{i}", nir.Conv2d(input_shape=tuple(layer.in_shape[1:]), weight=w, stride=layer.stride,
                                       padding=layer.padding, dilation=1, groups=1, bias=np.zeros(w.shape[0])))
        else:
            add(f"fc{i}", nir.Linear(weight=w))
        add(f"lif{i}", _cuba_lif(layer, dt))
        if layer.skip is not None:  # a second synapse into lif<i>: NIR sums a node's inputs
            _add_skip(nodes, edges, i, layer)
        if layer.recurrent is not None:  # lif -> rec -> lif: the spikes of one step feed the next
            nodes[f"rec{i}"] = nir.Linear(weight=layer.recurrent.astype(np.float64))
            edges += [(f"lif{i}", f"rec{i}"), (f"rec{i}", f"lif{i}")]
    edges.append((last, "output"))
    metadata = {
        "source": "snnexp deploy=loihi", "dt": dt, "units": "Loihi integer weight units",
        "note": "lava-nc adds a one-step delay per synapse layer and rounds the decays; NIR has neither",
        **({"v_init": [float(layer.v_init) for layer in net.layers],
            "v_init_note": "initial membrane per layer (threshold-mantissa units); NIR nodes have no initial state"}
           if any(layer.v_init for layer in net.layers) else {})}
    return write_graph(nodes, edges, net.in_shape, net.layers[-1].out_shape, metadata, path)


def _add_skip(nodes: dict, edges: list, i: int, layer: LoihiLayer) -> None:
    """skip<i> (Linear or Conv2d, after skipflatten<i> when it flattens an image) from lif<source> (or the
    input) into lif<i>."""
    import nir

    skip, w = layer.skip, layer.skip.weight.astype(np.float64)
    src = "input" if skip.source < 0 else f"lif{skip.source}"
    if skip.flatten_from is not None:
        nodes[f"skipflatten{i}"] = nir.Flatten(input_type={"input": np.array(skip.flatten_from)}, start_dim=0,
                                               end_dim=-1)
        edges.append((src, f"skipflatten{i}"))
        src = f"skipflatten{i}"
    if skip.kind == "conv":
        nodes[f"skip{i}"] = nir.Conv2d(input_shape=tuple(skip.in_shape[1:]), weight=w, stride=skip.stride,
                                       padding=skip.padding, dilation=1, groups=1, bias=np.zeros(w.shape[0]))
    else:
        nodes[f"skip{i}"] = nir.Linear(weight=w)
    edges += [(src, f"skip{i}"), (f"skip{i}", f"lif{i}")]


def _cuba_lif(layer: LoihiLayer, dt: float):
    """CubaLIF with tau_syn dI/dt = -I + w_in S and tau_mem dv/dt = (v_leak - v) + r I, Euler at dt
    (`snnexp.neurons.nir.cuba_lif`). No voltage leak (dv = 0) is written as the smallest, 1/4096."""
    shape = layer.out_shape
    bias = layer.bias.reshape(-1, *[1] * (len(shape) - 1)).astype(np.float64)  # [C] -> [C, 1, 1] for images
    return cuba_lif(shape, layer.i_decay / DECAY_UNITY, max(layer.v_decay, 1) / DECAY_UNITY, layer.vth, bias, dt)
