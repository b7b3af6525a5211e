"""Synapses: nn.Linear and nn.Conv2d (weighted sums; what STDP trains and SynOps counts)."""
from __future__ import annotations

import math

import nir
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnexp.errors import ConfigError
from snnexp.network.kinds import LayerKind, Role, Unsupported, register
from snnexp.network.layers.pairs import pair
from snnexp.rules.stdp import Conv, conv_of
from snnexp.network.layers.readouts import Voting


def _weight(node: nir.NIRNode) -> Tensor:
    return torch.as_tensor(np.asarray(node.weight), dtype=torch.float32)


@register(nn.Linear)
class LinearKind(LayerKind):
    role = Role.SYNAPSE
    name = "fc"
    homogeneous = True
    plastic = True
    nir_types = (nir.Affine, nir.Linear)

    def to_nir(self, m: nn.Linear, shape, dt):
        w = m.weight.detach().float().cpu().numpy()
        if m.bias is None:
            return nir.Linear(weight=w)
        return nir.Affine(weight=w, bias=m.bias.detach().float().cpu().numpy())

    def from_nir(self, node, name, shape, dt):
        """nn.Linear; a bias-free block-average matrix (what Voting exports) becomes Voting again."""
        w = _weight(node)
        if w.dim() != 2:
            raise ConfigError(f"NIR node '{name}' ({type(node).__name__}) has a {w.dim()}-d weight; snnexp takes "
                              f"[out, in]")
        per_class = _voting(w) if isinstance(node, nir.Linear) else None
        if per_class is not None:
            return Voting(per_class)
        layer = nn.Linear(w.shape[1], w.shape[0], bias=isinstance(node, nir.Affine))
        with torch.no_grad():
            layer.weight.copy_(w)
            if layer.bias is not None:
                layer.bias.copy_(torch.as_tensor(np.asarray(node.bias), dtype=torch.float32))
        return layer

    def synops(self, m: nn.Linear, x: Tensor) -> Tensor:
        """Active inputs per feature [in] times nonzero weights per input column [in]."""
        active = (x.detach() != 0).to(torch.float64)
        nonzero = (m.weight.detach() != 0).to(torch.float64)
        return torch.dot(active.reshape(-1, m.in_features).sum(0), nonzero.sum(0))

    def dense_ops(self, m: nn.Linear, shape: tuple[int, ...]) -> int:
        return math.prod(shape) * m.out_features


def _voting(w: Tensor) -> int | None:
    """p if w is [K, K*p] with 1/p on each class's block of p inputs (snnexp's Voting), else None."""
    k, n = w.shape
    if n % k or n == k:
        return None
    p = n // k
    expected = torch.kron(torch.eye(k), torch.full((1, p), 1 / p)).to(w.dtype)
    return p if torch.equal(w, expected) else None


@register(nn.Conv2d)
class Conv2dKind(LayerKind):
    role = Role.SYNAPSE
    name = "conv"
    homogeneous = True
    plastic = True
    nir_types = (nir.Conv2d,)

    def to_nir(self, m: nn.Conv2d, shape, dt):
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise Unsupported(f"Conv2d needs numeric zero padding, has padding={m.padding!r}, "
                              f"padding_mode={m.padding_mode!r}")
        w = m.weight.detach().float().cpu().numpy()
        b = m.bias.detach().float().cpu().numpy() if m.bias is not None else np.zeros(w.shape[0], np.float32)
        return nir.Conv2d(input_shape=tuple(shape[1:]) if shape is not None else None, weight=w,
                          stride=tuple(m.stride), padding=tuple(m.padding),
                          dilation=tuple(m.dilation), groups=m.groups, bias=b)

    def from_nir(self, node, name, shape, dt):
        w = _weight(node)
        padding = node.padding if isinstance(node.padding, str) else pair(node.padding)
        layer = nn.Conv2d(w.shape[1] * int(node.groups), w.shape[0], tuple(w.shape[2:]), stride=pair(node.stride),
                          padding=padding, dilation=pair(node.dilation), groups=int(node.groups))
        with torch.no_grad():
            layer.weight.copy_(w)
            layer.bias.copy_(torch.as_tensor(np.asarray(node.bias), dtype=torch.float32))
        return layer

    def stdp_geometry(self, m: nn.Conv2d) -> Conv:
        return conv_of(m)

    def synops(self, m: nn.Conv2d, x: Tensor) -> Tensor:
        """The active-input image (summed over the batch) convolved with the kernel's nonzero taps
        summed over each group's output channels (exact at borders, strides and dilations)."""
        active = (x.detach() != 0).to(torch.float64)
        nonzero = (m.weight.detach() != 0).to(torch.float64)
        image = active.reshape(-1, *active.shape[-3:]).sum(0, keepdim=True)  # [N, C, H, W] -> [1, C, H, W]
        taps = nonzero.unflatten(0, (m.groups, -1)).sum(1)  # [C_out, C_in/g, kh, kw] -> [g, C_in/g, kh, kw]
        padding = m.padding if isinstance(m.padding, str) else tuple(m.padding)
        return F.conv2d(image, taps, stride=m.stride, padding=padding, dilation=m.dilation, groups=m.groups).sum()

    def dense_ops(self, m: nn.Conv2d, shape: tuple[int, ...]) -> int:
        if isinstance(m.padding, str):
            raise Unsupported("dense_ops needs numeric Conv2d padding")
        n = math.prod(shape[:-3])  # batch (and time) frames
        per_axis = [_taps(size, k, s, p, d) for size, k, s, p, d in
                    zip(shape[-2:], m.kernel_size, m.stride, m.padding, m.dilation)]
        return n * m.out_channels * (m.in_channels // m.groups) * per_axis[0] * per_axis[1]


def _taps(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Kernel taps that land inside the input, summed over the output positions of one axis."""
    out = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    return sum(1 for o in range(out) for a in range(kernel) if 0 <= o * stride - padding + a * dilation < size)
