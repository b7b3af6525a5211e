"""Small snnexp networks on real digits spikes, calibrated so every layer fires, for the NIR round trips."""
from __future__ import annotations

from functools import lru_cache, partial

import torch
from sklearn.datasets import load_digits

from snnexp.encoding.poisson import poisson_encode
from snnexp.models import CSNN, MLP
from snnexp.neurons import LIF
from snnexp.neurons.base import Neuron

T = 8
lif = partial(LIF, reset="hard")  # NIR's neurons reset to v_reset


def build(kind: str, **kw) -> torch.nn.Module:
    if kind == "mlp":
        return MLP(**{"neuron": lif, "in_shape": (1, 8, 8), "num_classes": 10, "hidden": (64,), **kw})
    return CSNN(**{"neuron": lif, "in_shape": (1, 8, 8), "num_classes": 10, "channels": (8, 8), "pool": "avg",
                   "step_mode": "s", **kw})


@lru_cache(maxsize=None)
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    bunch = load_digits()
    return torch.tensor(bunch.images / 16.0, dtype=torch.float32)[:, None], torch.tensor(bunch.target)


def digit_spikes(n: int = 100, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The last n digits (not trained on), Poisson-encoded: ([T, n, 1, 8, 8], [n])."""
    x, y = _digits()
    g = torch.Generator().manual_seed(seed)
    return poisson_encode(x[-n:], T, generator=g), y[-n:]


def active(kind: str, seed: int = 0, quantile: float = 0.75, **kw) -> torch.nn.Module:
    """A fresh `kind` network ("mlp" or "csnn", random weights) whose every layer fires: BatchNorm
    statistics come from digits, and each layer's gain puts a quarter of its input currents above
    the threshold (calibrated on other spikes than `digit_spikes`). In eval mode; kw go to the model."""
    torch.manual_seed(seed)
    model = build(kind, **kw)
    x_cal, _ = digit_spikes(seed=seed + 100)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = None  # a plain average over the calibration pass
        model.train()(x_cal)
        model.eval()
        T, N = x_cal.shape[:2]
        h, scalable = x_cal, None
        for layer in model.net:
            if isinstance(layer, Neuron):
                gain = float(getattr(layer, "v_threshold", 1.0)) / float(torch.quantile(h.flatten(), quantile))
                scalable.weight.mul_(gain)
                scalable.bias.mul_(gain)
                h = layer.run(h * gain)[0]  # [T, N, ...] whatever the step mode
                continue
            if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.modules.batchnorm._BatchNorm)):
                scalable = layer
            h = layer(h.flatten(0, 1)).unflatten(0, (T, N))  # [T, N, ...] -> [T*N, ...] -> layer
    return model
