"""Compiled (numba) pixel model of `snnexp.encoding.dvs_cpu`; imported only when numba is.

Every float32 operation mirrors `snnexp.encoding.dvs.dvs_pixels` (the torch reference) in the same
order, so the events are the same bit for bit: torch's lerp is a fused multiply-add (`fma_f32`),
torch turns `R / step` into `reciprocal(step) * R`, torch.maximum / minimum / clamp keep NaN, so
these do too, and the log is the one torch.log calls on the CPU (MKL's vector log, `log_f32`).
One call converts a range of images, one image at a time: its state (~30 KB) stays in the
core's cache through all render steps.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import uintp

from snnexp.encoding.numba_ops import (JIT, LANES, ceil_f32, exp_f32, floor_f32, fma_f32, log_f32, outside_lanes,
                                       rint_f32)

SHIFT, SCALE, FRAMES = 0, 1, 2  # how a frame is rendered (see `render_frame`)
F32 = np.float32
MAX_LOG = 50.0  # beyond |L_ref| = 50 (intensity + eps outside e^-50 .. e^50) every step is checked exactly
LO, HI = 0, 1  # guard[:, q] = (lo, hi), see `guard_factors`
# rows of the per-candidate array (`emulate_image`): gathered inputs, then the update's intermediate values
(C_REF, C_T_LAST, C_INV_ON, C_INV_OFF, C_ON, C_OFF,
 C_M, C_CS, C_START, C_STEP, C_J1, C_EVERY, C_ACCEPTED, C_ROWS) = range(14)


@numba.njit(inline="always", **JIT)
def _lerp_weight(weight):
    """torch.lerp(start, end, w) on the CPU is fma(g, end - start, base) with (g, base) = (w, start)
    for |w| < 0.5, else (w - 1, end): returns (g, whether base is end)."""
    if abs(weight) < F32(0.5):
        return weight, False
    return weight - F32(1.0), True


@numba.njit(inline="always", **JIT)
def _max_nan(a, b):
    return a if (a > b or math.isnan(a)) else b


@numba.njit(inline="always", **JIT)
def _min_nan(a, b):
    return a if (a < b or math.isnan(a)) else b


@numba.njit(**JIT)
def render_frame(render, k, n, spans, eps, width, frame):
    """frame[y * W + x] = intensity + eps of the lit pixels of image n in render step k (torch: frame + eps);
    the others are left as they are. render = (kind, src, ix, iy, wx, wy), spans as `emulate_image` takes them.

    SHIFT (saccade): the camera view of src[0, n] (the padded scene) at integer offset
    (ix[k], iy[k]) plus bilinear weights (wx[k], wy[k]): lerp along x in two rows, then along y
    (emulation._shift). SCALE (flicker): src[0, n] * wx[k]. FRAMES: src[k, n], rendered by torch.
    One call renders a whole frame: numba increfs and decrefs (atomically) every array a call
    takes or a view makes, too often per row. Unsigned indices: numba checks signed ones for
    wraparound, which stops vectorising.
    """
    kind, src, ix, iy, wx, wy = render
    height, width, n, k = spans.shape[1], uintp(width), uintp(n), uintp(k)
    gx, from_end_x = _lerp_weight(wx[k])
    gy, from_end_y = _lerp_weight(wy[k])
    for y in range(height):
        x0, x1, y = uintp(spans[n, y, 0]), uintp(spans[n, y, 1]), uintp(y)
        base = y * width
        if kind == SHIFT:
            r, c = uintp(iy[k]) + y, uintp(ix[k])
            for x in range(x0, x1):
                i = c + x
                a0, a1 = src[0, n, r, i], src[0, n, r, i + uintp(1)]
                b0, b1 = src[0, n, r + uintp(1), i], src[0, n, r + uintp(1), i + uintp(1)]
                top = fma_f32(gx, a1 - a0, a1 if from_end_x else a0)
                bottom = fma_f32(gx, b1 - b0, b1 if from_end_x else b0)
                frame[base + x] = fma_f32(gy, bottom - top, bottom if from_end_y else top) + eps
        elif kind == SCALE:
            for x in range(x0, x1):
                frame[base + x] = src[0, n, y, x] * wx[k] + eps
        else:
            for x in range(x0, x1):
                frame[base + x] = src[k, n, y, x] + eps


@numba.njit(**JIT)
def lit_shifted(scene, y0, x0, kh, kw, height, width):
    """[N, H, W] bool: whether any scene[n] pixel in rows y0 + y .. y0 + y + kh - 1 and columns
    x0 + x .. x0 + x + kw - 1 is non-zero (or NaN), by a summed-area table of the non-zero pixels."""
    n_images, rows, cols = scene.shape
    area = np.zeros((rows + 1, cols + 1), np.int32)
    lit = np.zeros((n_images, height, width), np.bool_)
    for n in range(n_images):
        for r in range(rows):
            run = 0
            for c in range(cols):
                run += scene[n, r, c] != 0
                area[r + 1, c + 1] = area[r, c + 1] + run
        for y in range(height):
            for x in range(width):
                a, b, c, d = y0 + y, x0 + x, y0 + y + kh, x0 + x + kw
                lit[n, y, x] = area[c, d] - area[a, d] - area[c, b] + area[a, b] > 0
    return lit


@numba.njit(**JIT)
def row_spans(lit):
    """[N, H, 2] int64: per sensor row of lit [N, H, W] the first and one past the last lit pixel
    ((0, 0) when none is lit)."""
    n_images, height, width = lit.shape
    spans = np.zeros((n_images, height, 2), np.int64)
    for n in range(n_images):
        for y in range(height):
            first, last = width, 0
            for x in range(width):
                if lit[n, y, x]:
                    first, last = min(first, x), x + 1
            if last > 0:
                spans[n, y, 0], spans[n, y, 1] = first, last
    return spans


def guard_factors(c_on: np.ndarray, c_off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the intensities + eps that cannot cross: (lo, hi) = exp(L_ref) * (k_off, k_on),
    with k_on = exp(C_on - margin), k_off = exp(margin - C_off).

    margin = 1e-5 * (1 + MAX_LOG + C) in log units: far above the error of float32 exp and products
    (~1e-7) and of torch.log at |L| <= MAX_LOG (1 ulp <= 4e-6), so a pixel inside (lo, hi) cannot
    cross in dvs_pixels' arithmetic; outside, the exact model decides. Rounded inwards.
    """
    on, off = c_on.astype(np.float64), c_off.astype(np.float64)
    k_on = np.exp(on - 1e-5 * (1 + MAX_LOG + on)).astype(np.float32)
    k_off = np.exp(1e-5 * (1 + MAX_LOG + off) - off).astype(np.float32)
    return np.nextafter(k_on, np.float32(0)), np.nextafter(k_off, np.float32(np.inf))


