"""Quantisation: a float synapse (BatchNorm, pools and a shortcut folded in) and the neuron after it
become one `LoihiLayer` at the finest scale that fits its weights, bias and threshold.

An IF neuron's initial membrane (`v_init`, theta/2 after QCFS conversion) has no Loihi register:
lava-nc's LIFReset zeroes u and v at every sample's reset step, and netx has no initial-state
field. It becomes a one-step current pulse instead: a clock axon that spikes once per sample, at
the layer's first step, through one 8-bit excitatory weight with an exponent (mantissa << exp
~ v_init * scale). With no voltage leak and no current memory (IF: dv = 0, du = 4095), adding it
to the first step's input equals starting the membrane there. net.h5 carries it as
neuron/vInitMant and neuron/vInitExp, which snnexp's Lava runner reads and lava-dl's netx reader
does not know.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from snnexp.deploy.loihi.net import BIAS_MAX, PULSE_MAX, W_MAX, W_MIN, LoihiLayer, LoihiSkip
from snnexp.errors import ConfigError
from snnexp.neurons.base import SpikingNeuron
from snnexp.neurons.cuba import CUBA, DECAY_UNITY, VTH_MAX
from snnexp.neurons.iaf import IF


@dataclass
class Synapse:
    """A Linear/Conv2d being assembled (float), with what folds into it: a node's output that is a current."""

    name: str
    weight: Tensor
    bias: Tensor
    in_shape: tuple[int, ...]
    flatten_from: tuple[int, ...] | None
    source: int = -1  # the population it reads
    stride: tuple[int, int] = (1, 1)  # conv only
    padding: tuple[int, int] = (0, 0)
    pooled: bool = False  # an average pool folded in: the convolution strides by its window
    skip: "Synapse | None" = None  # a residual shortcut adding to the same current

    @property
    def conv(self) -> bool:
        return self.weight.dim() == 4


def _dynamics(neuron: SpikingNeuron, name: str) -> tuple[int, int, float, float, str | None]:
    """(i_decay, v_decay, threshold, input gain, note) of the CUBA neuron that replaces `neuron`.

    CUBA maps to itself. Any other neuron maps through its charge h = a*v + b*x + c
    (`charge_coefficients`, declared by IF, LIF, PLIF and any new affine neuron): Loihi's voltage
    keeps a of itself (v_decay = 1 - a), the input gain b goes into the weights, and c = 0 (v_reset 0).
    """
    theta = float(neuron.v_threshold)
    note = None
    if neuron.reset_mode == "subtract":
        note = (f"{type(neuron).__name__} resets by subtraction; Loihi's CUBA resets to 0 "
                f"(fixed_acc shows the effect)")
    if neuron.v_reset != 0.0:
        raise ConfigError(f"deploy=loihi: layer {name} resets to {neuron.v_reset}; Loihi resets to 0: "
                          f"set neuron.v_reset=0")
    if getattr(neuron, "v_init", 0.0) != 0.0 and not isinstance(neuron, IF):
        raise ConfigError(f"deploy=loihi: layer {name} ({type(neuron).__name__}) starts at v_init != 0; only IF's "
                          f"initial membrane maps (a first-step pulse equals it without leak or current memory)")
    if isinstance(neuron, CUBA):
        return neuron.i_decay, neuron.v_decay, theta, 1.0, note
    a, b, c = (float(t) for t in neuron.charge_coefficients())
    return DECAY_UNITY, round(DECAY_UNITY * (1 - a)), theta, b, note


