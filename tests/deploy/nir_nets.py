"""Small snnexp networks (chains, residual, recurrent) on real digits spikes, calibrated so every layer fires,
for the NIR round trips."""
from __future__ import annotations

from functools import lru_cache, partial

import torch
from sklearn.datasets import load_digits

from snnexp.encoding.poisson import poisson_encode
from snnexp.models import CSNN, MLP
from snnexp.models.base import SpikingModel
from snnexp.network import Recurrent, Residual
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


def conv(c_in: int, c_out: int, k: int = 3) -> list[torch.nn.Module]:
    """k x k conv (same padding) -> BatchNorm."""
    return [torch.nn.Conv2d(c_in, c_out, k, padding=k // 2), torch.nn.BatchNorm2d(c_out)]


def residual(sew: bool = False, pool: bool = True, seed: int = 0) -> SpikingModel:
    """A residual conv network on 8x8 digits, calibrated so every layer fires (`calibrated`), in eval mode:
    conv-BN-LIF, a block with an identity shortcut summed before its LIF (spiking ResNet; `sew`: a
    conv-BN-LIF body whose spikes add to the input spikes after it, SEW-ResNet's ADD), [avg pool], a block with
    a 1x1 conv-BN projection shortcut, [avg pool], Flatten, Linear, LIF."""
    torch.manual_seed(seed)
    first = (Residual(conv(8, 8) + [lif()], []) if sew else
             Residual(conv(8, 8) + [lif()] + conv(8, 8), []))
    side = 2 if pool else 8
    layers = [*conv(1, 8), lif(), first, *([] if sew else [lif()]), *([torch.nn.AvgPool2d(2)] if pool else []),
              Residual(conv(8, 16) + [lif()] + conv(16, 16), conv(8, 16, 1)), lif(),
              *([torch.nn.AvgPool2d(2)] if pool else []), torch.nn.Flatten(), torch.nn.Linear(16 * side * side, 10),
              lif()]
    return calibrated(SpikingModel(layers, "m", "spikes"), seed)


def recurrent(seed: int = 0) -> SpikingModel:
    """Flatten, Linear(64, 32), LIF fed back its spikes through Linear(32, 32) (`Recurrent`), Linear, LIF;
    calibrated so every layer fires, in eval mode."""
    torch.manual_seed(seed)
    layers = [torch.nn.Flatten(), torch.nn.Linear(64, 32), Recurrent(lif(), torch.nn.Linear(32, 32)),
              torch.nn.Linear(32, 10), lif()]
    return calibrated(SpikingModel(layers, "m", "spikes"), seed)


@torch.no_grad()
def calibrated(model: SpikingModel, seed: int = 0, quantile: float = 0.75) -> SpikingModel:
    """BatchNorm statistics from digits, then each neuron layer's threshold (in order) at the `quantile` of
    the positive input currents it receives (at least 0.05), so every layer fires. In eval mode."""
    x_cal, _ = digit_spikes(seed=seed + 100)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # a plain average over the calibration pass
    model.train()(x_cal)
    model.eval()
    for m in list(model.modules()):
        neuron = m.neuron if isinstance(m, Recurrent) else m
        if not isinstance(neuron, Neuron) or (neuron is m and any(
                isinstance(r, Recurrent) and r.neuron is m for r in model.modules())):
            continue
        seen = []
        hook = m.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
        model(x_cal)
        hook.remove()
        x = seen[0][seen[0] > 0]
        neuron.v_threshold.fill_(max(float(torch.quantile(x, quantile)), 0.05))
    return model
