"""ANN->SNN conversion as pure functions on an nn.Sequential (Rueckauer et al. 2017, Front. Neurosci. 11:682).

    ann = ann_counterpart(snn_model.net)      # the backbone with ReLU where its neurons were
    ... train ann by gradient descent ...
    folded = fold_batchnorm(ann.eval())       # BN merged into the conv/linear before it
    scales = activation_scales(folded, batches, percentile=99.9)
    snn = to_snn(normalise(folded, scales), IF, readout="spikes")

Every function returns a new network and leaves its input alone. Normalisation relies on every
module between a conv/linear and its ReLU being positively homogeneous (f(c x) = c f(x) for
c > 0): pooling, dropout, flatten, voting.
`snnexp.learners.over_time` gives the SNN's accuracy at every T <= T_max from one run.
"""
from __future__ import annotations

import copy
import math
from typing import Callable, Iterable

import torch
from torch import Tensor, nn

from snnexp.errors import check
from snnexp.network.layers import Voting
from snnexp.models.batchnorm import WEIGHTED, fold_batchnorm  # noqa: F401 (re-exported: the conversion's first step)
from snnexp.models.spikify import spikify
from snnexp.network.layers import SpikingMaxPool2d
from snnexp.neurons.base import Neuron, SpikingNeuron

HOMOGENEOUS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Dropout, nn.Flatten, nn.Identity, Voting)
MAX_POOLS = ("avg", "spiking")
Scales = dict[int, float]  # index in the Sequential of a ReLU (or of the output conv/linear) -> lambda


def ann_counterpart(net: nn.Sequential, max_pool: str = "spiking", bias: bool = True) -> nn.Sequential:
    """The ANN of a spiking backbone's layers: ReLU for every neuron, no readout neuron.

    A copy of `net` (e.g. SpikingModel.net) where each spiking neuron becomes nn.ReLU, except
    one in last place (the spiking readout), which is dropped so the ANN ends in logits; so is a
    non-spiking readout (leaky integrator). Readout neurons followed by Voting stay ReLU: the vote
    averages their rates. max_pool "spiking": max-pools kept (the SNN gets SpikingMaxPool2d);
    "avg": each nn.MaxPool2d becomes nn.AvgPool2d of the same geometry (linear, so exact in the SNN).
    bias=False removes every conv/linear bias (targets without biases); BatchNorm is then
    refused, since folding it creates biases.
    """
    check(max_pool in MAX_POOLS, "learner.max_pool", max_pool, f"choose one of {list(MAX_POOLS)}")
    modules = list(net)
    layers: list[nn.Module] = []
    for i, m in enumerate(modules):
        if isinstance(m, Neuron):
            if isinstance(m, SpikingNeuron) and i < len(modules) - 1:
                layers.append(nn.ReLU())
        elif isinstance(m, nn.MaxPool2d) and max_pool == "avg":
            check(m.dilation in (1, (1, 1)) and not m.ceil_mode, "learner.max_pool", max_pool,
                  "avg needs max-pools without dilation or ceil_mode; use spiking")
            layers.append(nn.AvgPool2d(m.kernel_size, m.stride, m.padding))
        else:
            layers.append(copy.deepcopy(m))
    if not bias:
        check(not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in layers), "learner.bias", bias,
              "a bias-free network cannot have BatchNorm (folding it creates biases): set model.batch_norm=false")
        for m in layers:
            if isinstance(m, WEIGHTED):
                m.bias = None
    return nn.Sequential(*layers)


