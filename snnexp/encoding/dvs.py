"""DVS pixel model and event framing, vectorised over a batch of images (torch, no per-pixel loop).

Events are kept flat for a whole batch (`EventBatch`: one row per event with its sample index)
and split into Tonic's structured arrays (x, y, t, p) only when asked, so framing thousands of
samples costs a few array operations. Polarity p = 1 is ON (brighter), p = 0 is OFF.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
from torch import Tensor

# The dtype of tonic.datasets.NMNIST's events, so converted and recorded samples look alike.
EVENT_DTYPE = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])


@dataclass
class EventBatch:
    """Events of `n` samples on a `width` x `height` sensor; each field is [E] (t in µs)."""

    sample: Tensor  # int64 sample index in the batch
    x: Tensor
    y: Tensor
    t: Tensor  # int64 µs
    p: Tensor  # 1 = ON, 0 = OFF
    n: int
    width: int
    height: int

    def counts(self) -> Tensor:
        """[n] events per sample."""
        return torch.bincount(self.sample, minlength=self.n)

    def to_tonic(self) -> list[np.ndarray]:
        """One structured array (x, y, t, p) per sample, sorted by time, as Tonic's datasets give."""
        order = np.lexsort((self.t.cpu().numpy(), self.sample.cpu().numpy()))  # by sample, then by time
        rows = np.empty(len(order), EVENT_DTYPE)
        for name in "xytp":
            rows[name] = getattr(self, name).cpu().numpy()[order]
        bounds = np.cumsum(self.counts().cpu().numpy())[:-1]
        return np.split(rows, bounds)


