"""Compiled (numba) pixel model of `snnexp.encoding.dvs_cpu`; imported only when numba is.

Every float32 operation mirrors `snnexp.encoding.dvs.dvs_pixels` (the torch reference) in the same
order, so the events are the same bit for bit: torch's lerp is a fused multiply-add (`_fma`),
torch turns `R / step` into `reciprocal(step) * R`, torch.maximum / minimum / clamp keep NaN, so
these do too, and the log is the one torch.log calls on the CPU (MKL's vector log, `log_f32`).
One call converts a range of images, one image at a time: its state (~30 KB) stays in the
core's cache through all render steps.
"""
from __future__ import annotations

import ctypes
import math
import os

import numba
import numpy as np
import torch
from llvmlite import binding, ir
from numba import types, uintp
from numba.core import cgutils
from numba.extending import intrinsic

SHIFT, SCALE, FRAMES = 0, 1, 2  # how a frame is rendered (see `render_row`)
F32 = np.float32
JIT = dict(nogil=True, cache=True, error_model="numpy")  # numpy error model: x / 0 gives inf or nan, as torch
MAX_LOG = 50.0  # beyond |L_ref| = 50 (intensity + eps outside e^-50 .. e^50) every step is checked exactly
LO, HI, PREV = 0, 1, 2  # guard[:, q] = (lo, hi, x_prev), see `guard_factors`
VML_MODE = 0x2 | 0x140000 | 0x100  # VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE: what ATen's vml::vlog passes


def _torch_cpu() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
    except OSError:
        return None


def _register_mkl_log(lib: ctypes.CDLL | None) -> bool:
    """Make MKL's Fortran `vmsln` (in torch's libtorch_cpu, which torch.log calls for float32 on
    the CPU) callable from compiled code. False when this torch has none (no MKL)."""
    try:
        binding.add_symbol("VMSLN_", ctypes.cast(lib.VMSLN_, ctypes.c_void_p).value)
    except AttributeError:  # also lib None
        return False
    return True


_TORCH_CPU = _torch_cpu()
HAS_MKL_LOG = _register_mkl_log(_TORCH_CPU)


def sequential_mkl() -> None:
    """MKL runs on the calling thread only, from now on (a worker thread's own setting).

    The compiled steps call MKL's log from several threads at once, each on a few hundred values.
    At torch's thread count every such call starts an OpenMP team of its own, and on 2 cores the
    teams of two converting threads spin against each other (measured: 3x the CPU time per
    image). The setting is per thread (mkl_set_num_threads_local), so torch's calls keep theirs.
    """
    set_local = getattr(_TORCH_CPU, "MKL_Set_Num_Threads_Local", None)
    if set_local is not None:
        set_local.argtypes, set_local.restype = [ctypes.c_int], ctypes.c_int
        set_local(1)


@intrinsic
def _vmsln(typingctx, n, values, mode):
    """MKL vmsLn(n[0], values, values, mode[0]) in place, through its Fortran entry (arguments by reference)."""
    sig = types.void(n, values, mode)

    def codegen(context, builder, signature, args):
        n_ptr, v_ptr, m_ptr = (context.make_array(t)(context, builder, a).data for t, a in zip(signature.args, args))
        fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(32).as_pointer(), ir.FloatType().as_pointer(),
                                               ir.FloatType().as_pointer(), ir.IntType(64).as_pointer()])
        builder.call(cgutils.get_or_insert_function(builder.module, fnty, "VMSLN_"), [n_ptr, v_ptr, v_ptr, m_ptr])
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(**JIT)
def log_f32(values, count, scratch):
    """values[:count] = log(values[:count]) in place, exactly as torch.log (MKL, VML_HA).
    scratch: int32 [1] and int64 [1] arrays for the by-reference arguments (n, mode)."""
    n, mode = scratch
    n[0] = count
    mode[0] = VML_MODE
    _vmsln(n, values, mode)


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c rounded once (float32), as torch's vectorised lerp computes it."""
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        flt = ir.FloatType()
        fn = builder.module.declare_intrinsic("llvm.fma", [flt], ir.FunctionType(flt, [flt, flt, flt]))
        return builder.call(fn, args)

    return sig, codegen


def _unary_f32(name: str):
    """An LLVM float32 intrinsic (floor, ceil, rint, exp) as a numba function: one instruction or
    libm call, where np.floor & co. on a scalar go through the ufunc machinery."""

    @intrinsic
    def op(typingctx, x):
        sig = types.float32(types.float32)

        def codegen(context, builder, signature, args):
            flt = ir.FloatType()
            return builder.call(builder.module.declare_intrinsic(f"llvm.{name}", [flt], ir.FunctionType(flt, [flt])), args)

        return sig, codegen

    return op


