"""Event plots: a strip of ON/OFF frames of one sample and an event raster (PNG)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_event_frames(frames: np.ndarray, path: Path, title: str = "") -> Path:
    """frames [T, 2, H, W] (channel 0 OFF, 1 ON) -> one panel per time bin: ON red, OFF blue."""
    frames = np.asarray(frames, np.float32)
    if frames.ndim == 3:  # [T, 1, X] (SHD): one row per bin
        frames = frames[:, :, None]
    n = len(frames)
    fig, axes = plt.subplots(1, n, figsize=(1.6 * n, 1.9), squeeze=False)
    scale = max(float(frames.max()), 1.0)
    for t, ax in enumerate(axes[0]):
        on = frames[t, -1] / scale
        off = frames[t, 0] / scale if frames.shape[1] > 1 else np.zeros_like(on)
        rgb = np.stack([on, np.zeros_like(on), off], -1).clip(0, 1)
        ax.imshow(rgb, interpolation="nearest", aspect="auto" if rgb.shape[0] == 1 else "equal")
        ax.set_title(f"bin {t}", fontsize=8)
        ax.axis("off")
    fig.suptitle(title or "event frames (ON red, OFF blue)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_event_raster(events: np.ndarray, path: Path, width: int, title: str = "") -> Path:
    """Tonic events (x, [y,] t, p) -> time (ms) against pixel index y*width + x, ON red, OFF blue."""
    pixel = events["x"] + (events["y"] * width if "y" in events.dtype.names else 0)
    t_ms = events["t"] / 1000.0
    on = events["p"] > 0
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.scatter(t_ms[on], pixel[on], s=0.5, c="tab:red", label=f"ON ({int(on.sum())})", rasterized=True)
    ax.scatter(t_ms[~on], pixel[~on], s=0.5, c="tab:blue", label=f"OFF ({int((~on).sum())})", rasterized=True)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("pixel (y·W + x)")
    ax.set_title(title or f"{len(events)} events", fontsize=9)
    ax.legend(loc="upper right", fontsize=7, markerscale=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_sample_events(events: np.ndarray, frames: np.ndarray, plots: Path, width: int, title: str) -> list[Path]:
    """Both plots of one sample: plots/event_frames.png and plots/event_raster.png."""
    return [plot_event_frames(frames, plots / "event_frames.png", f"{title}: ON red, OFF blue"),
            plot_event_raster(events, plots / "event_raster.png", width, f"{title}: {len(events)} events")]
