"""From a trained SpikingModel to Loihi's integer network: checks, BatchNorm folding, quantisation.

The result, a `LoihiNet`, is what both exporters write and what `fixed_point_model` runs in torch.
Each synapse layer (Linear or Conv2d) is followed by one spiking layer, which becomes a CUBA
neuron (`snnexp.neurons.cuba`) with integer weights (even, -256..254: lava-nc's Dense keeps 8 bits
and drops the lowest one for mixed signs), a 17-bit threshold mantissa, 12-bit decays and a
13-bit bias mantissa (from a folded BatchNorm's shift).

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
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from snnexp.errors import ConfigError
from snnexp.network import LayerKind, Role, register
from snnexp.models.base import SpikingModel
from snnexp.network.layers import Voting
from snnexp.models.batchnorm import fold_batchnorm_params
from snnexp.network.layers import SpikingMaxPool2d
from snnexp.neurons.base import Neuron, SpikingNeuron
from snnexp.neurons.cuba import CUBA, DECAY_UNITY, VTH_MAX
from snnexp.neurons.iaf import IF
from snnexp.neurons.li import LI

W_MAX, W_MIN = 254, -256  # even 8-bit weights (lava-nc truncates the lowest bit for mixed signs)
BIAS_MAX = 2 ** 12 - 1  # 13-bit signed bias mantissa
PULSE_MAX = 255  # the initial-membrane pulse: one excitatory 8-bit weight (times 2**weight_exp)


@dataclass
class LoihiLayer:
    """One synapse layer and the CUBA neurons it drives (integers, Loihi's units).

    kind "dense": weight [out, in]; "conv": weight [out, in, kh, kw] (torch's orientation and
    cross-correlation; the Lava runner flips it). in_shape/out_shape exclude batch and time:
    (c, h, w) or (n,). flatten_from: the (c, h, w) image flattened (torch's order) into in_shape.
    """

    name: str  # the model layer it came from, e.g. "net.0"
    kind: str
    weight: np.ndarray
    bias: np.ndarray  # [out channels] neuron bias mantissa (0 without BatchNorm)
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    i_decay: int  # 1..4096: Lava du = i_decay - 1
    v_decay: int  # 0..4095: Lava dv
    vth: int  # threshold mantissa: spike when v > vth * 64
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    flatten_from: tuple[int, ...] | None = None
    scale: float = 1.0  # integer units per float unit (weights, bias, threshold)
    v_init_mant: int = 0  # initial membrane = (v_init_mant << v_init_exp) * 64: a first-step pulse
    v_init_exp: int = 0

    @property
    def v_init(self) -> int:
        """The initial membrane in threshold-mantissa units (the pulse's synaptic input)."""
        return self.v_init_mant << self.v_init_exp


@dataclass
class LoihiNet:
    in_shape: tuple[int, ...]
    layers: list[LoihiLayer]
    voting: int = 1  # output neurons per class, averaged after the count
    notes: list[str] = field(default_factory=list)  # where the conversion changes the dynamics


@dataclass
class _Synapse:
    """A Linear/Conv2d being assembled (float), with what folds into it."""

    name: str
    module: nn.Module
    weight: Tensor
    bias: Tensor
    in_shape: tuple[int, ...]
    flatten_from: tuple[int, ...] | None
    pooled: bool = False  # a 2x2 average pool folded in: the convolution strides by 2


def refuse_unmappable(model: nn.Module) -> None:
    """Raise ConfigError naming the first layer Loihi cannot run (checked before training)."""
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)) and m.bias is not None:
            raise ConfigError(
                f"deploy=loihi: layer {name} ({type(m).__name__}) has a bias, and Loihi's synapses have none; "
                f"set model.bias=false (with learner=ann2snn also learner.bias=false)")
        if isinstance(m, (nn.MaxPool2d, nn.AdaptiveMaxPool2d, SpikingMaxPool2d)):
            raise ConfigError(
                f"deploy=loihi: layer {name} ({type(m).__name__}) is a max-pool: a maximum is not a weighted sum, "
                f"and netx/Lava have no pooling layer; set model.pool=avg (folded into a strided convolution; "
                f"with learner=ann2snn also learner.max_pool=avg)")
        if isinstance(m, LI):
            raise ConfigError(f"deploy=loihi: layer {name} is a non-spiking readout; Lava's output is spikes: "
                              f"set model.readout=spikes")
        if isinstance(m, nn.Conv2d) and (m.groups != 1 or m.dilation != (1, 1) or m.padding_mode != "zeros"):
            raise ConfigError(f"deploy=loihi: layer {name} (Conv2d) needs groups=1, dilation=1, zero padding")
        if isinstance(m, SpikingNeuron) and not isinstance(m, CUBA) and m.charge_coefficients() is None:
            raise ConfigError(f"deploy=loihi: layer {name} ({type(m).__name__}) has no CUBA equivalent: Loihi's "
                              f"neuron needs a charge affine in (v, x) (charge_coefficients); use neuron=cuba, lif, plif "
                              f"or if")


def extract(model: SpikingModel, in_shape: tuple[int, ...]) -> LoihiNet:
    """The trained model, fed [T, N, *in_shape], as a quantised LoihiNet (the model is unchanged)."""
    refuse_unmappable(model)
    net = model.net
    in_shape = tuple(int(n) for n in in_shape)
    shape, pending, flatten, layers, notes, voting = in_shape, None, None, [], [], 1
    for i, m in enumerate(net):
        name = f"net.{i}"
        if isinstance(m, nn.Flatten):
            flatten = shape if len(shape) > 1 else None
            shape = (math.prod(shape),)
        elif isinstance(m, (nn.Dropout, nn.Identity)):
            continue
        elif isinstance(m, (nn.Linear, nn.Conv2d)):
            if pending is not None:
                raise ConfigError(f"deploy=loihi: {pending.name} and {name} are two synapse layers in a row; "
                                  f"Loihi needs a neuron after each")
            w = m.weight.detach().double()
            pending = _Synapse(name, m, w, torch.zeros(w.shape[0], dtype=torch.float64), shape, flatten)
            flatten = None
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            _need(pending, name, "a BatchNorm")  # its shift becomes the neuron's bias
            pending.weight, pending.bias = fold_batchnorm_params(pending.weight, pending.bias, m)
        elif isinstance(m, nn.AvgPool2d):
            _need(pending, name, "an average pool (model.pool_first=true puts it before the neuron)")
            _fold_avg_pool(pending, m, name)
        elif isinstance(m, SpikingNeuron):
            _need(pending, name, "a spiking layer")
            layer, layer_notes = _quantise(pending, m, name)
            notes += [n for n in layer_notes if n not in notes]
            layers.append(layer)
            shape, pending = layer.out_shape, None
        elif isinstance(m, Voting):
            voting = m.per_class
        else:
            raise ConfigError(f"deploy=loihi: layer {name} ({type(m).__name__}) has no Loihi/netx equivalent "
                              f"(netx reads input, flatten, dense and conv layers)")
    if pending is not None:
        raise ConfigError(f"deploy=loihi: the last synapse layer {pending.name} drives no spiking layer: a "
                          f"non-spiking readout (e.g. model.readout=membrane) has no Loihi form, whose output is "
                          f"spikes; set model.readout=spikes")
    return LoihiNet(in_shape, layers, voting, notes)


def _need(pending: _Synapse | None, name: str, what: str) -> None:
    if pending is None:
        raise ConfigError(f"deploy=loihi: layer {name} is {what} with no Linear/Conv2d before it to fold into")


def _fold_avg_pool(syn: _Synapse, pool: nn.AvgPool2d, name: str) -> None:
    """conv(k, stride 1, pad p) then avg-pool(2) == conv(k + 1, stride 2, pad p): the kernel
    averaged over the four shifts of the 2x2 window (exact)."""
    m = syn.module
    ks, st = _pair(pool.kernel_size), _pair(pool.stride or pool.kernel_size)
    if not isinstance(m, nn.Conv2d) or ks != (2, 2) or st != (2, 2) or _pair(pool.padding) != (0, 0) \
            or pool.ceil_mode or m.stride != (1, 1) or syn.pooled:
        raise ConfigError(f"deploy=loihi: layer {name} (AvgPool2d) folds only as a 2x2/2 pool right after a "
                          f"stride-1 convolution (model.pool=avg, model.pool_first=true)")
    w = syn.weight  # [out, in, kh, kw]
    folded = w.new_zeros(w.shape[0], w.shape[1], w.shape[2] + 1, w.shape[3] + 1)
    for dy in (0, 1):
        for dx in (0, 1):
            folded[:, :, dy:dy + w.shape[2], dx:dx + w.shape[3]] += w / 4
    syn.weight = folded
    syn.pooled = True


def _pair(x) -> tuple[int, int]:
    return (int(x), int(x)) if isinstance(x, int) else (int(x[0]), int(x[1]))


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


def _quantise(syn: _Synapse, neuron: SpikingNeuron, name: str) -> tuple[LoihiLayer, list[str]]:
    """Integer weights, bias and threshold at the finest scale that fits all three; and notes."""
    i_decay, v_decay, theta, gain, note = _dynamics(neuron, name)
    notes = [note] if note else []
    w, b = syn.weight * gain, syn.bias * gain
    if i_decay < DECAY_UNITY and bool(b.any()):
        # A BatchNorm shift is a constant input current, filtered by u; Loihi adds a bias to v. They agree
        # exactly when u has no memory (current_decay=1); otherwise match the steady state, u = b/di.
        b = b * (DECAY_UNITY / i_decay)
        notes.append(f"{syn.name}: a BatchNorm shift with neuron.current_decay<1 becomes a voltage bias matched "
                     f"in the steady state only (exact with neuron.current_decay=1 or model.batch_norm=false)")
    w_abs, b_abs = float(w.abs().max()), float(b.abs().max())
    # the largest scale that fits weights, bias and threshold: finest resolution
    scale = min(W_MAX / w_abs if w_abs > 0 else math.inf, BIAS_MAX / b_abs if b_abs > 0 else math.inf,
                VTH_MAX / theta)
    if not math.isfinite(scale):
        raise ConfigError(f"deploy=loihi: layer {syn.name} has only zero weights")
    w_int = (torch.round(w * scale / 2) * 2).clamp(W_MIN, W_MAX).to(torch.int32).numpy()
    b_int = torch.round(b * scale).clamp(-BIAS_MAX - 1, BIAS_MAX).to(torch.int32).numpy()
    vth = max(1, round(theta * scale))
    mant, exp = pulse_weight(round(float(getattr(neuron, "v_init", 0.0)) * scale), name)
    if mant:
        notes.append(f"{syn.name}: initial membrane {mant << exp} of threshold {vth} (mantissas) delivered as a "
                     f"one-step pulse (weight {mant} << {exp}) from a clock axon at the sample's first step; "
                     f"netx has no initial state: net.h5 stores it as neuron/vInitMant, vInitExp")
    m = syn.module
    if isinstance(m, nn.Conv2d):
        k = w_int.shape[-1]
        stride = (2, 2) if syn.pooled else _pair(m.stride)
        padding = _pair(m.padding)
        h, wd = syn.in_shape[1:]
        out_shape = (w_int.shape[0], (h + 2 * padding[0] - k) // stride[0] + 1,
                     (wd + 2 * padding[1] - k) // stride[1] + 1)
        layer = LoihiLayer(syn.name, "conv", w_int, b_int, syn.in_shape, out_shape, i_decay, v_decay, vth,
                           stride, padding, syn.flatten_from, scale, mant, exp)
    else:
        layer = LoihiLayer(syn.name, "dense", w_int, b_int, syn.in_shape, (w_int.shape[0],), i_decay, v_decay,
                           vth, flatten_from=syn.flatten_from, scale=scale, v_init_mant=mant, v_init_exp=exp)
    return layer, notes


def pulse_weight(v: int, name: str = "") -> tuple[int, int]:
    """(mantissa 0..255, exponent >= 0) whose mantissa << exponent is nearest to v >= 0 (8-bit weight, weight_exp)."""
    if v < 0:
        raise ConfigError(f"deploy=loihi: layer {name} starts below 0 (v_init < 0); its pulse would be inhibitory, "
                          f"which this export does not map")
    exp = 0
    while round(v / 2 ** exp) > PULSE_MAX:
        exp += 1
    return round(v / 2 ** exp), exp


class FixedPointNet(nn.Module):
    """The LoihiNet in torch, bit for bit as Lava runs it: integer weights, fixed-point CUBA.

    forward: x_seq [T, N, *in_shape] binary -> spikes [T + 1, N, K]: a silent step comes first
    (Lava's per-sample reset step, when only the bias charges), then the T steps of the sample.
    """

    def __init__(self, net: LoihiNet):
        super().__init__()
        layers: list[nn.Module] = []
        for layer in net.layers:
            if layer.flatten_from is not None:
                layers.append(nn.Flatten())
            w = torch.from_numpy(layer.weight.astype(np.float64))
            if layer.kind == "conv":
                syn = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), stride=layer.stride,
                                padding=layer.padding, bias=False, dtype=torch.float64)
            else:
                syn = nn.Linear(w.shape[1], w.shape[0], bias=False, dtype=torch.float64)
            syn.weight.data.copy_(w)
            neuron = CUBA(current_decay=layer.i_decay / DECAY_UNITY, voltage_decay=layer.v_decay / DECAY_UNITY,
                          v_threshold=float(layer.vth), fixed_point=True, w_scale=1.0)
            bias = torch.from_numpy(layer.bias.astype(np.float64))  # [C] -> [C, 1, 1] for images
            neuron.bias = bias.view(-1, *[1] * (len(layer.out_shape) - 1))
            layers += [syn, FirstStepPulse(float(layer.v_init)), neuron] if layer.v_init else [syn, neuron]
        self.model = SpikingModel(layers, step_mode="m", readout="spikes")
        self.voting = net.voting

    @torch.no_grad()
    def forward(self, x_seq: Tensor) -> Tensor:
        x_seq = torch.cat([torch.zeros_like(x_seq[:1]), x_seq]).double()  # [T+1, N, ...]
        return self.model(x_seq)


class FirstStepPulse(Neuron):
    """Adds `current` to the input of the sample's first step (step 1, after the silent reset step 0).

    The clock-axon pulse the Lava runner sends for an initial membrane (module docstring).
    """

    def __init__(self, current: float):
        super().__init__(step_mode="m")
        self.current = float(current)

    def initial_state(self, x_t: Tensor) -> int:
        return 0  # steps seen

    def step(self, x_t: Tensor, t: int) -> tuple[Tensor, int]:
        return (x_t + self.current if t == 1 else x_t), t + 1


@register(FirstStepPulse)
class PulseKind(LayerKind):
    """The fixed-point model's first-step pulse: a constant added at one step (Loihi's, not a user's layer)."""

    role = Role.SCALE
    name = "pulse"


def predictions(counts: Tensor, voting: int) -> Tensor:
    """[N, K*voting] spike counts -> [N] predicted classes."""
    return Voting(voting)(counts.double()).argmax(-1) if voting > 1 else counts.argmax(-1)