def dvs_pixels(
    log_frames: Iterable[Tensor],
    times_us: Tensor,
    threshold_on: Tensor,
    threshold_off: Tensor,
    refractory_us: float,
) -> EventBatch:
    """Events of a DVS watching log intensities L_k [N, H, W] rendered at `times_us` [K+1] (any device).

    Per pixel the reference level L_ref starts at L_0. Between two renders L moves linearly; each
    time it crosses L_ref ± C (C = threshold_on/off [H, W], per-pixel mismatch included) an event
    is due at the interpolated crossing time and L_ref moves by ± C, so a change of k·C gives k
    events (ESIM). An event within `refractory_us` of the pixel's previous emitted event is
    dropped (the reference still moves). Crossing times within one render step are equally
    spaced, which gives the accepted events in closed form.

    The events come sample-major, in emission order within a sample (render step, pixel,
    crossing). This is the reference: `dvs_cpu` computes the same events, compiled.
    """
    frames = iter(log_frames)
    prev = next(frames)
    n, height, width = prev.shape
    device = prev.device
    ref = prev.clone()
    t_last = torch.full_like(prev, -1e12)  # µs of each pixel's last emitted event
    out: dict[str, list[Tensor]] = {k: [] for k in ("i", "t", "p")}
    threshold_on, threshold_off = threshold_on.to(device), threshold_off.to(device)
    inv_on, inv_off = 1.0 / threshold_on, -1.0 / threshold_off
    c_on, c_off = threshold_on.expand_as(prev).flatten(), threshold_off.expand_as(prev).flatten()
    for k, cur in enumerate(frames, start=1):
        t0, dt = float(times_us[k - 1]), float(times_us[k] - times_us[k - 1])
        diff = cur - ref
        # crossings: floor(diff / C_on) when brighter, floor(-diff / C_off) when darker (the other is < 0)
        crossings = torch.maximum(torch.floor(diff * inv_on), torch.floor(diff * inv_off)).flatten()
        idx = crossings.nonzero().squeeze(1)
        if idx.numel() == 0:
            prev = cur
            continue
        m = crossings[idx]
        up = diff.flatten()[idx] > 0
        sign = torch.where(up, 1.0, -1.0)
        cs = torch.where(up, c_on[idx], c_off[idx]) * sign
        slope = (cur.flatten()[idx] - prev.flatten()[idx]) / dt  # log units per µs, same sign as cs
        start = t0 + (ref.flatten()[idx] - prev.flatten()[idx]) / slope  # time L would equal L_ref
        step = cs / slope  # µs between crossings
        # greedy refractory filter: first crossing j1 after t_last + R, then every `every`-th
        tl = t_last.flatten()[idx]
        j1 = torch.clamp(torch.ceil((tl + refractory_us - start) / step), min=1.0)
        every = torch.clamp(torch.ceil(refractory_us / step), min=1.0) if refractory_us > 0 else torch.ones_like(step)
        accepted = torch.where(j1 <= m, torch.floor((m - j1) / every) + 1, torch.zeros_like(m)).long()
        rep = torch.repeat_interleave(torch.arange(len(idx), device=device), accepted)
        first = torch.cumsum(accepted, 0) - accepted
        rank = torch.arange(len(rep), device=device) - first[rep]  # 0, 1, ... within each pixel
        t_ev = start[rep] + (j1[rep] + rank * every[rep]) * step[rep]
        t_ev = torch.minimum(t_ev, torch.tensor(t0 + dt, device=device))  # rounding guard
        out["i"].append(idx[rep])
        out["t"].append(t_ev)
        out["p"].append((sign[rep] > 0).long())
        last = accepted > 0
        t_last.view(-1)[idx[last]] = start[last] + (j1[last] + (accepted[last] - 1) * every[last]) * step[last]
        ref.view(-1)[idx] += m * cs
        prev = cur
    empty = torch.zeros(0, dtype=torch.long, device=device)
    i = torch.cat(out["i"]) if out["i"] else empty
    t = torch.round(torch.cat(out["t"])).long() if out["t"] else empty
    p = torch.cat(out["p"]) if out["p"] else empty
    order = torch.sort(i // (height * width), stable=True).indices  # step-major -> sample-major
    return from_pixels(i[order], t[order], p[order], n, height, width)


def from_pixels(i: Tensor, t: Tensor, p: Tensor, n: int, height: int, width: int) -> EventBatch:
    """EventBatch of events at flat pixel indices i = (sample * H + y) * W + x."""
    return EventBatch(sample=i // (height * width), x=i % width, y=(i // width) % height, t=t, p=p,
                      n=n, width=width, height=height)


def noise_events(n: int, height: int, width: int, rate_hz: float, duration_us: float,
                 generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Background activity: Poisson events at `rate_hz` per pixel, uniform in time, random polarity.

    (flat pixel index i, t µs, p), drawn on the generator's device in this order (count, i, t, p).
    """
    pixels = n * height * width
    expected = torch.tensor(float(pixels * rate_hz * duration_us * 1e-6), device=generator.device)
    count = int(torch.poisson(expected, generator=generator))
    i = torch.randint(0, pixels, (count,), generator=generator, device=generator.device)
    t = (torch.rand(count, generator=generator, dtype=torch.float64, device=generator.device) * duration_us).long()
    p = torch.randint(0, 2, (count,), generator=generator, device=generator.device)
    return i, t, p


def add_noise(ev: EventBatch, rate_hz: float, duration_us: float, generator: torch.Generator) -> EventBatch:
    """`ev` followed by `noise_events` for its samples (on ev's device)."""
    if rate_hz <= 0:
        return ev
    i, t, p = (a.to(ev.t.device) for a in noise_events(ev.n, ev.height, ev.width, rate_hz, duration_us, generator))
    noise = from_pixels(i, t, p, ev.n, ev.height, ev.width)
    return EventBatch(*(torch.cat([getattr(ev, k), getattr(noise, k)]) for k in ("sample", "x", "y", "t", "p")),
                      n=ev.n, width=ev.width, height=ev.height)


def to_frames(ev: EventBatch, n_time_bins: int) -> Tensor:
    """[N, T, 2, H, W] int16 event counts, the same as tonic.transforms.ToFrame(n_time_bins=T) per sample.

    As Tonic does: bin width = (t_last − t_first) // T µs from each sample's own first and last
    event, half-open bins, so events past T whole bins are dropped.
    """
    shape = (ev.n, n_time_bins, 2, ev.height, ev.width)
    if len(ev.t) == 0:
        return torch.zeros(shape, dtype=torch.int16, device=ev.t.device)
    big, device = torch.iinfo(torch.long).max, ev.t.device
    t0 = torch.full((ev.n,), big, device=device).scatter_reduce(0, ev.sample, ev.t, "amin")
    t1 = torch.full((ev.n,), -big, device=device).scatter_reduce(0, ev.sample, ev.t, "amax")
    width = ((t1 - t0) // n_time_bins)[ev.sample]
    rel = ev.t - t0[ev.sample]
    b = torch.div(rel, width.clamp(min=1), rounding_mode="floor")
    keep = (width > 0) & (b < n_time_bins)
    flat = ((((ev.sample * n_time_bins + b) * 2 + ev.p) * ev.height + ev.y) * ev.width + ev.x)[keep]
    counts = torch.bincount(flat, minlength=int(np.prod(shape)))
    return counts.view(shape).clamp_(max=torch.iinfo(torch.int16).max).to(torch.int16)
