"""Trace-based pair STDP as pure functions: no Lightning, no autograd (Morrison et al. 2008).

Every synapse has a pre-synaptic trace (decays with tau_pre) and a post-synaptic trace (decays
with tau_post); at each step the traces decay by exp(-1/tau) and then add the step's spikes.

    on a post spike:  w += lr_post * pre_trace  * (w_max - w)^mu      (potentiation)
    on a pre spike:   w -= lr_pre  * post_trace * (w - w_min)^mu      (depression)

The post trace used for depression is the one before this step's post spikes are added, so a pre
and a post spike in the same step count as pre-before-post. Hence for one pre spike at t_pre and
one post spike at t_post: dt = t_post - t_pre >= 0 gives dw = +lr_post * exp(-dt / tau_pre),
dt < 0 gives dw = -lr_pre * exp(dt / tau_post). mu = 0 is the additive rule (hard bounds by
clamping), mu = 1 the multiplicative soft-bound rule. A batch of N samples contributes the SUM
of its samples' dw (as if presented one after another with the same weights), or with
reduce="mean" the sum divided by the number of post neurons sharing the weight (N, times H'*W'
positions for a conv): the mean change per sample and position, for large batches and convs.

Linear weights are [out, in] with pre [N, in] and post [N, out]; Conv2d weights [C_out, C_in, kH,
kW] with pre [N, C_in, H, W] and post [N, C_out, H', W'] (`Conv` gives stride/padding/...).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn.grad import conv2d_weight

from snnexp.errors import check
from snnexp.neurons.fused.dispatch import available

INITS = ("uniform", "normal")
REDUCES = ("sum", "mean")


class STDPParams(NamedTuple):
    """Learning rates (weight units per unit trace), time constants (steps) and the weight range."""

    lr_post: float = 1e-2  # potentiation on a post spike (eta_+)
    lr_pre: float = 1e-4  # depression on a pre spike (eta_-)
    tau_pre: float = 20.0
    tau_post: float = 20.0
    w_min: float = 0.0
    w_max: float = 1.0
    mu: float = 0.0  # soft-bound exponent: 0 additive (clamped), 1 multiplicative
    reduce: str = "sum"  # over the batch (and conv positions): "sum" or "mean"


class Traces(NamedTuple):
    pre: Tensor  # [N, in...] like the pre spikes
    post: Tensor  # [N, out...] like the post spikes


class Conv(NamedTuple):
    """Geometry of a Conv2d synapse (from `conv_of(layer)`)."""

    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int


def check_params(p: STDPParams, key: str = "learner.stdp") -> STDPParams:
    """Validate and return `p` (errors name `<key>.<field>`)."""
    check(p.tau_pre > 0, f"{key}.tau_pre", p.tau_pre, "must be > 0 time steps")
    check(p.tau_post > 0, f"{key}.tau_post", p.tau_post, "must be > 0 time steps")
    check(p.lr_post >= 0 and p.lr_pre >= 0, f"{key}.lr_post/lr_pre", (p.lr_post, p.lr_pre), "must be >= 0")
    check(p.w_min < p.w_max, f"{key}.w_min", p.w_min, f"must be below w_max={p.w_max}")
    check(p.mu >= 0, f"{key}.mu", p.mu, "must be >= 0 (0 additive, 1 multiplicative)")
    check(p.reduce in REDUCES, f"{key}.reduce", p.reduce, f"choose one of {list(REDUCES)}")
    return p


def conv_of(layer: torch.nn.Conv2d) -> Conv:
    check(isinstance(layer.padding, tuple), "model.padding", layer.padding, "STDP needs numeric conv padding")
    return Conv(tuple(layer.stride), tuple(layer.padding), tuple(layer.dilation), int(layer.groups))


def outer_sum(post: Tensor, pre: Tensor, w_shape: torch.Size, conv: Conv | None) -> Tensor:
    """sum over the batch (and positions) of post (x) pre, shaped like the weight.

    Linear: post [B, out], pre [B, in] -> [out, in]. Conv2d: the weight-gradient correlation of
    pre [B, C_in, H, W] with post [B, C_out, H', W'] -> [C_out, C_in, kH, kW].
    """
    if conv is None:
        return post.flatten(0, -2).T.to(pre.dtype) @ pre.flatten(0, -2)  # [B, out]^T @ [B, in]
    return conv2d_weight(pre.contiguous(), w_shape, post.to(pre.dtype).contiguous(), stride=conv.stride,
                         padding=conv.padding, dilation=conv.dilation, groups=conv.groups)


def bound_factors(w: Tensor, p: STDPParams) -> tuple[Tensor | float, Tensor | float]:
    """Soft-bound weight dependence ((w_max - w)^mu, (w - w_min)^mu); 1 when mu = 0."""
    if p.mu == 0:
        return 1.0, 1.0
    return (p.w_max - w).clamp(min=0) ** p.mu, (w - p.w_min).clamp(min=0) ** p.mu


def stdp_step(pre_s: Tensor, post_s: Tensor, traces: Traces, w: Tensor, p: STDPParams,
              conv: Conv | None = None) -> tuple[Tensor, Traces]:
    """One time step: (dw, new traces). pre_s [N, in...], post_s [N, out...], w the layer weight.

    Potentiation uses the pre trace after this step's pre spikes; depression the post trace
    before this step's post spikes (see the module docstring). Nothing is modified in place.
    """
    tr_pre = traces.pre * math.exp(-1 / p.tau_pre) + pre_s
    tr_post_old = traces.post * math.exp(-1 / p.tau_post)
    up, down = bound_factors(w, p)
    dw = (p.lr_post * up) * outer_sum(post_s, tr_pre, w.shape, conv)
    dw = dw - (p.lr_pre * down) * outer_sum(tr_post_old, pre_s, w.shape, conv)
    return dw / _sharing(post_s, p), Traces(tr_pre, tr_post_old + post_s)


def _sharing(post_s: Tensor, p: STDPParams) -> float:
    """1 for reduce="sum"; else the post neurons one weight serves: N [* H' * W'] for post_s [N, C, ...]."""
    return 1.0 if p.reduce == "sum" else float(post_s.numel() // post_s.shape[1])


def trace_seq(s_seq: Tensor, tau: float, tr0: Tensor | None = None) -> Tensor:
    """Traces after each step: tr_t = tr_{t-1} * exp(-1/tau) + s_t. [T, N, ...] -> [T, N, ...]."""
    decay = math.exp(-1 / tau)
    out = torch.empty_like(s_seq)
    tr = torch.zeros_like(s_seq[0]) if tr0 is None else tr0
    for t in range(s_seq.shape[0]):
        tr = torch.add(s_seq[t], tr, alpha=decay, out=out[t])
    return out


def future_trace_seq(s_seq: Tensor, tau: float) -> Tensor:
    """Anti-causal traces: f_t = sum over t' > t of exp(-(t' - t)/tau) * s_t'. [T, N, ...] -> [T, N, ...]."""
    decay = math.exp(-1 / tau)
    g = torch.zeros((s_seq.shape[0] + 1, *s_seq.shape[1:]), dtype=s_seq.dtype, device=s_seq.device)
    for t in range(s_seq.shape[0] - 1, -1, -1):  # g_t = s_t + decay * g_{t+1}, g_T = 0
        torch.add(s_seq[t], g[t + 1], alpha=decay, out=g[t])
    return g[1:].mul_(decay)  # f_t = decay * g_{t+1}


