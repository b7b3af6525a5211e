"""snnexp's discrete-time neurons as NIR's continuous-time nodes, and back: the one place for the mapping.

NIR (nir 1.0.8) writes ODEs with no time step. A graph runs at dt seconds per step with forward
Euler (snnTorch's and Norse's importers do; snnexp stores dt in the graph's metadata, default
1e-4 s, the value snnTorch's importer hard-codes):

    LIF      tau dv/dt = (v_leak - v) + r I          ->  v += (dt/tau) (v_leak - v + r x)
    LI       tau dv/dt = (v_leak - v) + r I          (the same, no threshold)
    IF       dv/dt = r I                             ->  v += x when r = 1 (see below)
    CubaLIF  tau_syn dI/dt = -I + w_in S,  tau_mem dv/dt = (v_leak - v) + r I
             ->  I += (dt/tau_syn)(w_in x - I), then v uses the new I (snnTorch, Norse, Lava)

so snnexp's neurons, with tau in steps, read as:
- LIF/PLIF, h = v + (x - (v - v_reset))/tau (decay_input):  tau_nir = tau dt, r = 1, v_leak = v_reset;
  without decay_input (h = v - (v - v_reset)/tau + x):       r = tau.
- LI (readout), v += (x - v)/tau:                             tau_nir = tau dt, r = 1, v_leak = 0.
- IF, h = v + x: NIR's IF has no time constant, and the peers read it as one input per step
  (snnTorch's importer requires r = 1, Norse's IAF adds the input and ignores dt): r = 1.
- CUBA (float), u = (1 - di) u + x, v = (1 - dv) v + u + bias:
  tau_syn = dt/di, w_in = 1/di, tau_mem = dt/dv, r = 1/dv, v_leak = bias/dv (Loihi's exporter too).
  Read back, any w_in and r: with u = r dv I, Euler's I += di (w_in x - I), v += dv (v_leak - v + r I)
  is u = (1 - di) u + g x, v = (1 - dv) v + u + dv v_leak, so the input gain g = w_in di r dv goes
  into a Gain before the CUBA when it is not 1 (`cuba_input_gain`).
Every NIR spiking node resets to v_reset after a spike: reset by subtraction has no NIR form.
NIR and both peers spike on v > v_threshold, snnexp on v >= v_threshold: they part only when
v equals the threshold exactly.
"""
from __future__ import annotations

import math

import nir
import numpy as np
from torch import nn

from snnexp.errors import ConfigError
from snnexp.neurons.alif import ALIF
from snnexp.neurons.base import Neuron, SpikingNeuron
from snnexp.neurons.cuba import CUBA, DECAY_UNITY
from snnexp.neurons.iaf import IF
from snnexp.neurons.li import LI
from snnexp.neurons.lif import LIF
from snnexp.neurons.plif import PLIF

DEFAULT_DT = 1e-4  # seconds per step: snnTorch's importer assumes it, Loihi's exporter writes it


def _full(shape: tuple[int, ...], value: float) -> np.ndarray:
    return np.full(shape, float(value), dtype=np.float64)


def cuba_lif(shape: tuple[int, ...], di: float, dv: float, v_threshold: float, bias: np.ndarray | float,
             dt: float) -> nir.CubaLIF:
    """nir.CubaLIF for u = (1 - di) u + x; v = (1 - dv) v + u + bias (di, dv per step, > 0); reset to 0."""
    bias = np.broadcast_to(np.asarray(bias, dtype=np.float64), shape)
    return nir.CubaLIF(tau_syn=_full(shape, dt / di), tau_mem=_full(shape, dt / dv), r=_full(shape, 1 / dv),
                       v_leak=bias / dv, v_threshold=_full(shape, v_threshold), v_reset=_full(shape, 0.0),
                       w_in=_full(shape, 1 / di))