def percentile(values: Tensor, q: float) -> float:
    """The q-th percentile (0..100) of `values`, interpolated like numpy.percentile; NaN if empty.

    Uses kthvalue, so it works on more than torch.quantile's 2**24 elements.
    """
    v = values.flatten().float()
    n = v.numel()
    if n == 0:
        return float("nan")
    pos = q / 100.0 * (n - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    a = float(v.kthvalue(lo + 1).values)
    b = float(v.kthvalue(hi + 1).values) if hi != lo else a
    return a + (b - a) * (pos - lo)


@torch.no_grad()
def activation_scales(net: nn.Sequential, batches: Iterable[Tensor], q: float = 99.9) -> Scales:
    """lambda per ReLU and for the output: the q-th percentile of its positive activations.

    batches: training inputs [N, ...] (a few hundred samples suffice). q = 100 is max-norm
    (Diehl et al. 2015); q = 99.9 is Rueckauer et al.'s robust choice. Like their toolbox, zeros
    are left out (else a sparse layer's percentile is 0). A layer never active gets lambda 1.
    Keys: the index of each nn.ReLU in `net` and of the last conv/linear (its positive outputs).
    """
    check(0 < q <= 100, "learner.percentile", q, "must be in (0, 100] (100 = max-norm)")
    points = [i for i, m in enumerate(net) if isinstance(m, nn.ReLU)] + [_last_weighted(net)]
    active: dict[int, list[Tensor]] = {i: [] for i in points}
    net.eval()
    for x in batches:
        for i, m in enumerate(net):
            x = m(x)
            if i in active:
                active[i].append(x[x > 0].cpu())
    scales = {i: percentile(torch.cat(v), q) if v else float("nan") for i, v in active.items()}
    return {i: s if math.isfinite(s) and s > 0 else 1.0 for i, s in scales.items()}


@torch.no_grad()
def normalise(net: nn.Sequential, scales: Scales, output: bool = True) -> nn.Sequential:
    """A copy of `net` whose ReLU outputs are divided by their lambda: W_l *= lambda_{l-1} / lambda_l, b_l /= lambda_l.

    `net` must have its BatchNorms folded. The hidden activations then lie in [0, 1] but for the
    top (100 - q) %, and every prediction is unchanged (logits / lambda_out, or logits when
    output=False: a non-spiking readout needs no bound). Input scale lambda_0 = 1 (images in [0, 1]).
    """
    out = copy.deepcopy(net)
    prev, pending, pending_index = 1.0, None, -1
    for i, m in enumerate(out):
        if isinstance(m, WEIGHTED):
            if pending is not None:
                raise ValueError(f"layer {i} ({m}) follows a weighted layer without a ReLU in between")
            pending, pending_index = m, i
        elif isinstance(m, nn.ReLU):
            if pending is None:
                raise ValueError(f"ReLU at {i} has no conv/linear before it")
            _scale(pending, prev / scales[i], 1.0 / scales[i])
            prev, pending = scales[i], None
        elif not isinstance(m, HOMOGENEOUS):
            raise ValueError(f"cannot normalise through {m} at {i}: fold BatchNorm first; only "
                             f"{[c.__name__ for c in HOMOGENEOUS]} may sit between a layer and its ReLU")
    if pending is not None:  # the output layer
        lam = scales.get(pending_index, 1.0) if output else 1.0
        _scale(pending, prev / lam, 1.0 / lam)
    return out


def _last_weighted(net: nn.Sequential) -> int:
    """Index of the last conv/linear layer of `net`."""
    indices = [i for i, m in enumerate(net) if isinstance(m, WEIGHTED)]
    if not indices:
        raise ValueError("the network has no Conv2d or Linear layer")
    return indices[-1]


def _scale(layer: nn.Module, weight_factor: float, bias_factor: float) -> None:
    layer.weight.mul_(weight_factor)
    if layer.bias is not None:
        layer.bias.mul_(bias_factor)


@torch.no_grad()
def to_snn(net: nn.Sequential, neuron: Callable[[], nn.Module], readout: str = "spikes") -> nn.Sequential:
    """The spiking network of a normalised ANN: IF neurons for ReLUs, biases as constant current.

    A copy of `net` through `spikify`, with every max-pool replaced by SpikingMaxPool2d (in
    either order relative to the neuron), dropout removed, and weights and biases multiplied by
    the neuron's threshold (a normalised activation of 1 then fires at every step). A bias is
    added at every step: a constant input current. readout "spikes": IF neurons after the output
    layer (prediction: most spikes), unless a ReLU follows it already (before a Voting layer);
    "membrane": no neuron (prediction: most integrated current).
    """
    check(readout in ("spikes", "membrane"), "model.readout", readout, "choose spikes or membrane")
    threshold = float(getattr(neuron(), "v_threshold", 1.0))
    layers = []
    for m in spikify(net, neuron, activations=(nn.ReLU,)):
        if isinstance(m, nn.Dropout):
            continue
        if isinstance(m, nn.MaxPool2d):
            if m.dilation not in (1, (1, 1)) or m.ceil_mode:
                raise ValueError(f"no spiking form of {m}: dilation and ceil_mode are not supported")
            m = SpikingMaxPool2d(m.kernel_size, m.stride, m.padding)
        if isinstance(m, WEIGHTED):
            _scale(m, threshold, threshold)
        layers.append(m)
    if readout == "spikes" and not any(isinstance(m, nn.ReLU) for m in list(net)[_last_weighted(net):]):
        out = _last_weighted(nn.Sequential(*layers))
        layers.insert(out + 1, neuron())  # right after the output layer (before a Voting)
    return nn.Sequential(*layers)