_floor, _ceil, _rint, _exp = (_unary_f32(name) for name in ("floor", "ceil", "rint", "exp"))


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


@numba.njit(inline="always", **JIT)
def render_row(kind, src, ix, iy, wx, wy, k, n, y, x0, x1, eps, row):
    """row[x] = intensity + eps of pixels x0..x1-1 of sensor row y of image n in render step k
    (torch: frame + eps).

    SHIFT (saccade): the camera view of src[0, n] (the padded scene) at integer offset
    (ix[k], iy[k]) plus bilinear weights (wx[k], wy[k]): lerp along x in two rows, then along y
    (emulation._shift). SCALE (flicker): src[0, n] * wx[k]. FRAMES: src[k, n], rendered by torch.
    """
    x0, x1 = uintp(x0), uintp(x1)  # unsigned indices: numba checks signed ones for wraparound, which stops vectorising
    if kind == SHIFT:
        r, c = iy[k] + y, ix[k]
        gx, from_end_x = _lerp_weight(wx[k])
        gy, from_end_y = _lerp_weight(wy[k])
        above, below = src[0, n, r], src[0, n, r + 1]
        for x in range(x0, x1):
            i = uintp(c + x)
            a0, a1, b0, b1 = above[i], above[i + uintp(1)], below[i], below[i + uintp(1)]
            top = _fma(gx, a1 - a0, a1 if from_end_x else a0)
            bottom = _fma(gx, b1 - b0, b1 if from_end_x else b0)
            row[x] = _fma(gy, bottom - top, bottom if from_end_y else top) + eps
    elif kind == SCALE:
        scale, line = wx[k], src[0, n, y]
        for x in range(x0, x1):
            row[x] = line[x] * scale + eps
    else:
        line = src[k, n, y]
        for x in range(x0, x1):
            row[x] = line[x] + eps


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
def _set_guard(lo, hi, q, r, k_on, k_off):
    if abs(r) <= F32(MAX_LOG):
        e = _exp(r)
        lo[q] = e * k_off
        hi[q] = e * k_on
    else:  # an empty interval: always checked
        lo[q] = F32(np.inf)
        hi[q] = F32(-np.inf)


