"""Spike-element-wise ResNet (Fang et al., NeurIPS 2021): the shortcut meets the block's spikes after its neurons."""
from __future__ import annotations

from functools import partial
from typing import Sequence

import torch
from torch import nn

from snnexp.models.base import NeuronFactory, SpikingModel
from snnexp.models.resnet import conv_bn, residual_layers
from snnexp.network import Residual


def sew_block(neuron: NeuronFactory, c_in: int, c_out: int, stride: int, zero_init: bool = False,
              connect: str = "add") -> list[nn.Module]:
    """conv3x3-BN-neuron-conv3x3-BN-neuron, its spikes A joined with the input spikes S by `connect`
    (add: A + S, and: A S, iand: (1 - A) S); where the shape changes, S is a strided 1x1
    conv-BN-neuron of the input (the paper's downsample). zero_init: the body's last BN at gamma = 0."""
    body = conv_bn(c_in, c_out, 3, stride) + [neuron()] + conv_bn(c_out, c_out, 3) + [neuron()]
    if zero_init:
        nn.init.zeros_(body[-2].weight)
    shortcut = conv_bn(c_in, c_out, 1, stride) + [neuron()] if stride != 1 or c_in != c_out else []
    return [Residual(body, shortcut, connect)]


class SEWResNet(SpikingModel):
    """SEW-ResNet: stem -> stages of SEW blocks (`sew_block`) -> average pool -> Linear -> readout.

    depth 18 / 34 (or null with `blocks`, `channels`), `connect` add / and / iand, `width` a
    multiplier of every channel count; the stem adapts to the input size (`resnet.stem`).
    The paper's DVS Gesture network (c32k3s1-BN-PLIF-{SEW block-MPk2s2}*7-FC11) is depth null,
    blocks [1]*7, channels [32]*7, downsample maxpool, stem small (experiment=dvs_gesture_sew_resnet).
    """

    def __init__(
        self,
        neuron: NeuronFactory,
        in_shape: Sequence[int],
        num_classes: int,
        depth: int | None = 18,
        blocks: Sequence[int] | None = None,
        channels: Sequence[int] | None = None,
        connect: str = "add",
        width: float = 1.0,
        zero_init_residual: bool = False,
        readout: str = "membrane",
        readout_tau: float = 1.0,
        downsample: str = "stride",
        stem: str = "auto",
        bias: bool = True,
        step_mode: str = "m",
        channels_last: bool = True,
    ):
        block = partial(sew_block, connect=connect)
        layers = residual_layers(neuron, in_shape, num_classes, block, depth, blocks, channels, width,
                                 zero_init_residual, readout, readout_tau, downsample, stem, bias)
        super().__init__(layers, step_mode, readout)
        if channels_last:
            self.to(memory_format=torch.channels_last)
