"""Loihi's integer network: what `convert.extract` produces, the exporters write, `FixedPointNet` runs in
torch and snnexp's Lava runner builds. Integers throughout, in Loihi's units: weights even, -256..254
(lava-nc's Dense keeps 8 bits and drops the lowest one for mixed signs), a 17-bit threshold
mantissa, 12-bit decays, a 13-bit bias mantissa.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from torch import nn

W_MAX, W_MIN = 254, -256  # even 8-bit weights (lava-nc truncates the lowest bit for mixed signs)
BIAS_MAX = 2 ** 12 - 1  # 13-bit signed bias mantissa
PULSE_MAX = 255  # the initial-membrane pulse: one excitatory 8-bit weight (times 2**weight_exp)


@dataclass
class LoihiSkip:
    """A residual shortcut: a second synapse into a layer's neurons from an earlier population.

    source: the layer whose spikes it reads (-1: the network's input). In Lava it must arrive as
    late as the layer's main input, i.e. `delay` = (layer index - source - 1) steps after a plain
    synapse's one (`LoihiNet.skip_delay`). kind "dense" or "conv" as in `LoihiLayer`; an identity
    shortcut is an identity weight (scale * 1.0 on the diagonal, or a 1x1 conv).
    """

    source: int
    kind: str
    weight: np.ndarray
    in_shape: tuple[int, ...]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    flatten_from: tuple[int, ...] | None = None


@dataclass
class LoihiLayer:
    """One synapse layer and the CUBA neurons it drives (integers, Loihi's units).

    kind "dense": weight [out, in]; "conv": weight [out, in, kh, kw] (torch's orientation and
    cross-correlation; the Lava runner flips it). in_shape/out_shape exclude batch and time:
    (c, h, w) or (n,). flatten_from: the (c, h, w) image flattened (torch's order) into in_shape.
    The main synapse reads the layer before (the network's input for the first).
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
    recurrent: np.ndarray | None = None  # dense only: [out, out] integer weights of a Dense from the layer to itself
    skip: LoihiSkip | None = None  # a residual shortcut into the same neurons

    @property
    def v_init(self) -> int:
        """The initial membrane in threshold-mantissa units (the pulse's synaptic input)."""
        return self.v_init_mant << self.v_init_exp


@dataclass
class LoihiNet:
    in_shape: tuple[int, ...]
    layers: list[LoihiLayer]
    readout: nn.Sequential = field(default_factory=nn.Sequential)  # fixed scales of the output counts (voting)
    notes: list[str] = field(default_factory=list)  # where the conversion changes the dynamics

    def is_chain(self) -> bool:
        """Each layer reads only the one before it (what lava-dl's netx reads): no recurrence, no shortcut."""
        return all(layer.recurrent is None and layer.skip is None for layer in self.layers)

    def skip_delay(self, index: int) -> int:
        """Steps a shortcut into layer `index` waits beyond a synapse's own one: the layers it skips."""
        return index - self.layers[index].skip.source - 1