def quantise(syn: Synapse, neuron: SpikingNeuron, name: str,
              recurrent: Tensor | None = None) -> tuple[LoihiLayer, list[str]]:
    """Integer weights, bias and threshold at the finest scale that fits them all; and notes.

    recurrent: [out, out] float weights of the layer's feedback Linear. It and a residual shortcut
    (`syn.skip`) add to the same input current as the synapse, so all share one scale (and the
    neuron's input gain); the shortcut's BatchNorm shift adds to the bias.
    """
    i_decay, v_decay, theta, gain, note = _dynamics(neuron, name)
    notes = [note] if note else []
    skip = syn.skip
    w, b = syn.weight * gain, (syn.bias if skip is None else syn.bias + skip.bias) * gain
    r = None if recurrent is None else recurrent.detach().double() * gain
    s = None if skip is None else skip.weight * gain
    if i_decay < DECAY_UNITY and bool(b.any()):
        # A BatchNorm shift is a constant input current, filtered by u; Loihi adds a bias to v. They agree
        # exactly when u has no memory (current_decay=1); otherwise match the steady state, u = b/di.
        b = b * (DECAY_UNITY / i_decay)
        notes.append(f"{syn.name}: a BatchNorm shift with neuron.current_decay<1 becomes a voltage bias matched "
                     f"in the steady state only (exact with neuron.current_decay=1 or model.batch_norm=false)")
    w_abs = max(float(v.abs().max()) for v in (w, r, s) if v is not None)
    b_abs = float(b.abs().max())
    # the largest scale that fits weights, bias and threshold: finest resolution
    scale = min(W_MAX / w_abs if w_abs > 0 else math.inf, BIAS_MAX / b_abs if b_abs > 0 else math.inf,
                VTH_MAX / theta)
    if not math.isfinite(scale):
        raise ConfigError(f"deploy=loihi: layer {syn.name} has only zero weights")
    w_int = _weights(w, scale)
    b_int = torch.round(b * scale).clamp(-BIAS_MAX - 1, BIAS_MAX).to(torch.int32).numpy()
    vth = max(1, round(theta * scale))
    mant, exp = pulse_weight(round(float(getattr(neuron, "v_init", 0.0)) * scale), name)
    if mant:
        notes.append(f"{syn.name}: initial membrane {mant << exp} of threshold {vth} (mantissas) delivered as a "
                     f"one-step pulse (weight {mant} << {exp}) from a clock axon at the sample's first step; "
                     f"netx has no initial state: net.h5 stores it as neuron/vInitMant, vInitExp")
    loihi_skip = None if skip is None else LoihiSkip(
        skip.source, "conv" if skip.conv else "dense", _weights(s, scale), skip.in_shape, skip.stride, skip.padding,
        skip.flatten_from)
    if syn.conv:
        if r is not None:
            raise ConfigError(f"deploy=loihi: the recurrent layer {name} follows a convolution; Loihi's recurrent "
                              f"synapse here is a Dense over a vector: flatten before the recurrent layer")
        (kh, kw), (sh, sw), (ph, pw) = w_int.shape[2:], syn.stride, syn.padding
        h, wd = syn.in_shape[1:]
        out_shape = (w_int.shape[0], (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1)
        layer = LoihiLayer(syn.name, "conv", w_int, b_int, syn.in_shape, out_shape, i_decay, v_decay, vth,
                           syn.stride, syn.padding, syn.flatten_from, scale, mant, exp, skip=loihi_skip)
    else:
        layer = LoihiLayer(syn.name, "dense", w_int, b_int, syn.in_shape, (w_int.shape[0],), i_decay, v_decay,
                           vth, flatten_from=syn.flatten_from, scale=scale, v_init_mant=mant, v_init_exp=exp,
                           recurrent=None if r is None else _weights(r, scale), skip=loihi_skip)
    return layer, notes


def _weights(w: Tensor, scale: float) -> np.ndarray:
    """Float weights times scale, rounded to even 8-bit integers (what lava-nc's Dense keeps)."""
    return (torch.round(w * scale / 2) * 2).clamp(W_MIN, W_MAX).to(torch.int32).numpy()


def pulse_weight(v: int, name: str = "") -> tuple[int, int]:
    """(mantissa 0..255, exponent >= 0) whose mantissa << exponent is nearest to v >= 0 (8-bit weight, weight_exp)."""
    if v < 0:
        raise ConfigError(f"deploy=loihi: layer {name} starts below 0 (v_init < 0); its pulse would be inhibitory, "
                          f"which this export does not map")
    exp = 0
    while round(v / 2 ** exp) > PULSE_MAX:
        exp += 1
    return round(v / 2 ** exp), exp
