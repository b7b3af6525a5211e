"""The DVS pixel model on the CPU, compiled (numba): the same events as `dvs.dvs_pixels`, several times faster.

`dvs.dvs_pixels` is the reference (torch, any device). This path gives the same events bit for bit
(tests/encoding/test_dvs_cpu.py, tests/encoding/test_emulation_streams.py) because it does the
same float32 operations in the same order (`dvs_numba`). It is faster because:
- one image at a time goes through all render steps, rendering fused with the pixel model and
  the framing: its state stays in the core's cache and nothing is materialised per step;
- a pixel's log intensity is needed only when it may cross a threshold: each pixel keeps the
  interval of intensities that cannot move it by C from its reference (with a margin far above
  float32 rounding); only pixels outside it are logged (with the MKL log torch.log uses, so the
  same values) and run through the exact model. Pixels that never see light are skipped;
- the candidates are found LANES pixels per vector compare, and the exact model's divisions run
  vectorised over all of them before their events are written one by one;
- blocks of images are converted by worker threads (the compiled code releases the GIL), each
  running MKL sequentially (`Converter`).
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from collections import deque
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

try:  # the compiled steps; without numba the emulations run the torch reference (same events)
    from snnexp.encoding import dvs_numba as nb, numba_ops
except ImportError:
    nb = numba_ops = None

KINDS = ("shift", "scale", "frames")


def available() -> bool:
    """Whether the compiled path can run: numba is installed and this torch's CPU log is MKL's
    (else the emulations use the torch reference, with the same events)."""
    return nb is not None and numba_ops.HAS_MKL_LOG


@dataclass(frozen=True)
class Render:
    """How the compiled step renders render step k of image n (`dvs_numba.render_frame`).

    shift: src [1, N, H + 2*pad, W + 2*pad] (the padded scene), pixel (y, x) seen at integer
    offset (ix[k] + x, iy[k] + y) plus the bilinear weights (wx[k], wy[k]) (saccade).
    scale: src [1, N, H, W] times wx[k] (flicker). frames: src [K+1, N, H, W] as rendered (any emulation).
    """

    kind: str
    src: np.ndarray  # float32, 4-d, C-contiguous
    ix: np.ndarray | None = None  # int64 [K+1]
    iy: np.ndarray | None = None
    wx: np.ndarray | None = None  # float32 [K+1]
    wy: np.ndarray | None = None

    def args(self, steps: int) -> tuple:
        """(kind, src, ix, iy, wx, wy) as `dvs_numba.render_frame` takes them."""
        zeros_i, zeros_f = np.zeros(steps, np.int64), np.zeros(steps, np.float32)
        pick = lambda a, z: z if a is None else np.ascontiguousarray(a, z.dtype)  # noqa: E731
        return (KINDS.index(self.kind), np.ascontiguousarray(self.src, np.float32), pick(self.ix, zeros_i),
                pick(self.iy, zeros_i), pick(self.wx, zeros_f), pick(self.wy, zeros_f))

    def images(self, a: int, b: int) -> "Render":
        """The same render of images a..b-1 only (src a view of theirs; a copy for `frames`, K > 1)."""
        return replace(self, src=np.ascontiguousarray(self.src[:, a:b]))

    def lit(self, height: int, width: int) -> np.ndarray:
        """[N, H, W] bool: the sensor pixels that see a non-black scene in some render step (the others
        stay at eps, the level they started from, and emit nothing)."""
        if self.kind == "frames":
            return (self.src != 0).any(0)  # also NaN
        if self.kind == "scale":
            return self.src[0] != 0
        # shift: pixel (y, x) reads rows iy + y + {0, 1} and columns ix + x + {0, 1} for every offset
        y0, x0 = int(self.iy.min()), int(self.ix.min())
        return nb.lit_shifted(self.src[0], y0, x0, int(self.iy.max()) - y0 + 2, int(self.ix.max()) - x0 + 2,
                              height, width)


@dataclass(frozen=True)
class Sensor:
    """What the pixel model needs besides the images: thresholds [H, W], times [K+1] (µs, float64)."""

    threshold_on: Tensor
    threshold_off: Tensor
    times_us: Tensor
    eps: float
    refractory_us: float


BLOCK = 16  # images per task: small, so that the threads finish a chunk together


def _sensor_inputs(sensor: Sensor) -> tuple:
    """What the compiled steps take from the sensor: (eps, steps (t0, dt, t_end), per-pixel thresholds)."""
    on = sensor.threshold_on.flatten().float().contiguous()
    off = sensor.threshold_off.flatten().float().contiguous()
    inv_on, inv_off = (1.0 / on).numpy(), (-1.0 / off).numpy()  # as dvs_pixels: reciprocal * (+-1)
    k_on, k_off = nb.guard_factors(on.numpy(), off.numpy())
    times = sensor.times_us.tolist()
    # per render step k >= 1, the Python floats dvs_pixels uses, as its float32 ops round them
    t0 = np.array([0.0] + times[:-1], np.float32)
    dt = np.array([0.0] + [b - a for a, b in zip(times[:-1], times[1:])], np.float32)
    t_end = np.array([0.0] + [a + (b - a) for a, b in zip(times[:-1], times[1:])], np.float32)
    return (np.float32(sensor.eps), (t0, dt, t_end),
            (on.numpy(), off.numpy(), inv_on, inv_off, k_on, k_off, np.float32(sensor.refractory_us)))


def _block_args(render: Render, a: int, b: int, height: int, width: int, sensor_inputs: tuple) -> tuple:
    """The leading arguments of the compiled range functions for images a..b-1 of `render`:
    (render, n0, n1, spans, eps, steps, sensor), the images numbered from 0 within the block."""
    eps, steps, sensor_args = sensor_inputs
    block = render.images(a, b)
    return block.args(len(steps[0])), 0, b - a, nb.row_spans(block.lit(height, width)), eps, steps, sensor_args


class Converter:
    """Runs the compiled steps on `threads` worker threads (they release the GIL), in blocks of BLOCK images.

    `frames` queues a chunk's blocks and returns, so the caller prepares the next chunk while the
    threads work; a free thread takes the next block, so images with many events leave no thread
    idle. At most two chunks are in flight. Leaving the `with` block waits for all of them and
    raises what a block raised. Each thread runs MKL sequentially (`numba_ops.sequential_mkl`).
    """

    def __init__(self, threads: int | None = None):
        self._torch_threads = torch.get_num_threads()
        self._pool = ThreadPoolExecutor(int(threads or self._torch_threads), initializer=numba_ops.sequential_mkl)
        self._chunks: deque[list] = deque()

    def __enter__(self) -> "Converter":
        # The caller's torch ops (preparing the next chunk) run on its own thread meanwhile: an OpenMP
        # team would spin after each of them on the cores the converting threads use.
        torch.set_num_threads(1)
        return self

    def __exit__(self, *exc) -> None:
        try:
            while self._chunks and exc[0] is None:
                self._wait()
        finally:
            self._pool.shutdown(cancel_futures=True)
            torch.set_num_threads(self._torch_threads)

    def _wait(self) -> list:
        return [task.result() for task in self._chunks.popleft()]

    def _blocks(self, work, n: int) -> list:
        return [self._pool.submit(work, a, min(a + BLOCK, n)) for a in range(0, n, BLOCK)]

    def frames(self, render: Render, sensor: Sensor, n: int, height: int, width: int, out: np.ndarray,
               noise: tuple[Tensor, Tensor, Tensor] | None = None) -> None:
        """Queue out [n, T, 2, H, W] uint8, zeroed, += the frames of n images (+ noise events (pixel i, t, p)),
        as dvs.to_frames bins them, saturating at 255. `out` is filled when the Converter is left."""
        if len(self._chunks) >= 2:
            self._wait()
        sensor_inputs = _sensor_inputs(sensor)
        pixels = height * width
        flat = out.reshape(n, out.shape[1], 2, pixels)  # a view: out is C-contiguous
        i, t, p = (a.cpu().numpy() for a in noise) if noise is not None else (np.zeros(0, np.int64),) * 3
        order = np.argsort(i // pixels, kind="stable")  # noise grouped by image (order within does not matter)
        ptr = np.searchsorted((i // pixels)[order], np.arange(n + 1)).astype(np.int64)
        noise_t, noise_q, noise_p = t[order].astype(np.int64), (i[order] % pixels).astype(np.int32), p[order].astype(np.int8)

        def work(a: int, b: int) -> None:
            nb.frames_range(*_block_args(render, a, b, height, width, sensor_inputs),
                            ptr[a:b + 1], noise_t, noise_q, noise_p, flat[a:b])

        self._chunks.append(self._blocks(work, n))

    def events(self, render: Render, sensor: Sensor, n: int, height: int, width: int) -> tuple[Tensor, Tensor, Tensor]:
        """Events of n images, sample-major, in emission order within a sample: (pixel i = (n*H + y)*W + x, t µs, p)."""
        sensor_inputs = _sensor_inputs(sensor)

        def work(a: int, b: int):
            t, image, q, p = nb.events_range(*_block_args(render, a, b, height, width, sensor_inputs))
            return (image + a) * (height * width) + q, t, p

        parts = [task.result() for task in self._blocks(work, n)]
        i, t, p = (torch.from_numpy(np.concatenate([part[j] for part in parts])) for j in range(3))
        return i, t, p.long()


def cpu_events(render: Render, sensor: Sensor, n: int, height: int, width: int,
               threads: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """`Converter.events` on a converter of its own."""
    with Converter(threads) as converter:
        return converter.events(render, sensor, n, height, width)


def shift_render(scene: Tensor, pad: int, offsets: list[tuple[float, float]]) -> Render:
    """`Render` of a camera moved by offsets (dx, dy) pixels over scene [N, H, W] padded by `pad` (emulation._shift)."""
    n, height, width = scene.shape
    padded = np.zeros((1, n, height + 2 * pad, width + 2 * pad), np.float32)  # calloc: untouched zeros cost nothing
    padded[0, :, pad:pad + height, pad:pad + width] = scene.numpy()
    ix, iy = [math.floor(dx) for dx, _ in offsets], [math.floor(dy) for _, dy in offsets]
    return Render("shift", padded,
                  ix=np.array(ix) + pad, iy=np.array(iy) + pad,
                  wx=np.array([dx - a for (dx, _), a in zip(offsets, ix)], np.float32),  # torch.lerp's float weight
                  wy=np.array([dy - b for (_, dy), b in zip(offsets, iy)], np.float32))
