"""Run an exported netx HDF5 network in Lava, bit-accurately: the script the Lava venv executes.

(No module beside this file may be named `lava`: a script's folder comes first on sys.path.)

    .venv-lava/bin/python lava_runner.py NET.h5 IN.npz OUT.npz

Needs lava-nc 0.10, numpy<2 and h5py only (no torch, no lava-dl, no snnexp import): it builds
the network from the file with lava-nc's own processes (RingBuffer -> [Dense | Conv -> LIFReset]
... -> RingBuffer sink) and runs it with Loihi2SimCfg(select_tag="fixed_pt"), compiled once.
A layer with a `recurrent` dataset (snnexp's lava.h5, not netx) also gets a Dense from its LIF
to itself; one with a `skip` group (a residual shortcut: type, source, weight, stride, padding)
also gets a synapse from an earlier LIF (or the input), delayed to its depth (`connect_skip`).

IN.npz holds `spikes` [N, X..., T] (Lava's layout: X = (x, y, c) for images, (n,) for vectors).
Samples follow each other in one run, T steps each plus one silent step (W = T + 1); LIFReset
zeroes layer l at steps k*W + l, the step sample k's silence reaches it, so no state crosses
samples. Each Dense/Conv delivers one step late, so after L layers output step t of sample k is
run step k*W + t + L + 1 (steps from 1). A layer with neuron/vInitMant (an initial membrane)
gets one more input: a clock RingBuffer spikes once per sample so that, through a Dense of that
weight (and weight_exp vInitExp), it adds the pulse to the layer's first step of each sample.
A recurrent Dense delivers its layer's spikes of step t at step t + 1, the layer's own clock:
h_t = x_t + W s_{t-1}. At a layer's reset step, though, its buffered sum holds the previous
sample's last spikes, which LIFReset does not clear (it zeroes u and v, then adds the input); so
the run pauses before each sample's reset step of each recurrent layer (depth d: after run step
k*W + d - 1) and zeroes that Dense's buffer (`a_buff`), giving s_{-1} = 0 for every sample. One
pause costs ~30 ms (one run call and one Var.set).
OUT.npz gets `spikes` [N, K, W]: per sample the output layer's reset step (only biases charge it),
then the sample's T steps; `compile_s` and `run_s`.
"""
from __future__ import annotations

import sys
import time

import h5py
import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.conv.process import Conv
from lava.proc.dense.process import DelayDense, Dense
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source
from lava.proc.lif.process import LIF, LIFReset


def read_layers(path: str) -> tuple[tuple[int, ...], list[dict]]:
    """The netx file's input shape (c, h, w) or (n,) and its layers as dicts, in order."""
    with h5py.File(path, "r") as f:
        group = f["layer"]
        layers = []
        for i in range(len(group)):
            g = group[str(i)]
            layer = {k: g[k][()] for k in g.keys() if k not in ("neuron", "skip")}
            layer["type"] = g["type"][0].decode("ascii")
            if "skip" in g:
                layer["skip"] = {k: g["skip"][k][()] for k in g["skip"].keys()}
                layer["skip"]["type"] = g["skip/type"][0].decode("ascii")
            if "neuron" in g:
                layer["neuron"] = {k: g["neuron"][k][()] for k in g["neuron"].keys()}
                layer["neuron"]["type"] = g["neuron/type"][0].decode("ascii")
            layers.append(layer)
    if layers[0]["type"] != "input":
        raise ValueError(f"{path}: layer 0 must be the input layer, got {layers[0]['type']}")
    return tuple(int(n) for n in layers[0]["shape"]), layers[1:]


def xy(pair) -> tuple[int, int]:
    """netx stores stride/padding as (h, w) (or a scalar); Lava wants (x, y) = (w, h)."""
    pair = np.atleast_1d(pair)
    return (int(pair[-1]), int(pair[0]))


def conv(layer: dict, shape: tuple[int, ...]) -> Conv:
    """A Conv process for a netx conv layer (or shortcut) reading Lava-layout (x, y, c) spikes of `shape`."""
    weight = layer["weight"][:, :, ::-1, ::-1]  # torch's cross-correlation -> true convolution
    weight = weight.transpose(0, 3, 2, 1).astype(np.int32)  # [out, in, h, w] -> (out, x, y, in)
    return Conv(weight=weight, input_shape=shape, stride=xy(layer["stride"]), padding=xy(layer["padding"]),
                dilation=xy(layer.get("dilation", 1)), groups=int(layer.get("groups", 1)))


