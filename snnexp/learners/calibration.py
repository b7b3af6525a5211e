"""Layer-wise SNN calibration after conversion (Li et al., ICML 2021, "A free lunch from ANN").

A converted SNN run for T steps differs from its ANN layer by layer: each IF layer's rate is the
ANN activation clipped and floored to multiples of 1/T, and the errors add up through the depth.
Calibration corrects one layer at a time, first to last, each against the ANN's activation on a
few hundred training images, with the layers before it already calibrated:

- light (bias correction): b_l -= E[r_l - a_l], the mean SNN-minus-ANN error of each output
  channel (r_l: the SNN's firing rate, spikes / T; a_l: the ANN activation, both normalised, so a
  rate of 1 is one spike per step);
- advanced (weights, then bias): W_l, b_l fitted by Adam so that the layer, fed the rates x_l the
  SNN gives it, reproduces the ANN's pre-activation z_l (|| W_l x_l + b_l - z_l ||^2): the
  distortion the layers below pass on is taken out of the weights; then the bias correction
  above takes out the layer's own clip-and-floor error. Li et al. fit the T-step output instead,
  || q_T(W_l x_l + b_l) - a_l ||^2 with q_T(z) = clip(floor(T z + phi), 0, T) / T and a
  straight-through floor; on our nets at T <= 4 that fit raised the error it minimises (the
  straight-through gradient ignores where floor rounds), so snnexp fits the pre-activation.

Everything works on the normalised ANN the SNN is built from (`source`; `to_snn(source)` gives the
SNN), so the calibrated weights go through the same conversion as the uncalibrated ones. The
output layer is calibrated only when an activation follows it in the ANN (a voting readout): a
logit has no rate to match. Calibration is for one T: the learner calibrates a copy per T.
It calibrates chains: residual and recurrent networks are refused (`chain` says why).
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import Tensor, nn

from snnexp.errors import ConfigError
from snnexp.network import Network, Role
from snnexp.neurons.base import reset_states

MODES = ("light", "advanced")
ToSNN = Callable[[nn.Sequential], nn.Sequential]


def chain(net: nn.Sequential) -> Network:
    """The network of `net`, which must be a chain of top-level layers; else ConfigError with the reason.

    Calibration fits each layer to the ANN from the rates of the one layer before it; a residual
    sum adds a second input (the shortcut's rates) that neither the bias correction's per-layer
    error nor the weight fit's input accounts for, so residual and recurrent networks are refused.
    """
    graph = Network.of(net)
    if not graph.is_chain() or any("." in node.name for node in graph):
        where = next(iter(graph.branched()), None) or next((n for n in graph if "." in n.name), None)
        what = f" (layer {where.name}, {type(where.module).__name__})" if where is not None else ""
        raise ConfigError(f"learner/method=calibrate calibrates chains of layers, and this network branches{what}: "
                          f"a residual sum feeds each neuron from two layers, and the layer-wise calibration of Li "
                          f"et al. (2021) matches one layer's rates at a time; use learner/method=rate or qcfs")
    return graph


def calibration_points(net: nn.Sequential) -> list[tuple[int, int]]:
    """(synapse index, index of its activation) for every conv/linear an activation follows; `net` a chain."""
    points, pending = [], None
    for node in chain(net):
        if node.role is Role.SYNAPSE:
            pending = int(node.name)
        elif node.role is Role.ACTIVATION and pending is not None:
            points.append((pending, int(node.name)))
            pending = None
    return points


@torch.no_grad()
def ann_outputs(reference: nn.Sequential, x: Tensor, indices: list[int], chunk: int = 256) -> list[Tensor]:
    """The reference ANN's output after each module index in `indices`, for images x [N, ...]."""
    reference.eval()
    out: list[list[Tensor]] = [[] for _ in indices]
    for xb in x.split(chunk):
        for i, m in enumerate(reference[: max(indices) + 1]):
            xb = m(xb)
            if i in indices:
                out[indices.index(i)].append(xb)
    return [torch.cat(v) for v in out]


@torch.no_grad()
def snn_rates(snn: nn.Sequential, x_seq: Tensor, chunk: int = 256) -> tuple[list[Tensor], list[Tensor]]:
    """(input rate of every weighted layer, output rate of the neuron right after it), x_seq [T, N, ...].

    Rates are means over the T steps: spikes per step out of a neuron, input current (spikes or
    the analog image) per step into a layer. `snn` runs in single-step mode (to_snn's SNN does).
    """
    nodes = list(chain(snn))
    synapses = [i for i, n in enumerate(nodes) if n.role is Role.SYNAPSE]
    weighted = [nodes[i].module for i in synapses]
    neurons = []
    for i in synapses:  # the first spiking neuron after each weighted layer (pools may sit between)
        rest = nodes[i + 1:]
        neurons.append(next((n.module for n in rest if n.role is Role.NEURON and n.kind.spiking), None))
    T = x_seq.shape[0]
    ins: list[list[Tensor]] = [[] for _ in weighted]
    outs: list[list[Tensor]] = [[] for _ in weighted]
    for xb_seq in x_seq.split(chunk, dim=1):
        sums_in: list[Tensor | float] = [0.0] * len(weighted)
        sums_out: list[Tensor | float] = [0.0] * len(weighted)
        handles = []
        for k, (m, n) in enumerate(zip(weighted, neurons)):
            handles.append(m.register_forward_pre_hook(_adder(sums_in, k, arg=True)))
            if n is not None:
                handles.append(n.register_forward_hook(_adder(sums_out, k, arg=False)))
        try:
            reset_states(snn)
            for x_t in xb_seq:  # spikes may be stored as bool (compact): the SNN takes floats
                snn(x_t.float() if x_t.dtype == torch.bool else x_t)
        finally:
            for h in handles:
                h.remove()
        for k in range(len(weighted)):
            ins[k].append(sums_in[k] / T)
            if neurons[k] is not None:
                outs[k].append(sums_out[k] / T)
    return [torch.cat(v) for v in ins], [torch.cat(v) if v else torch.empty(0) for v in outs]


def _adder(sums: list, k: int, arg: bool):
    def hook(module, inputs, output=None):
        value = inputs[0] if arg else output
        sums[k] = sums[k] + value.detach().float()
    return hook


def channel_error(rate: Tensor, target: Tensor) -> Tensor:
    """E[rate - target] per output channel (dim 1), averaged over samples and positions: [C]."""
    dims = [0] + list(range(2, rate.dim()))
    return (rate - target).mean(dims)


@torch.no_grad()
def mean_errors(source: nn.Sequential, reference: nn.Sequential, to_snn: ToSNN, x: Tensor,
                x_seq: Tensor) -> list[float]:
    """Per calibration point: mean over channels of |E[SNN rate - ANN activation]| (what light calibration zeroes)."""
    points = calibration_points(source)
    if not points:
        return []
    targets = ann_outputs(reference, x, [a for _, a in points])
    k_of = _snn_index(source, points)
    _, rates = snn_rates(to_snn(source), x_seq)
    return [float(channel_error(rates[k_of[k]], targets[k]).abs().mean()) for k in range(len(points))]


def calibrate(source: nn.Sequential, reference: nn.Sequential, to_snn: ToSNN, x: Tensor, x_seq: Tensor,
              mode: str = "light", iters: int = 300, lr: float = 1e-3, batch_size: int = 32,
              seed: int = 0) -> nn.Sequential:
    """A calibrated copy of `source` (the normalised ANN `to_snn` converts) for T = len(x_seq) steps.

    reference: the ANN the SNN should match (same layout as source: ReLU or QCFS with lambda 1);
    x: calibration images [N, ...]; x_seq: the SNN's input for them [T, N, ...].
    """
    if mode not in MODES:
        raise ValueError(f"calibration mode {mode!r}: choose one of {list(MODES)}")
    source = copy.deepcopy(source).eval()
    points = calibration_points(source)
    if not points:
        return source
    targets = ann_outputs(reference, x, [a for _, a in points])
    k_of = _snn_index(source, points)
    generator = torch.Generator().manual_seed(seed)
    if mode == "advanced":
        pre_activations = ann_outputs(reference, x, [a - 1 for _, a in points])
    for k, (w_index, a_index) in enumerate(points):
        layer = source[w_index]
        if mode == "advanced":
            inputs, _ = snn_rates(to_snn(source), x_seq)
            block = source[w_index:a_index]  # the layer and what sits before its activation (pooling)
            fit_preactivation(block, inputs[k_of[k]], pre_activations[k], iters, lr, batch_size, generator)
        _, rates = snn_rates(to_snn(source), x_seq)
        shift = channel_error(rates[k_of[k]], targets[k])
        with torch.no_grad():
            if layer.bias is None:
                layer.bias = nn.Parameter(torch.zeros_like(shift))
            layer.bias.sub_(shift.to(layer.bias.dtype))
    return source


def _snn_index(source: nn.Sequential, points: list[tuple[int, int]]) -> list[int]:
    """Each point's position among the weighted layers (to_snn keeps their order)."""
    weighted = [int(n.name) for n in chain(source).with_role(Role.SYNAPSE)]
    return [weighted.index(w) for w, _ in points]


def fit_preactivation(block: nn.Sequential, inputs: Tensor, target: Tensor, iters: int = 300, lr: float = 1e-3,
                      batch_size: int = 32, generator: torch.Generator | None = None) -> None:
    """Adam on the weight and bias of block[0] (a conv/linear; pooling may follow) in place:
    block(inputs) -> target in mean squared error, minibatches of batch_size."""
    block.eval()
    layer = block[0]
    if layer.bias is None:
        layer.bias = nn.Parameter(torch.zeros(layer.weight.shape[0], dtype=layer.weight.dtype,
                                              device=layer.weight.device))
    params = [layer.weight, layer.bias]
    n = inputs.shape[0]
    with torch.enable_grad():  # the learner converts under no_grad
        for p in params:
            p.requires_grad_(True)
        optimizer = torch.optim.Adam(params, lr=lr)
        for _ in range(int(iters)):
            idx = torch.randint(n, (min(batch_size, n),), generator=generator)
            loss = (block(inputs[idx]) - target[idx]).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    for p in params:
        p.requires_grad_(False)
        p.grad = None