def neuron_node(neuron: nn.Module, shape: tuple[int, ...], dt: float) -> nir.NIRNode:
    """The NIR node of one trained snnexp neuron layer with `shape` (no batch); a ConfigError
    (naming the layer type and what to do) if NIR has none. The exporter adds the layer's path."""
    kind = type(neuron).__name__
    if isinstance(neuron, ALIF):
        raise ConfigError(f"{kind} has an adaptive threshold that moves with every spike; NIR has no node for it: "
                          f"use neuron=lif, plif, if or cuba")
    if isinstance(neuron, LI):
        return nir.LI(tau=_full(shape, float(neuron.tau) * dt), r=_full(shape, 1.0), v_leak=_full(shape, 0.0))
    if not isinstance(neuron, SpikingNeuron):
        raise ConfigError(f"{kind} is a stateful layer NIR has no node for")
    if neuron.reset_mode == "subtract":
        raise ConfigError(f"{kind} resets by subtraction (neuron.reset=subtract); every NIR neuron resets to "
                          f"v_reset: train with neuron.reset=hard")
    th, v_reset = float(neuron.v_threshold), float(neuron.v_reset)
    if isinstance(neuron, CUBA):
        if neuron.fixed_point:
            raise ConfigError(f"{kind} runs Loihi's fixed-point arithmetic (neuron.fixed_point=true), which NIR "
                              f"cannot express: use deploy=loihi")
        if neuron.v_decay == 0:
            raise ConfigError(f"{kind} has no voltage leak (neuron.voltage_decay=0): NIR's CubaLIF needs a finite "
                              f"tau_mem; use neuron.voltage_decay >= 1/4096")
        bias = neuron.bias.detach().double().cpu().numpy()
        bias = bias.reshape(*bias.shape, *[1] * (len(shape) - 1)) if bias.ndim == 1 else bias
        return cuba_lif(shape, neuron.i_decay / DECAY_UNITY, neuron.v_decay / DECAY_UNITY, th, bias, dt)
    if isinstance(neuron, IF):
        return nir.IF(r=_full(shape, 1.0), v_threshold=_full(shape, th), v_reset=_full(shape, v_reset))
    if isinstance(neuron, (LIF, PLIF)):
        tau = float(neuron.tau.detach())  # PLIF: the learnt 1/sigmoid(w)
        r = 1.0 if neuron.decay_input else tau
        return nir.LIF(tau=_full(shape, tau * dt), r=_full(shape, r), v_leak=_full(shape, v_reset),
                       v_threshold=_full(shape, th), v_reset=_full(shape, v_reset))
    raise ConfigError(f"{kind} has no NIR node here; NIR takes neuron=lif, plif, if, cuba and the li readout")


# -- NIR -> snnexp ----------------------------------------------------------------------------------

def _uniform(node: nir.NIRNode, name: str, field: str) -> float:
    values = np.asarray(getattr(node, field), dtype=np.float64)
    if values.size == 0 or not np.allclose(values, values.flat[0], rtol=1e-6, atol=0):
        raise ConfigError(f"NIR node '{name}' ({type(node).__name__}) has a different {field} per neuron; "
                          f"snnexp's neurons share one value per layer")
    return float(values.flat[0])


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)