def build(layers: list[dict], window: int, source_out):
    """Connection + LIFReset per layer, fed by `source_out`; returns (last output port, #synapse layers,
    [(LIF, depth, pulse mantissa, exponent)] for layers with an initial membrane,
    [(recurrent Dense, depth)] for recurrent layers, [processes of the shortcuts])."""
    shape = tuple(source_out.shape)  # Lava's (x, y, c) for an image into a conv; else flat (lava_io.to_lava_layout)
    last_out, flatten_next, depth, pulsed, recurrent, skips = source_out, False, 0, [], [], []
    populations = [(source_out, shape)]  # by depth: the input, then each layer's LIF
    for layer in layers:
        kind = layer["type"]
        if kind == "flatten":
            flatten_next = True
            continue
        if kind == "dense":
            conn = Dense(weights=layer["weight"].astype(np.int32), num_message_bits=0)
        elif kind == "conv":
            conn = conv(layer, shape)
        else:
            raise NotImplementedError(f"layer type {kind!r}: this runner reads input, flatten, dense and conv")
        depth += 1
        n = layer["neuron"]
        shape = tuple(conn.a_out.shape)
        bias = np.broadcast_to(layer.get("bias", np.zeros(1, np.int32)), shape).astype(np.int32)  # per channel
        lif = LIFReset(shape=shape, du=int(n["iDecay"]) - 1, dv=int(n["vDecay"]), vth=int(n["vThMant"]),
                       bias_mant=bias, bias_exp=6, reset_interval=window, reset_offset=depth % window)
        if flatten_next and len(last_out.shape) > 1:  # Lava's (x, y, c) -> torch's (c, h, w) order, then flat
            last_out.transpose([2, 1, 0]).flatten().connect(conn.s_in)
        else:
            last_out.connect(conn.s_in)
        flatten_next = False
        conn.a_out.connect(lif.a_in)
        if "recurrent" in layer:  # the layer's spikes back to its own input, one step later (fan-in adds)
            rec = Dense(weights=layer["recurrent"].astype(np.int32), num_message_bits=0)
            lif.s_out.connect(rec.s_in)
            rec.a_out.connect(lif.a_in)
            recurrent.append((rec, depth))
        if "skip" in layer:
            skips += connect_skip(layer["skip"], populations, depth, lif)
        last_out = lif.s_out
        populations.append((lif.s_out, shape))
        if int(n.get("vInitMant", 0)):
            pulsed.append((lif, depth, int(n["vInitMant"]), int(n.get("vInitExp", 0))))
    return last_out, depth, pulsed, recurrent, skips


def connect_skip(skip: dict, populations: list, depth: int, lif) -> list:
    """A residual shortcut from population `source` (-1: the input) into the LIF at `depth`, as late as the
    layer's main input: the layers it skips, depth - source - 2 steps, beyond its synapse's own one.

    Dense: lava-nc's DelayDense (delays=k arrives k + 1 steps later). Conv: lava-nc has no delayed
    Conv, so k relays go first, each an identity 1x1 Conv (weight 2) into a LIF that spikes exactly
    when its input did (vth 1 < 2; du = dv = 4095 forget u and v within a step): one step each.
    Returns the processes (kept alive by the caller).
    """
    port, shape = populations[int(skip["source"]) + 1]
    delay = depth - int(skip["source"]) - 2
    procs = []
    if skip["type"] == "dense":
        if len(shape) > 1:  # Lava's (x, y, c) -> torch's (c, h, w) order, then flat
            port = port.transpose([2, 1, 0]).flatten()
        weights = skip["weight"].astype(np.int32)
        conn = (DelayDense(weights=weights, delays=delay, num_message_bits=0) if delay
                else Dense(weights=weights, num_message_bits=0))
    else:
        for _ in range(delay):
            channels = shape[-1]
            identity = np.zeros((channels, 1, 1, channels), np.int32)  # (out, x, y, in)
            identity[np.arange(channels), 0, 0, np.arange(channels)] = 2
            same, relay = Conv(weight=identity, input_shape=shape), LIF(shape=shape, du=4095, dv=4095, vth=1)
            port.connect(same.s_in)
            same.a_out.connect(relay.a_in)
            port = relay.s_out
            procs += [same, relay]
        conn = conv(skip, shape)
    port.connect(conn.s_in)
    conn.a_out.connect(lif.a_in)
    return procs + [conn]


