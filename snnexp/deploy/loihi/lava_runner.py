"""Run an exported netx HDF5 network in Lava, bit-accurately: the script the Lava venv executes.

(No module beside this file may be named `lava`: a script's folder comes first on sys.path.)

    .venv-lava/bin/python lava_runner.py NET.h5 IN.npz OUT.npz

Needs lava-nc 0.10, numpy<2 and h5py only (no torch, no lava-dl, no snnexp import): it builds
the network from the file with lava-nc's own processes (RingBuffer -> [Dense | Conv -> LIFReset]
... -> RingBuffer sink) and runs it once with Loihi2SimCfg(select_tag="fixed_pt").

IN.npz holds `spikes` [N, X..., T] (Lava's layout: X = (x, y, c) for images, (n,) for vectors).
Samples follow each other in one run, T steps each plus one silent step (W = T + 1); LIFReset
zeroes layer l at steps k*W + l, the step sample k's silence reaches it, so no state crosses
samples. Each Dense/Conv delivers one step late, so after L layers output step t of sample k is
run step k*W + t + L + 1 (steps from 1). A layer with neuron/vInitMant (an initial membrane)
gets one more input: a clock RingBuffer spikes once per sample so that, through a Dense of that
weight (and weight_exp vInitExp), it adds the pulse to the layer's first step of each sample.
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
from lava.proc.dense.process import Dense
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source
from lava.proc.lif.process import LIFReset


def read_layers(path: str) -> tuple[tuple[int, ...], list[dict]]:
    """The netx file's input shape (c, h, w) or (n,) and its layers as dicts, in order."""
    with h5py.File(path, "r") as f:
        group = f["layer"]
        layers = []
        for i in range(len(group)):
            g = group[str(i)]
            layer = {k: g[k][()] for k in g.keys() if k != "neuron"}
            layer["type"] = g["type"][0].decode("ascii")
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


def build(layers: list[dict], in_shape: tuple[int, ...], window: int):
    """Connection + LIFReset per layer; returns (first input port, last output port, #synapse layers,
    [(LIF, depth, pulse mantissa, exponent)] for layers with an initial membrane)."""
    shape = tuple(reversed(in_shape))  # (c, h, w) -> Lava's (x, y, c); (n,) stays
    first_in, last_out, flatten_next, depth, pulsed = None, None, False, 0, []
    for layer in layers:
        kind = layer["type"]
        if kind == "flatten":
            flatten_next = True
            continue
        if kind == "dense":
            conn = Dense(weights=layer["weight"].astype(np.int32), num_message_bits=0)
        elif kind == "conv":
            weight = layer["weight"][:, :, ::-1, ::-1]  # torch's cross-correlation -> true convolution
            weight = weight.transpose(0, 3, 2, 1).astype(np.int32)  # [out, in, h, w] -> (out, x, y, in)
            conn = Conv(weight=weight, input_shape=shape, stride=xy(layer["stride"]),
                        padding=xy(layer["padding"]), dilation=xy(layer["dilation"]), groups=int(layer["groups"]))
        else:
            raise NotImplementedError(f"layer type {kind!r}: this runner reads input, flatten, dense and conv")
        depth += 1
        n = layer["neuron"]
        shape = tuple(conn.a_out.shape)
        bias = np.broadcast_to(layer.get("bias", np.zeros(1, np.int32)), shape).astype(np.int32)  # per channel
        lif = LIFReset(shape=shape, du=int(n["iDecay"]) - 1, dv=int(n["vDecay"]), vth=int(n["vThMant"]),
                       bias_mant=bias, bias_exp=6, reset_interval=window, reset_offset=depth % window)
        if last_out is None:
            first_in = conn.s_in
        elif flatten_next:  # Lava's (x, y, c) -> torch's (c, h, w) order, then flat
            last_out.transpose([2, 1, 0]).flatten().connect(conn.s_in)
        else:
            last_out.connect(conn.s_in)
        flatten_next = False
        conn.a_out.connect(lif.a_in)
        last_out = lif.s_out
        if int(n.get("vInitMant", 0)):
            pulsed.append((lif, depth, int(n["vInitMant"]), int(n.get("vInitExp", 0))))
    return first_in, last_out, depth, pulsed


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
    in_shape, layers = read_layers(net_path)
    first_in, last_out, depth, pulsed = build(layers, in_shape, window)
    # [N, X..., T] -> [X..., N, W] (a silent step after each sample) -> [X..., N*W + depth] (flush)
    x = np.moveaxis(spikes, 0, -2)
    x = np.concatenate([x, np.zeros(x.shape[:-1] + (1,), x.dtype)], axis=-1).reshape(*x.shape[:-2], -1)
    total = x.shape[-1] + depth
    x = np.concatenate([x, np.zeros(x.shape[:-1] + (depth,), x.dtype)], axis=-1).astype(np.int32)
    source = Source(data=x)
    sink = Sink(shape=tuple(last_out.shape), buffer=total)
    source.s_out.connect(first_in)
    last_out.connect(sink.a_in)
    pulses = connect_pulses(pulsed, depth, n_samples, window, total)  # noqa: F841 (part of the network)
    try:
        t0 = time.perf_counter()
        sink.create_runtime(run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))  # compile once, for every sample
        t1 = time.perf_counter()
        sink.run(condition=RunSteps(num_steps=total))
        out = sink.data.get()  # [K, total]
        seconds = (t1 - t0, time.perf_counter() - t1)
    finally:
        sink.stop()
    out = out[:, depth - 1:depth - 1 + n_samples * window].reshape(out.shape[0], n_samples, window)  # [K, N, W]
    return np.moveaxis(out, 1, 0).astype(np.uint8), seconds


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
