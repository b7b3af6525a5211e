"""Event-camera emulation of still images: saccade (N-MNIST), flicker and rotation.

Each encoder renders the image as a DVS would see it over `duration`, in `render_steps` frames,
and runs the pixel model of `snnexp.encoding.dvs` on the log intensity. Images go through in
batches (no per-pixel Python loop). The output is Tonic's events, or frames [T, 2, H, W] binned
as `tonic.transforms.ToFrame(n_time_bins=T)` does.

These encoders convert a whole dataset once (`converts = "images"`): the datamodule calls
`convert` and caches the frames on disk under a key made of `repr(encoder)` (every parameter).
On the CPU the pixel model runs compiled (`dvs_cpu`, same events as the torch reference
`dvs.dvs_pixels`, which runs on any device, e.g. CUDA).
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import ClassVar, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from snnexp.encoding import dvs_cpu
from snnexp.encoding.base import Encoder
from snnexp.encoding.dvs import EventBatch, add_noise, dvs_pixels, from_pixels, noise_events, to_frames
from snnexp.errors import check

CHUNK = 256  # images per conversion batch: part of the result only through the noise stream


def luminance(x: Tensor) -> Tensor:
    """[N, C, H, W] in [0, 1] -> [N, H, W]: grey images as they are, RGB by ITU-R BT.601 weights."""
    if x.shape[1] == 1:
        return x[:, 0]
    check(x.shape[1] == 3, "dataset.in_shape", tuple(x.shape[1:]), "event emulation needs 1 (grey) or 3 (RGB) channels")
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
    return torch.einsum("nchw,c->nhw", x, w)


@dataclass(frozen=True)
class DVSEmulator(Encoder):
    """Shared parameters of the three emulations; subclasses say how the scene moves.

    T: frames per sample. margin_px: black border around the image on the sensor (3 on each
    side: a 28x28 image lands on a 34x34 sensor as in N-MNIST). threshold: mean contrast
    threshold C in log-intensity units, per pixel drawn from N(C, threshold_sigma) (mismatch),
    separately for ON and OFF. eps: the dark level in L = log(eps + I) (a monitor's black is
    not 0). refractory_us: per-pixel dead time after an event. noise_hz: background events per
    pixel per second. render_steps: frames rendered over the duration (the pixel model
    interpolates between them). seed: the sensor's mismatch and the noise.
    """

    T: int
    margin_px: int = 3
    threshold: float = 0.5
    threshold_sigma: float = 0.02
    eps: float = 0.1
    refractory_us: float = 100.0
    noise_hz: float = 0.0
    render_steps: int = 48
    seed: int = 0

    converts: ClassVar[str] = "images"
    input_range: ClassVar[tuple[float, float]] = (0.0, 1.0)  # intensities (dataset.normalize=false)

    def __post_init__(self):
        check(int(self.T) >= 1, "T", self.T, "must be >= 1 time step")
        check(int(self.margin_px) >= 0, "encoding.margin_px", self.margin_px, "must be >= 0")
        check(self.threshold > 0, "encoding.threshold", self.threshold, "must be > 0 (log-intensity units)")
        check(self.threshold_sigma >= 0, "encoding.threshold_sigma", self.threshold_sigma, "must be >= 0")
        check(self.eps > 0, "encoding.eps", self.eps, "must be > 0")
        check(self.refractory_us >= 0, "encoding.refractory_us", self.refractory_us, "must be >= 0 µs")
        check(self.noise_hz >= 0, "encoding.noise_hz", self.noise_hz, "must be >= 0 Hz")
        check(int(self.render_steps) >= 2, "encoding.render_steps", self.render_steps, "must be >= 2")

    # -- what a subclass provides ------------------------------------------------------------
    @property
    def duration(self) -> float:
        """µs from the first to the last rendered frame."""
        raise NotImplementedError

    def render(self, scene: Tensor, times_us: Tensor) -> Iterator[Tensor]:
        """Intensity [N, H, W] seen by the sensor at each time; scene is [N, H, W] on the sensor."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------
    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
        """(2, H, W) of the frames for images of in_shape (C, H, W)."""
        return (2, int(in_shape[-2]) + 2 * self.margin_px, int(in_shape[-1]) + 2 * self.margin_px)

    def thresholds(self, height: int, width: int) -> tuple[Tensor, Tensor]:
        """Per-pixel ON and OFF thresholds [H, W], fixed by `seed` (one sensor for all images)."""
        g = torch.Generator().manual_seed(int(self.seed))  # on the CPU: the same sensor on any device
        c = torch.randn((2, height, width), generator=g) * self.threshold_sigma + self.threshold
        c = c.clamp_(min=0.1 * self.threshold)
        return c[0], c[1]

    def cpu_render(self, scene: Tensor, times_us: Tensor) -> dvs_cpu.Render:
        """How the compiled CPU path renders the scene: by default the frames of `render`, stacked.
        Saccade and flicker render inside the compiled step instead (no [K+1, N, H, W] array)."""
        return dvs_cpu.Render("frames", torch.stack(list(self.render(scene, times_us))).numpy())

    def _setup(self, x: Tensor) -> tuple[Tensor, Tensor, dvs_cpu.Sensor]:
        check(bool(x.amin() >= 0) and bool(x.amax() < math.inf), "images", "NaN, inf or negative pixels",  # NaN fails both
              "event emulation needs finite intensities >= 0 (in [0, 1]; dataset.normalize=false)")
        m = self.margin_px
        scene = F.pad(luminance(x.float()), (m, m, m, m))  # [N, H+2m, W+2m]: the image on the sensor
        times = torch.linspace(0.0, self.duration, int(self.render_steps) + 1, dtype=torch.float64)
        on, off = self.thresholds(scene.shape[-2], scene.shape[-1])
        return scene, times, dvs_cpu.Sensor(on, off, times, float(self.eps), float(self.refractory_us))

    def _compiled(self, device: torch.device, kernel: bool | None) -> bool:
        """The compiled CPU path for CPU tensors when numba is installed, unless kernel=False."""
        use = device.type == "cpu" and dvs_cpu.available() if kernel is None else bool(kernel)
        check(not use or device.type == "cpu", "kernel", kernel, f"the compiled path runs on the CPU, not {device}")
        return use

    def _signal(self, x: Tensor, kernel: bool | None) -> EventBatch:
        """Events of images x [N, C, H, W] without noise, computed where x lies."""
        scene, times, sensor = self._setup(x)
        n, height, width = scene.shape
        if self._compiled(x.device, kernel):
            i, t, p = dvs_cpu.cpu_events(self.cpu_render(scene, times), sensor, n, height, width)
            return from_pixels(i, t, p, n, height, width)
        logs = (torch.log(frame + self.eps) for frame in self.render(scene, times))
        return dvs_pixels(logs, times, sensor.threshold_on, sensor.threshold_off, sensor.refractory_us)

    def events(self, x: Tensor, generator: torch.Generator | None = None, kernel: bool | None = None) -> EventBatch:
        """Events of images x [N, C, H, W] in [0, 1] (t in µs from 0 to the duration), on x's device.

        kernel: None = the compiled path on the CPU (when numba is installed), False = the torch
        reference; both give the same events.
        """
        ev = self._signal(x, kernel)
        if self.noise_hz > 0:
            gen = generator or torch.Generator().manual_seed(int(self.seed) + 1)
            ev = add_noise(ev, float(self.noise_hz), self.duration, gen)
        return ev

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """[N, C, H, W] images -> [T, N, 2, H', W'] float event counts."""
        return to_frames(self.events(x, generator), int(self.T)).transpose(0, 1).float()

    def convert(self, images: np.ndarray, device: str | torch.device = "cpu", kernel: bool | None = None) -> np.ndarray:
        """[M, C, H, W] images -> [M, T, 2, H', W'] uint8 event counts (saturating at 255), in chunks.

        device: where the conversion runs (the datamodule picks CUDA when there is one). On the CPU
        the compiled path renders, emulates and frames in one pass, on worker threads
        that convert a chunk while this one prepares the next; elsewhere the torch reference
        runs there. The noise is drawn on the CPU from `seed`, per chunk, so it is the same anywhere.
        """
        device = torch.device(device)
        gen = torch.Generator().manual_seed(int(self.seed) + 1)
        out = np.zeros((len(images), int(self.T), *self.out_shape(images.shape[1:])), np.uint8)
        compiled = self._compiled(device, kernel)
        with dvs_cpu.Converter() if compiled else contextlib.nullcontext() as converter:
            for i in range(0, len(images), CHUNK):
                x = torch.as_tensor(images[i:i + CHUNK], dtype=torch.float32).to(device)
                if not compiled:
                    out[i:i + CHUNK] = to_frames(self.events(x, gen, kernel=False), int(self.T)).clamp_(max=255).cpu().numpy()
                    continue
                scene, times, sensor = self._setup(x)
                n, height, width = scene.shape
                noise = noise_events(n, height, width, float(self.noise_hz), self.duration, gen) if self.noise_hz > 0 else None
                converter.frames(self.cpu_render(scene, times), sensor, n, height, width, out[i:i + CHUNK], noise)
        return out