def neuron_from_node(node: nir.NIRNode, name: str, dt: float) -> Neuron:
    """The snnexp neuron layer that runs a NIR neuron node at dt seconds per step; ConfigError if none."""
    kind = type(node).__name__
    refuse = lambda why: ConfigError(f"NIR node '{name}' ({kind}): {why}")  # noqa: E731
    if isinstance(node, nir.LI):
        tau, r, v_leak = (_uniform(node, name, f) for f in ("tau", "r", "v_leak"))
        if not _close(r, 1.0) or v_leak != 0:
            raise refuse(f"r={r:g}, v_leak={v_leak:g}: snnexp's LI readout has r = 1 and v_leak = 0")
        return LI(tau=max(tau / dt, 1.0))
    v_th = _uniform(node, name, "v_threshold")
    v_reset = _uniform(node, name, "v_reset")
    if isinstance(node, nir.IF):
        r = _uniform(node, name, "r")
        if not (_close(r, 1.0) or _close(r * dt, 1.0)):
            raise refuse(f"r={r:g}: snnexp's IF adds its input once per step (r = 1, as the peers read it)")
        return IF(v_threshold=v_th, v_reset=v_reset, reset="hard")
    if isinstance(node, nir.LIF):
        tau, r, v_leak = (_uniform(node, name, f) for f in ("tau", "r", "v_leak"))
        tau_steps = tau / dt
        if not _close(v_leak, v_reset):
            raise refuse(f"v_leak={v_leak:g} != v_reset={v_reset:g}: snnexp's LIF decays towards its v_reset")
        if _close(r, 1.0):
            decay_input = True
        elif _close(r, tau_steps):
            decay_input = False
        else:
            raise refuse(f"r={r:g} with tau/dt={tau_steps:g}: snnexp's LIF takes r = 1 (decay_input) or r = tau/dt")
        if tau_steps <= 1:
            raise refuse(f"tau/dt = {tau_steps:g} steps; snnexp's LIF needs > 1 (raise model.dt? it is {dt:g} s)")
        return LIF(tau=tau_steps, decay_input=decay_input, v_threshold=v_th, v_reset=v_reset, reset="hard")
    if isinstance(node, nir.CubaLIF):
        tau_syn, tau_mem, r, w_in, v_leak = (_uniform(node, name, f) for f in
                                             ("tau_syn", "tau_mem", "r", "w_in", "v_leak"))
        di, dv = dt / tau_syn, dt / tau_mem
        if v_reset != 0:
            raise refuse(f"v_reset={v_reset:g}: snnexp's CUBA resets to 0")
        if not 0 < di <= 1 or not 0 < dv <= 1:
            raise refuse(f"dt/tau_syn = {di:g} and dt/tau_mem = {dv:g} per step; snnexp's CUBA needs both in (0, 1] "
                         f"(is model.dt={dt:g} s right?)")
        neuron = CUBA(current_decay=di, voltage_decay=dv, v_threshold=v_th)  # its input gain: cuba_input_gain
        neuron.bias.fill_(v_leak * dv)
        return neuron
    raise refuse("not a neuron snnexp can run (IF, LIF, CubaLIF, LI)")


def cuba_input_gain(node: nir.CubaLIF, name: str, dt: float) -> float:
    """g = w_in (dt/tau_syn) r (dt/tau_mem): the factor on the input of the CUBA that runs `node` at dt.

    Euler at dt (di = dt/tau_syn, dv = dt/tau_mem): I += di (w_in x - I); v += dv (v_leak - v + r I).
    u = dv r I obeys u = (1 - di) u + g x, and v = (1 - dv) v + u + dv v_leak is CUBA's voltage
    with bias dv v_leak: u and v are linear in x, so g can scale the input (1 for snnexp's and
    snnTorch's Synaptic graphs, which write w_in = 1/di and r = 1/dv).
    """
    tau_syn, tau_mem, r, w_in = (_uniform(node, name, f) for f in ("tau_syn", "tau_mem", "r", "w_in"))
    g = w_in * (dt / tau_syn) * r * (dt / tau_mem)
    return 1.0 if _close(g, 1.0) else g


def decay_rounding(layer: nn.Module, node: nir.NIRNode, dt: float) -> str | None:
    """A note when the CUBA in `layer` (a CubaLIF's import) had to round the node's decays to its 12
    bits (Loihi's), else None."""
    neuron = next((m for m in layer.modules() if isinstance(m, CUBA)), None)
    if neuron is None:
        return None
    wanted = (dt / float(np.asarray(node.tau_syn).flat[0]), dt / float(np.asarray(node.tau_mem).flat[0]))
    stored = (neuron.i_decay / DECAY_UNITY, neuron.v_decay / DECAY_UNITY)
    if all(_close(w, s) for w, s in zip(wanted, stored)):
        return None
    return (f"decays per step {wanted[0]:.6g}, {wanted[1]:.6g} stored as {neuron.i_decay}/4096, "
            f"{neuron.v_decay}/4096 (snnexp's CUBA keeps Loihi's 12-bit decays)")
