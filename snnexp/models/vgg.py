"""Spiking VGG-11/13/16/19: stages of conv-BN-neuron layers, each stage ending in a 2x2 pool of the spikes."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from snnexp.errors import check
from snnexp.models.base import NeuronFactory, SpikingModel, flat_size, output_layers, scaled
from snnexp.network.layers import MaxPool2d

# depth -> convolutions per stage (Simonyan & Zisserman 2015; channels 64, 128, 256, 512, 512)
DEPTHS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
CHANNELS = (64, 128, 256, 512, 512)
POOLS = {"max": MaxPool2d, "avg": nn.AvgPool2d}


class VGG(SpikingModel):
    """[conv3x3 -> (BN) -> neuron] x n per stage, a 2x2 pool after each stage, then
    Flatten -> [(dropout) -> Linear -> neuron] per hidden width -> Linear -> readout.

    The convolutional part of the conversion papers' VGG (QCFS, Bu et al. 2022: convs with bias,
    BN, a 4096-4096 classifier). A stage's pool is left out where the image is already 1 pixel,
    so 28x28 inputs take four pools. `width` multiplies every channel and hidden width; `bias`
    false drops every bias (Loihi's synapses have none).
    """

    def __init__(
        self,
        neuron: NeuronFactory,
        in_shape: Sequence[int],
        num_classes: int,
        depth: int = 16,
        batch_norm: bool = True,
        width: float = 1.0,
        hidden: Sequence[int] = (4096, 4096),
        dropout: float = 0.0,
        pool: str = "max",
        bias: bool = True,
        readout: str = "membrane",
        readout_tau: float = 1.0,
        step_mode: str = "m",
        channels_last: bool = True,
    ):
        check(len(in_shape) == 3, "dataset.in_shape", tuple(in_shape), "vgg needs images [C, H, W]")
        check(int(depth) in DEPTHS, "model.depth", depth, f"choose one of {sorted(DEPTHS)}")
        check(float(width) > 0, "model.width", width, "must be > 0 (a multiplier of the channels)")
        check(pool in POOLS, "model.pool", pool, f"choose one of {list(POOLS)}")
        check(0 <= float(dropout) < 1, "model.dropout", dropout, "must be in [0, 1)")
        blocks: dict[str, list[nn.Module]] = {}  # stage1 ... stage5, head: the per-block metrics' groups
        c_in, size = int(in_shape[0]), min(int(in_shape[1]), int(in_shape[2]))
        for stage, (convs, c) in enumerate(zip(DEPTHS[int(depth)], scaled(CHANNELS, width))):
            layers: list[nn.Module] = []
            for _ in range(convs):
                layers.append(nn.Conv2d(c_in, c, 3, padding=1, bias=bias))
                layers += [nn.BatchNorm2d(c)] if batch_norm else []
                layers.append(neuron())
                c_in = c
            if size >= 2:
                layers.append(POOLS[pool](2))
                size //= 2
            blocks[f"stage{stage + 1}"] = layers
        features = flat_size([m for group in blocks.values() for m in group] + [nn.Flatten()], tuple(in_shape))
        head: list[nn.Module] = [nn.Flatten()]
        for h in scaled(hidden, width):
            head += ([nn.Dropout(float(dropout))] if dropout else []) + [nn.Linear(features, h, bias=bias), neuron()]
            features = h
        head += ([nn.Dropout(float(dropout))] if dropout else [])
        blocks["head"] = head + output_layers(features, num_classes, bias, readout, neuron, readout_tau)
        super().__init__(blocks, step_mode, readout)
        if channels_last:
            self.to(memory_format=torch.channels_last)