@numba.njit(**JIT)
def emulate_image(render, n, spans, eps, steps, sensor, state, events):
    """The events of image n, appended to `events` = (t, pixel q, p, count) and returned (grown as needed).

    render: (kind, src, ix, iy, wx, wy) as `render_row` takes them. spans [N, H, 2]: per sensor row
    the pixels that ever see light (the others stay at eps, the level they start from). steps:
    (t0, dt, t_end) float32 [K+1] per render step k >= 1, as dvs_pixels rounds them. sensor:
    (c_on, c_off, inv_on, inv_off, k_on, k_off) per pixel [H*W] and the refractory period (float32).
    state: per-pixel work arrays reused from image to image (`work_arrays`).
    """
    kind, src, ix, iy, wx, wy = render
    c_on, c_off, inv_on, inv_off, k_on, k_off, refractory = sensor
    t0s, dts, t_ends = steps
    ref, t_last, guard, cand_q, cand_x, row, scratch = state
    ev_t, ev_q, ev_p, n_ev = events
    height, width = spans.shape[1], row.shape[0]
    lo, hi, x_prev = guard[LO], guard[HI], guard[PREV]
    one = F32(1.0)
    # render step 0: the reference levels L_0 = log(frame + eps), torch.log's own rounding
    for y in range(height):
        render_row(kind, src, ix, iy, wx, wy, 0, n, y, 0, width, eps, row)
        for x in range(width):
            ref[y * width + x] = row[x]
            x_prev[y * width + x] = row[x]
    log_f32(ref, height * width, scratch)
    for q in range(height * width):
        t_last[q] = F32(-1e12)
        _set_guard(lo, hi, q, ref[q], k_on[q], k_off[q])
    for k in range(1, len(t0s)):
        # the pixels that may cross: intensity + eps outside (lo, hi); the previous and current values logged
        count = 0
        for y in range(height):
            x0, x1 = uintp(spans[n, y, 0]), uintp(spans[n, y, 1])
            if x0 >= x1:
                continue
            render_row(kind, src, ix, iy, wx, wy, k, n, y, x0, x1, eps, row)
            base, inside = uintp(y * width), 0
            for x in range(x0, x1):  # no branch, so it vectorises: most rows have no candidate
                q = base + x
                inside += (lo[q] < row[x]) & (row[x] < hi[q])  # False for NaN
            if inside < x1 - x0:
                for x in range(x0, x1):
                    v = row[x]
                    if not (lo[base + x] < v < hi[base + x]):
                        cand_q[count] = base + x
                        cand_x[2 * count] = x_prev[base + x]
                        cand_x[2 * count + 1] = v
                        count += 1
            for x in range(x0, x1):
                x_prev[base + x] = row[x]
        if count == 0:
            continue
        log_f32(cand_x, 2 * count, scratch)
        t0, dt, t_end = t0s[k], dts[k], t_ends[k]
        for i in range(count):  # dvs_pixels' update for these pixels, step by step the same float32 operations
            q, j = uintp(cand_q[i]), uintp(2 * i)
            prev, cur, r = cand_x[j], cand_x[j + uintp(1)], ref[q]
            diff = cur - r
            m = _max_nan(_floor(diff * inv_on[q]), _floor(diff * inv_off[q]))
            if m == 0:  # False for NaN, as torch's nonzero
                continue
            up = diff > 0
            cs = c_on[q] if up else -c_off[q]
            slope = (cur - prev) / dt
            start = t0 + (r - prev) / slope
            step = cs / slope
            j1 = _max_nan(_ceil((t_last[q] + refractory - start) / step), one)
            every = _max_nan(_ceil((one / step) * refractory), one) if refractory > 0 else one
            accepted = 0
            if j1 <= m:
                a = _floor((m - j1) / every) + one
                accepted = int(a) if a == a else 0
            if n_ev + accepted > len(ev_t):
                ev_t, ev_q, ev_p = _grow(ev_t, ev_q, ev_p, n_ev, n_ev + accepted)
            for rank in range(accepted):
                t = start + (j1 + F32(rank) * every) * step
                ev_t[n_ev] = np.int64(_rint(_min_nan(t, t_end)))
                ev_q[n_ev] = q
                ev_p[n_ev] = 1 if up else 0
                n_ev += 1
            if accepted > 0:
                t_last[q] = start + (j1 + F32(accepted - 1) * every) * step
            r = r + m * cs
            ref[q] = r
            _set_guard(lo, hi, q, r, k_on[q], k_off[q])
    return ev_t, ev_q, ev_p, n_ev


@numba.njit(**JIT)
def _grow(ev_t, ev_q, ev_p, n_ev, need):
    size = max(2 * len(ev_t), need)
    t, q, p = np.empty(size, np.int64), np.empty(size, np.int32), np.empty(size, np.int8)
    t[:n_ev], q[:n_ev], p[:n_ev] = ev_t[:n_ev], ev_q[:n_ev], ev_p[:n_ev]
    return t, q, p


@numba.njit(**JIT)
def work_arrays(height, width):
    """Per-pixel state of one image (ref, t_last, guard, candidates, row, log scratch), reused."""
    pixels = height * width
    return (np.empty(pixels, np.float32), np.empty(pixels, np.float32), np.empty((3, pixels), np.float32),
            np.empty(pixels, np.int32), np.empty(2 * pixels, np.float32), np.empty(width, np.float32),
            (np.empty(1, np.int32), np.empty(1, np.int64)))


@numba.njit(**JIT)
def events_range(render, n0, n1, spans, eps, steps, sensor):
    """Events of images n0..n1-1, image by image: (t [E], image [E], pixel q [E], p [E])."""
    height = spans.shape[1]
    width = sensor[0].shape[0] // height
    state = work_arrays(height, width)
    image = np.empty(4096, np.int64)
    events = (np.empty(4096, np.int64), np.empty(4096, np.int32), np.empty(4096, np.int8), 0)
    for n in range(n0, n1):
        start = events[3]
        events = emulate_image(render, n, spans, eps, steps, sensor, state, events)
        if len(image) < events[3]:
            grown = np.empty(len(events[0]), np.int64)
            grown[:start] = image[:start]
            image = grown
        image[start:events[3]] = n
    count = events[3]
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
    events = (np.empty(4096, np.int64), np.empty(4096, np.int32), np.empty(4096, np.int8), 0)
    for n in range(n0, n1):
        events = emulate_image(render, n, spans, eps, steps, sensor, state, (events[0], events[1], events[2], 0))
        ev_t, ev_q, ev_p, n_ev = events
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


@numba.njit(inline="always", **JIT)
def _count(frames, b, p, q):
    if b < frames.shape[0] and frames[b, p, q] < 255:
        frames[b, p, q] += 1
