"""Spiking residual networks: ResNet-18/19/34 (the shortcut adds to the current before a block's last neuron)."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from snnexp.errors import check
from snnexp.models.base import NeuronFactory, SpikingModel, output_layers, scaled
from snnexp.network import Network, Residual

# depth -> (blocks per stage, channels per stage, stem channels, hidden FC widths)
DEPTHS: dict[int, tuple[tuple[int, ...], tuple[int, ...], int | None, tuple[int, ...]]] = {
    18: ((2, 2, 2, 2), (64, 128, 256, 512), None, ()),  # He et al. 2016 (CIFAR form on small images)
    34: ((3, 4, 6, 3), (64, 128, 256, 512), None, ()),
    19: ((3, 3, 2), (128, 256, 512), 64, (256,)),  # Zheng et al. 2021 (tdBN), Deng et al. 2022 (TET): CIFAR
}
LARGE = 64  # images larger than this get the ImageNet stem (7x7 stride 2, then a 3x3 max-pool of stride 2)
STEMS = ("auto", "small", "large")
DOWNSAMPLES = ("stride", "maxpool")
Block = Callable[[NeuronFactory, int, int, int, bool], list[nn.Module]]


def conv_bn(c_in: int, c_out: int, kernel_size: int, stride: int = 1) -> list[nn.Module]:
    """kxk conv (same padding, no bias: BN follows) -> BN."""
    return [nn.Conv2d(c_in, c_out, kernel_size, stride, kernel_size // 2, bias=False), nn.BatchNorm2d(c_out)]


def stem(neuron: NeuronFactory, in_shape: Sequence[int], c: int, size: str = "auto") -> list[nn.Module]:
    """conv-BN-neuron on the input: "small", 3x3 stride 1 (CIFAR, MNIST); "large", 7x7 stride 2 and a
    3x3/2 max-pool (ImageNet); "auto": large for images over 64 px (ImageNet, 128x128 event frames)."""
    check(size in STEMS, "model.stem", size, f"choose one of {list(STEMS)}")
    if size == "small" or (size == "auto" and max(int(in_shape[1]), int(in_shape[2])) <= LARGE):
        return conv_bn(int(in_shape[0]), c, 3) + [neuron()]
    return conv_bn(int(in_shape[0]), c, 7, 2) + [neuron(), nn.MaxPool2d(3, 2, 1)]


def basic_block(neuron: NeuronFactory, c_in: int, c_out: int, stride: int, zero_init: bool = False) -> list[nn.Module]:
    """conv3x3-BN-neuron-conv3x3-BN (+ shortcut: identity, or a strided 1x1 conv-BN when the shape
    changes), summed, then a neuron: the spiking ResNet of Hu et al. (2018) and Zheng et al. (2021, tdBN).
    zero_init: the body's last BN starts at gamma = 0, so the block starts as its shortcut (Goyal et al. 2017)."""
    body = conv_bn(c_in, c_out, 3, stride) + [neuron()] + conv_bn(c_out, c_out, 3)
    if zero_init:
        nn.init.zeros_(body[-1].weight)
    shortcut = conv_bn(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else []
    return [Residual(body, shortcut, "add"), neuron()]


def residual_layers(neuron: NeuronFactory, in_shape: Sequence[int], num_classes: int, block: Block,
                    depth: int | None, blocks: Sequence[int] | None, channels: Sequence[int] | None, width: float,
                    zero_init: bool, readout: str, readout_tau: float, downsample: str = "stride",
                    stem_size: str = "auto", bias: bool = True) -> dict[str, list[nn.Module]]:
    """Stem -> stages of `block`s -> global average pool -> hidden Linear + neuron layers -> Linear
    -> readout, as named blocks ("stem", "stage1.block1", ..., "head"). `depth` picks a standard
    network (DEPTHS); null takes `blocks` and `channels` as given. downsample "stride": the first
    block of every stage after the first strides by 2 (He et al.); "maxpool": no block strides, a
    2x2 max-pool follows every block while the image is over 1 px (Fang et al. 2021's DVS networks).
    bias: of the Linear layers (the convolutions have none: BatchNorm follows them); false for Loihi."""
    check(len(in_shape) == 3, "dataset.in_shape", tuple(in_shape), "a residual network needs images [C, H, W]")
    check(downsample in DOWNSAMPLES, "model.downsample", downsample, f"choose one of {list(DOWNSAMPLES)}")
    check(float(width) > 0, "model.width", width, "must be > 0 (a multiplier of the channels)")
    if depth is not None:
        check(int(depth) in DEPTHS, "model.depth", depth, f"choose one of {sorted(DEPTHS)} or null (model.blocks)")
        blocks, channels, stem_c, hidden = DEPTHS[int(depth)]
    else:
        check(blocks is not None and channels is not None and len(blocks) == len(channels) > 0, "model.blocks",
              blocks, "with model.depth=null give one block count per stage and model.channels of the same length")
        check(all(int(b) >= 1 for b in blocks), "model.blocks", list(blocks), "each stage needs >= 1 block")
        stem_c, hidden = None, ()
    widths = scaled(channels, width)
    c_in = scaled([stem_c], width)[0] if stem_c else widths[0]
    layers = {"stem": stem(neuron, in_shape, c_in, stem_size)}
    stem_net = Network.of(nn.Sequential(*layers["stem"]), tuple(in_shape))
    size = stem_net[stem_net.output].shape[-1]  # the image side after the stem
    for stage, (n, c) in enumerate(zip(blocks, widths)):
        for b in range(int(n)):
            stride = 2 if downsample == "stride" and stage > 0 and b == 0 else 1
            layers[f"stage{stage + 1}.block{b + 1}"] = block(neuron, c_in, c, stride, zero_init)
            if downsample == "maxpool" and size > 1:
                layers[f"stage{stage + 1}.block{b + 1}"].append(nn.MaxPool2d(2))
                size //= 2
            c_in = c
    head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    for h in scaled(hidden, width):
        head += [nn.Linear(c_in, h, bias=bias), neuron()]
        c_in = h
    layers["head"] = head + output_layers(c_in, num_classes, bias, readout, neuron, readout_tau)
    return layers


class ResNet(SpikingModel):
    """Spiking ResNet: stem -> stages of BasicBlocks (`basic_block`) -> average pool -> Linear -> readout.

    depth 18 / 34 (He et al.) or 19 (the CIFAR network of the tdBN and TET papers), or null with
    your own `blocks` and `channels`; `width` multiplies every channel count (quick runs: 0.25).
    The stem adapts to the input size (`stem`). in_shape [C, H, W] and num_classes come from the
    datamodule.
    """

    def __init__(
        self,
        neuron: NeuronFactory,
        in_shape: Sequence[int],
        num_classes: int,
        depth: int | None = 18,
        blocks: Sequence[int] | None = None,
        channels: Sequence[int] | None = None,
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
        layers = residual_layers(neuron, in_shape, num_classes, basic_block, depth, blocks, channels, width,
                                 zero_init_residual, readout, readout_tau, downsample, stem, bias)
        super().__init__(layers, step_mode, readout)
        if channels_last:  # NHWC conv weights: oneDNN's fast layout
            self.to(memory_format=torch.channels_last)