def _shift(padded: Tensor, pad: int, h: int, w: int, dx: float, dy: float) -> Tensor:
    """The [N, h, w] view of a camera moved by (dx, dy) pixels over `padded` (the sensor image with
    `pad` black pixels around it): bilinear interpolation of the four integer shifts."""
    ix, iy = math.floor(dx), math.floor(dy)
    fx, fy = dx - ix, dy - iy
    y0, x0 = pad + iy, pad + ix
    rows = padded[:, y0:y0 + h + 1, x0:x0 + w + 1]  # [N, h+1, w+1]
    cols = torch.lerp(rows[:, :, :-1], rows[:, :, 1:], fx)  # [N, h+1, w]
    return torch.lerp(cols[:, :-1], cols[:, 1:], fy)


@dataclass(frozen=True)
class Saccade(DVSEmulator):
    """N-MNIST's recording (Orchard et al. 2015): the camera makes three straight saccades.

    They trace the triangle (0,0) -> (a/2, a) -> (a, 0) -> (0,0) pixels (a = amplitude_px, 7 in
    N-MNIST), centred on the image, each lasting saccade_us (about 100 ms).
    """

    amplitude_px: float = 7.0
    saccade_us: float = 100_000.0

    def __post_init__(self):
        super().__post_init__()
        check(self.amplitude_px > 0, "encoding.amplitude_px", self.amplitude_px, "must be > 0 pixels")
        check(self.saccade_us > 0, "encoding.saccade_us", self.saccade_us, "must be > 0 µs")

    @property
    def duration(self) -> float:
        return 3 * float(self.saccade_us)

    def path(self, times_us: Tensor) -> Tensor:
        """[K, 2] camera offsets (x, y) in pixels at the given times."""
        a = self.amplitude_px
        corners = torch.tensor([[0, 0], [a / 2, a], [a, 0], [0, 0]], dtype=torch.float64)
        corners -= corners[:3].mean(0)  # centred: the image stays in view on average
        s = (times_us / self.saccade_us).clamp(0, 3)
        leg = s.floor().clamp(max=2).long()
        frac = (s - leg).unsqueeze(1)
        return corners[leg] * (1 - frac) + corners[leg + 1] * frac

    def render(self, scene: Tensor, times_us: Tensor) -> Iterator[Tensor]:
        h, w = scene.shape[-2:]
        pad = self._pad()
        padded = F.pad(scene, (pad, pad, pad, pad))
        for dx, dy in self.path(times_us).tolist():
            yield _shift(padded, pad, h, w, dx, dy)

    def _pad(self) -> int:
        return 2 + math.ceil(self.amplitude_px)  # covers the largest offset

    def cpu_render(self, scene: Tensor, times_us: Tensor) -> dvs_cpu.Render:
        return dvs_cpu.shift_render(scene, self._pad(), self.path(times_us).tolist())


