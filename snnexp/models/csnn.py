"""Convolutional spiking network."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from snnexp.errors import check
from snnexp.models.base import NeuronFactory, SpikingModel, flat_size, output_layers
from snnexp.network.layers import MaxPool2d

POOLS = {"max": MaxPool2d, "avg": nn.AvgPool2d}


class CSNN(SpikingModel):
    """Blocks of conv -> (BN) -> neuron -> pool, then Linear layers and a readout.

    pool_first=True pools the synaptic current before the neuron (conv -> BN ->
    pool -> neuron, snnTorch's ordering): 4x fewer neuron updates, and max-pool
    commutes with ReLU so ANN->SNN conversion needs no spiking max-pool.
    pool_first=False pools the spikes (SpikingJelly's and Fang et al.'s order).
    A block with pool=null keeps its resolution. in_shape and num_classes come
    from the datamodule. channels_last stores conv weights (and so activations)
    as NHWC, the layout oneDNN and cuDNN convolutions are fastest in.
    """

    def __init__(
        self,
        neuron: NeuronFactory,
        in_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (32, 32),
        kernel_size: int = 3,
        pool: str | None = "max",
        pool_first: bool = True,
        batch_norm: bool = True,
        hidden: Sequence[int] = (),
        dropout: float = 0.0,
        bias: bool = True,
        readout: str = "spikes",
        readout_tau: float = 2.0,
        voting: int = 1,
        step_mode: str = "s",
        channels_last: bool = True,
    ):
        check(len(in_shape) == 3, "dataset.in_shape", tuple(in_shape), "csnn needs images [C, H, W]")
        check(all(int(c) >= 1 for c in channels), "model.channels", list(channels), "must be >= 1")
        check(int(kernel_size) % 2 == 1, "model.kernel_size", kernel_size, "must be odd (same padding)")
        check(pool is None or pool in POOLS, "model.pool", pool, f"choose one of {list(POOLS)} or null")
        check(0 <= dropout < 1, "model.dropout", dropout, "must be in [0, 1)")
        layers: list[nn.Module] = []
        c_in = int(in_shape[0])
        for c in channels:
            layers.append(nn.Conv2d(c_in, int(c), kernel_size, padding=kernel_size // 2, bias=bias and not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(int(c)))
            block_end = [neuron()]
            if pool is not None:
                block_end.insert(0 if pool_first else 1, POOLS[pool](2))
            layers += block_end
            c_in = int(c)
        layers.append(nn.Flatten())
        width = flat_size(layers, tuple(in_shape))
        for h in hidden:
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            layers += [nn.Linear(width, int(h), bias=bias), neuron()]
            width = int(h)
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += output_layers(width, num_classes, bias, readout, neuron, readout_tau, voting)
        super().__init__(layers, step_mode, readout)
        if channels_last:  # NHWC conv weights: oneDNN's fast layout (1.7x csnn training on our 2-core CPU)
            self.to(memory_format=torch.channels_last)