def stdp_sequence(pre_seq: Tensor, post_seq: Tensor, w: Tensor, p: STDPParams, conv: Conv | None = None) -> Tensor:
    """dw of a whole sequence with the weights held fixed: the sum of `stdp_step` over t, from zero traces.

    pre_seq [T, N, in...], post_seq [T, N, out...]. Depression is rewritten around the post spikes,
    sum_t' tr_post(t'-) (x) pre(t') = sum_t post(t) (x) f(t) with f the pre spikes' anti-causal
    trace (`future_trace_seq`, tau_post), so both terms need only the frames (time step, sample)
    with a post spike: one product over those frames, however long and sparse the sequence.
    """
    # [T, N, ...] -> [T*N, ...], keeping only frames where some post neuron fired
    post = post_seq.flatten(0, 1)
    active = post.flatten(1).any(1).nonzero().squeeze(1)
    if active.numel() == 0:
        return torch.zeros_like(w)
    post = post.index_select(0, active)
    tr_pre = trace_seq(pre_seq, p.tau_pre)  # includes each step's pre spike
    fut_pre = future_trace_seq(pre_seq, p.tau_post)
    up, down = bound_factors(w, p)
    pot = outer_sum(post, tr_pre.flatten(0, 1).index_select(0, active), w.shape, conv)
    dep = outer_sum(post, fut_pre.flatten(0, 1).index_select(0, active), w.shape, conv)
    return ((p.lr_post * up) * pot - (p.lr_pre * down) * dep) / _sharing(post_seq[0], p)


