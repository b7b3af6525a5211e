"""csnn's max-pool: nn.MaxPool2d, with the C++ kernel for the non-overlapping case on the CPU.

A drop-in subclass, so every isinstance check (NIR export, Loihi, conversion) sees an nn.MaxPool2d.
The values and gradients are torch's (tests/neurons/test_max_pool.py); only the cost differs
(snnexp/neurons/fused/max_pool.cpp). `window` (k for a k x k window with stride k, else None) is
what a model needs to fuse the pool into the spiking neuron before it (`SpikingModel`).
"""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from snnexp.neurons.fused.dispatch import max_pool2d


class MaxPool2d(nn.MaxPool2d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        k = _pair(self.kernel_size)
        stride = _pair(self.stride if self.stride is not None else self.kernel_size)
        simple = (k[0] == k[1] and stride == k and _pair(self.padding) == (0, 0) and _pair(self.dilation) == (1, 1)
                  and not self.ceil_mode and not self.return_indices)
        self.window = k[0] if simple else None  # the kernel's case, decided once, not at every step

    def forward(self, x: Tensor) -> Tensor:
        if self.window is not None and x.dim() == 4:
            return max_pool2d(x, self.window)
        return super().forward(x)