@numba.njit(inline="always", **JIT)
def _guard(r, k_on, k_off):
    """(lo, hi) of a pixel whose reference level is r (`guard_factors`)."""
    if abs(r) <= F32(MAX_LOG):
        e = exp_f32(r)
        return e * k_off, e * k_on
    return F32(np.inf), F32(-np.inf)  # an empty interval: always checked


@numba.njit(**JIT)
def emulate_image(render, n, spans, eps, steps, sensor, state, events, n_ev):
    """Appends the events of image n to `events` = (t, pixel q, p) from index n_ev on; returns the new
    count, or -1 when they do not fit (the caller grows them and calls again: the image starts afresh).

    render: (kind, src, ix, iy, wx, wy) as `render_frame` takes them. spans [N, H, 2]: per sensor row
    the pixels that ever see light (the others stay at eps, the level they start from). steps:
    (t0, dt, t_end) float32 [K+1] per render step k >= 1, as dvs_pixels rounds them. sensor:
    (c_on, c_off, inv_on, inv_off, k_on, k_off) per pixel [H*W] and the refractory period (float32).
    state: per-pixel work arrays reused from image to image (`work_arrays`).
    """
    c_on, c_off, inv_on, inv_off, k_on, k_off, refractory = sensor
    t0s, dts, t_ends = steps
    ref, t_last, guard, cand_q, cand_x, cand, frames, scratch = state
    ev_t, ev_q, ev_p = events
    e = uintp(n_ev)  # the next event's index
    height, width = spans.shape[1], uintp(ref.shape[0] // spans.shape[1])
    lo, hi = guard[LO], guard[HI]
    one = F32(1.0)
    # render step 0: the reference levels L_0 = log(frame + eps), torch.log's own rounding
    frames[:] = eps
    render_frame(render, 0, n, spans, eps, width, frames[0])
    ref[:] = frames[0, :len(ref)]
    log_f32(ref, len(ref), scratch)
    for q in range(len(ref)):
        t_last[q] = F32(-1e12)
        lo[q], hi[q] = _guard(ref[q], k_on[q], k_off[q])
    for k in range(1, len(t0s)):
        prev, cur = frames[(k - 1) & 1], frames[k & 1]  # alternate: no copy of the frame
        render_frame(render, k, n, spans, eps, width, cur)
        # the pixels that may cross: intensity + eps outside (lo, hi), tested LANES at a time and listed
        # in pixel order without a branch per pixel (every lane is written, a candidate's moves count on)
        count = uintp(0)
        for chunk in range(uintp(0), uintp(len(cur)), uintp(LANES)):
            mask = outside_lanes(lo, hi, cur, chunk)
            if mask:
                for b in range(uintp(LANES)):
                    cand_q[count] = chunk + b
                    count += (mask >> b) & uintp(1)
        if count == 0:
            continue
        # their previous and current values (to be logged) and what the update needs, gathered
        for i in range(count):
            q = uintp(cand_q[i])
            cand_x[uintp(2) * i] = prev[q]
            cand_x[uintp(2) * i + uintp(1)] = cur[q]
            cand[C_REF, i], cand[C_T_LAST, i] = ref[q], t_last[q]
            cand[C_INV_ON, i], cand[C_INV_OFF, i] = inv_on[q], inv_off[q]
            cand[C_ON, i], cand[C_OFF, i] = c_on[q], c_off[q]
        log_f32(cand_x, 2 * count, scratch)
        t0, dt, t_end = t0s[k], dts[k], t_ends[k]
        # dvs_pixels' update, the same float32 operations: first for all candidates at once (no branch:
        # it vectorises, the divisions too), then the events and the new state, pixel by pixel
        for i in range(count):
            j = uintp(2) * i
            l_prev, l_cur, r = cand_x[j], cand_x[j + uintp(1)], cand[C_REF, i]
            diff = l_cur - r
            m = _max_nan(floor_f32(diff * cand[C_INV_ON, i]), floor_f32(diff * cand[C_INV_OFF, i]))
            cs = cand[C_ON, i] if diff > 0 else -cand[C_OFF, i]
            slope = (l_cur - l_prev) / dt
            start = t0 + (r - l_prev) / slope
            step = cs / slope
            j1 = _max_nan(ceil_f32((cand[C_T_LAST, i] + refractory - start) / step), one)
            every = _max_nan(ceil_f32((one / step) * refractory), one) if refractory > 0 else one
            cand[C_M, i], cand[C_CS, i], cand[C_START, i], cand[C_STEP, i] = m, cs, start, step
            cand[C_J1, i], cand[C_EVERY, i] = j1, every
            cand[C_ACCEPTED, i] = floor_f32((m - j1) / every) + one if j1 <= m else F32(0)
        for i in range(count):
            m = cand[C_M, i]
            if m == 0:  # False for NaN, as torch's nonzero
                continue
            q, a, cs = uintp(cand_q[i]), cand[C_ACCEPTED, i], cand[C_CS, i]
            start, step, j1, every = cand[C_START, i], cand[C_STEP, i], cand[C_J1, i], cand[C_EVERY, i]
            up = cand_x[uintp(2) * i + uintp(1)] - cand[C_REF, i] > 0
            accepted = int(a) if a == a else 0
            if e + uintp(accepted) > uintp(len(ev_t)):
                return -1
            for rank in range(accepted):
                t = start + (j1 + F32(rank) * every) * step
                ev_t[e] = np.int64(rint_f32(_min_nan(t, t_end)))
                ev_q[e] = q
                ev_p[e] = 1 if up else 0
                e += uintp(1)
            if accepted > 0:
                t_last[q] = start + (j1 + F32(accepted - 1) * every) * step
            r = cand[C_REF, i] + m * cs
            ref[q] = r
            lo[q], hi[q] = _guard(r, k_on[q], k_off[q])
    return np.int64(e)


@numba.njit(**JIT)
def _grow(events, n_ev):
    """events = (t, q, p) twice as long, the first n_ev kept."""
    ev_t, ev_q, ev_p = events
    size = 2 * len(ev_t)
    t, q, p = np.empty(size, np.int64), np.empty(size, np.int32), np.empty(size, np.int8)
    t[:n_ev], q[:n_ev], p[:n_ev] = ev_t[:n_ev], ev_q[:n_ev], ev_p[:n_ev]
    return t, q, p


@numba.njit(**JIT)
def work_arrays(height, width):
    """Per-pixel state of one image (ref, t_last, guard, candidates, two frames, log scratch), reused.
    The guard and the frames are padded to a multiple of LANES pixels, the guard there (-inf, inf):
    no padding pixel is a candidate."""
    pixels = height * width
    padded = -(-pixels // LANES) * LANES
    guard = np.empty((2, padded), np.float32)
    guard[LO, pixels:], guard[HI, pixels:] = -np.inf, np.inf
    return (np.empty(pixels, np.float32), np.empty(pixels, np.float32), guard, np.empty(pixels + LANES, np.int32),
            np.empty(2 * pixels, np.float32), np.empty((C_ROWS, pixels), np.float32), np.empty((2, padded), np.float32),
            (np.empty(1, np.int32), np.empty(1, np.int64)))


@numba.njit(**JIT)
def _emulate(render, n, spans, eps, steps, sensor, state, events, n_ev):
    """`emulate_image`, growing `events` until image n's fit: (events, new count)."""
    end = emulate_image(render, n, spans, eps, steps, sensor, state, events, n_ev)
    while end < 0:
        events = _grow(events, n_ev)
        end = emulate_image(render, n, spans, eps, steps, sensor, state, events, n_ev)
    return events, end


@numba.njit(**JIT)
def events_range(render, n0, n1, spans, eps, steps, sensor):
    """Events of images n0..n1-1, image by image: (t [E], image [E], pixel q [E], p [E])."""
    height = spans.shape[1]
    width = sensor[0].shape[0] // height
    state = work_arrays(height, width)
    image = np.empty(4096, np.int64)
    events = (np.empty(4096, np.int64), np.empty(4096, np.int32), np.empty(4096, np.int8))
    count = 0
    for n in range(n0, n1):
        start = count
        events, count = _emulate(render, n, spans, eps, steps, sensor, state, events, start)
        if len(image) < count:
            grown = np.empty(len(events[0]), np.int64)
            grown[:start] = image[:start]
            image = grown
        image[start:count] = n
    return events[0][:count], image[:count], events[1][:count], events[2][:count]


@numba.njit(**JIT)
def frames_range(render, n0, n1, spans, eps, steps, sensor, noise_ptr, noise_t, noise_q, noise_p, out):
    """Frames of images n0..n1-1 into out [N, T, 2, H*W] (uint8, zeroed), as `dvs.to_frames` bins each
    image's events and noise (noise of image n: noise_*[noise_ptr[n]:noise_ptr[n + 1]]): bin width
    (t_last - t_first) // T from the image's own events, half-open bins, counts saturating at 255."""
    height = spans.shape[1]
    width = sensor[0].shape[0] // height
    n_bins = out.shape[1]
    state = work_arrays(height, width)
    events = (np.empty(4096, np.int64), np.empty(4096, np.int32), np.empty(4096, np.int8))
    for n in range(n0, n1):
        events, n_ev = _emulate(render, n, spans, eps, steps, sensor, state, events, 0)
        ev_t, ev_q, ev_p = events
        a, b = noise_ptr[n], noise_ptr[n + 1]
        if n_ev == 0 and a == b:
            continue
        t_first, t_final = np.iinfo(np.int64).max, -np.iinfo(np.int64).max
        for e in range(n_ev):
            t_first, t_final = min(t_first, ev_t[e]), max(t_final, ev_t[e])
        for e in range(a, b):
            t_first, t_final = min(t_first, noise_t[e]), max(t_final, noise_t[e])
        bin_width = (t_final - t_first) // n_bins
        if bin_width <= 0:
            continue
        frames = out[n]
        for e in range(n_ev):
            _count(frames, (ev_t[e] - t_first) // bin_width, ev_p[e], ev_q[e])
        for e in range(a, b):
            _count(frames, (noise_t[e] - t_first) // bin_width, noise_p[e], noise_q[e])


@numba.njit(**JIT)
def _count(frames, b, p, q):
    if b < frames.shape[0] and frames[b, p, q] < 255:
        frames[b, p, q] += 1