def connect_pulses(pulsed: list, depth: int, n_samples: int, window: int, total: int) -> list:
    """A clock RingBuffer (one neuron per layer) and a Dense per pulsed layer into its LIF (fan-in adds).

    Layer d's first step of sample k is run step k*W + d + 1; the clock's spike at buffer index
    k*W + d - 1 goes out at run step k*W + d and reaches the LIF one step later through the Dense.
    Returns the processes (kept alive by the caller).
    """
    if not pulsed:
        return []
    clock_data = np.zeros((depth, total), np.int32)
    for _, d, _, _ in pulsed:
        clock_data[d - 1, np.arange(n_samples) * window + d - 1] = 1
    clock = Source(data=clock_data)
    procs = [clock]
    for lif, d, mant, exp in pulsed:
        n_out = int(np.prod(lif.a_in.shape))
        weights = np.zeros((n_out, depth), np.int32)
        weights[:, d - 1] = mant
        dense = Dense(weights=weights, weight_exp=exp, num_message_bits=0)
        clock.s_out.connect(dense.s_in)
        dense.a_out.reshape(lif.a_in.shape).connect(lif.a_in)
        procs.append(dense)
    return procs


def run(net_path: str, spikes: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """spikes [N, X..., T] -> (output spikes [N, K, T + 1], (compile seconds, run + read-out seconds))."""
    n_samples, steps = spikes.shape[0], spikes.shape[-1]
    window = steps + 1
    _, layers = read_layers(net_path)
    depth = sum(layer["type"] != "flatten" for layer in layers)
    # [N, X..., T] -> [X..., N, W] (a silent step after each sample) -> [X..., N*W + depth] (flush)
    x = np.moveaxis(spikes, 0, -2)
    x = np.concatenate([x, np.zeros(x.shape[:-1] + (1,), x.dtype)], axis=-1).reshape(*x.shape[:-2], -1)
    total = x.shape[-1] + depth
    x = np.concatenate([x, np.zeros(x.shape[:-1] + (depth,), x.dtype)], axis=-1).astype(np.int32)
    source = Source(data=x)
    last_out, depth, pulsed, recurrent, skips = build(layers, window, source.s_out)  # noqa: F841 (skips)
    sink = Sink(shape=tuple(last_out.shape), buffer=total)
    last_out.connect(sink.a_in)
    pulses = connect_pulses(pulsed, depth, n_samples, window, total)  # noqa: F841 (part of the network)
    try:
        t0 = time.perf_counter()
        sink.create_runtime(run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))  # compile once, for every sample
        t1 = time.perf_counter()
        done = 0
        for stop, dense in pauses(recurrent, n_samples, window):
            sink.run(condition=RunSteps(num_steps=stop - done))
            dense.a_buff.set(np.zeros(dense.a_buff.shape, np.int32))  # s_{-1} = 0 for the next sample
            done = stop
        sink.run(condition=RunSteps(num_steps=total - done))
        out = sink.data.get()  # [K, total]
        seconds = (t1 - t0, time.perf_counter() - t1)
    finally:
        sink.stop()
    out = out[:, depth - 1:depth - 1 + n_samples * window].reshape(out.shape[0], n_samples, window)  # [K, N, W]
    return np.moveaxis(out, 1, 0).astype(np.uint8), seconds


def pauses(recurrent: list, n_samples: int, window: int) -> list:
    """[(run step, recurrent Dense)] in order: after run step k*W + d - 1 (k >= 1), the Dense of the
    recurrent layer at depth d holds sample k - 1's last spikes, due at that layer's reset step."""
    return sorted(((k * window + d - 1, dense) for dense, d in recurrent for k in range(1, n_samples)),
                  key=lambda p: p[0])


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    spikes = np.load(argv[2])["spikes"]
    out, seconds = run(argv[1], spikes)
    np.savez(argv[3], spikes=out, compile_s=seconds[0], run_s=seconds[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