@dataclass(frozen=True)
class Flicker(DVSEmulator):
    """"Turn the light off and on": the illumination ramps linearly to dark and back over duration_us."""

    duration_us: float = 300_000.0

    def __post_init__(self):
        super().__post_init__()
        check(self.duration_us > 0, "encoding.duration_us", self.duration_us, "must be > 0 µs")

    @property
    def duration(self) -> float:
        return float(self.duration_us)

    def render(self, scene: Tensor, times_us: Tensor) -> Iterator[Tensor]:
        for scale in self._scales(times_us):
            yield scene * scale

    def _scales(self, times_us: Tensor) -> list[float]:
        return [abs(1.0 - 2.0 * t / self.duration_us) for t in times_us.tolist()]  # 1 -> 0 -> 1

    def cpu_render(self, scene: Tensor, times_us: Tensor) -> dvs_cpu.Render:
        return dvs_cpu.Render("scale", scene.unsqueeze(0).contiguous().numpy(),
                              wx=np.array(self._scales(times_us), np.float32))  # torch's float scalar


@dataclass(frozen=True)
class Rotation(DVSEmulator):
    """The camera rotates about the image centre: 0 -> +angle_deg -> -angle_deg -> 0 (one sine period)."""

    angle_deg: float = 5.0
    duration_us: float = 300_000.0

    def __post_init__(self):
        super().__post_init__()
        check(0 < self.angle_deg <= 45, "encoding.angle_deg", self.angle_deg, "must be in (0, 45] degrees")
        check(self.duration_us > 0, "encoding.duration_us", self.duration_us, "must be > 0 µs")

    @property
    def duration(self) -> float:
        return float(self.duration_us)

    def render(self, scene: Tensor, times_us: Tensor) -> Iterator[Tensor]:
        h, w = scene.shape[-2:]
        channels = scene.unsqueeze(0)  # [1, N, H, W]: the images as channels share one grid (same values, faster)
        for t in times_us.tolist():
            a = math.radians(self.angle_deg) * math.sin(2 * math.pi * t / self.duration_us)
            theta = torch.tensor([[math.cos(a), -math.sin(a) * h / w, 0.0],
                                  [math.sin(a) * w / h, math.cos(a), 0.0]], dtype=scene.dtype, device=scene.device)
            grid = F.affine_grid(theta.unsqueeze(0), [1, 1, h, w], align_corners=False)
            yield F.grid_sample(channels, grid, align_corners=False)[0]