def stdp_events(pre_seq: Tensor, t: Tensor, b: Tensor, j: Tensor, w: Tensor, p: STDPParams) -> tuple[Tensor, Tensor]:
    """`stdp_sequence` of a Linear synapse from its post spikes as events: (rows [R], dw_rows [R, in]).

    pre_seq [T, N, in]; post spike e at step t[e] of sample b[e] by neuron j[e] (int64 [E]). Only
    the R neurons that spiked change: dw[rows] = dw_rows, every other row of dw is 0. Each spike
    adds its frame's pre trace (potentiation) and anti-causal pre trace (depression) to its
    neuron's row, which is `stdp_sequence`'s product summed in another order (equal to rounding).
    """
    rows, which = torch.unique(j, return_inverse=True)  # [R], [E]: each spike's row among the R
    if rows.numel() == 0:
        return rows, w.new_zeros(0, w.shape[1])
    frames, at = torch.unique(t * pre_seq.shape[1] + b, return_inverse=True)  # [F] frames of [T*N], [E]
    tr_pre, fut_pre = traces_at(pre_seq, frames // pre_seq.shape[1], frames % pre_seq.shape[1], p)  # [F, in]
    pot = w.new_zeros(rows.numel(), w.shape[1]).index_add_(0, which, tr_pre.index_select(0, at).to(w.dtype))
    dep = w.new_zeros(rows.numel(), w.shape[1]).index_add_(0, which, fut_pre.index_select(0, at).to(w.dtype))
    up, down = bound_factors(w.index_select(0, rows), p)
    sharing = 1.0 if p.reduce == "sum" else float(pre_seq.shape[1])  # N post neurons share a Linear weight
    return rows, ((p.lr_post * up) * pot - (p.lr_pre * down) * dep) / sharing


def traces_at(pre_seq: Tensor, t: Tensor, b: Tensor, p: STDPParams) -> tuple[Tensor, Tensor]:
    """(`trace_seq` with tau_pre, `future_trace_seq` with tau_post) of pre_seq [T, N, in] at the frames
    (t[f], b[f]) only: two [F, in]. On the CPU a C++ kernel walks only the samples asked for."""
    if pre_seq.device.type == "cpu" and pre_seq.dtype in (torch.float32, torch.float64) and available("cpu"):
        tr, fut = torch.ops.snnexp_fused.pre_traces_at(pre_seq, t, b, math.exp(-1 / p.tau_pre),
                                                       math.exp(-1 / p.tau_post))
        return tr, fut
    frames = t * pre_seq.shape[1] + b  # [F] indices into [T*N, in]
    return (trace_seq(pre_seq, p.tau_pre).flatten(0, 1).index_select(0, frames),
            future_trace_seq(pre_seq, p.tau_post).flatten(0, 1).index_select(0, frames))


@torch.no_grad()
def apply_rows_(w: Tensor, rows: Tensor, dw_rows: Tensor, p: STDPParams) -> Tensor:
    """`apply_dw_` of the dw that is dw_rows at `rows` and 0 elsewhere (w[rows] += dw_rows, then clamp), in place."""
    return w.index_add_(0, rows, dw_rows.to(w.dtype)).clamp_(p.w_min, p.w_max)


@torch.no_grad()
def apply_dw_(w: Tensor, dw: Tensor, p: STDPParams) -> Tensor:
    """w <- clamp(w + dw, w_min, w_max), in place; returns w."""
    return w.add_(dw.to(w.dtype)).clamp_(p.w_min, p.w_max)


@torch.no_grad()
def normalise_(w: Tensor, total: float, w_max: float | None = None, cap: bool = False) -> Tensor:
    """Scale each output neuron's incoming weights (dim 0 indexes neurons) to sum to `total`, in place.

    With `w_max`, weights the scaling pushed above it are clipped (the range wins over the sum).
    cap=True only scales down rows whose sum exceeds `total` (never inflates unused weights).
    """
    sums = w.flatten(1).sum(1).clamp(min=1e-12)  # [out, in...] -> [out]
    scale = total / sums
    if cap:
        scale = scale.clamp(max=1.0)
    w.mul_(scale.view(-1, *([1] * (w.dim() - 1))))
    return w if w_max is None else w.clamp_(max=w_max)


def norm_total(norm: float | str | None, fan_in: int, key: str = "learner.norm") -> float | None:
    """The incoming-weight sum `norm` asks for, for a neuron with `fan_in` inputs: a number is the sum
    itself, "<x>/input" is x per input (Diehl & Cook's 78.4 for 784 pixels is "0.1/input"), None is off."""
    if norm is None:
        return None
    per_input = isinstance(norm, str)
    if per_input:
        head, _, tail = norm.partition("/")
        check(tail.strip() == "input" and _is_number(head), key, norm,
              'must be a number (the sum), "<x>/input" (x per input, e.g. "0.1/input") or null (off)')
        norm = float(head)
    total = float(norm) * fan_in if per_input else float(norm)
    check(total > 0, key, norm, "must be > 0 (the sum of each neuron's incoming weights)")
    return total


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@torch.no_grad()
def init_weights_(w: Tensor, mode: str, w_min: float, w_max: float, generator: torch.Generator | None = None,
                  key: str = "model.w_init") -> Tensor:
    """Fill w in place: "uniform" on [w_min, w_max], or "normal" around the middle (std = range/6), clamped."""
    check(mode in INITS, key, mode, f"choose one of {list(INITS)}")
    if mode == "uniform":
        u = torch.rand(w.shape, generator=generator, dtype=w.dtype)
        w.copy_(w_min + (w_max - w_min) * u)
    else:
        n = torch.randn(w.shape, generator=generator, dtype=w.dtype)
        w.copy_((w_min + w_max) / 2 + (w_max - w_min) / 6 * n).clamp_(w_min, w_max)
    return w
