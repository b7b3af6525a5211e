"""Weight images: each neuron's incoming weights laid out as the input image, one tile per neuron."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402


def weight_tiles(w: Tensor, in_shape: Sequence[int] | None = None) -> Tensor:
    """Weights -> images [n, H, W], each rescaled to [0, 1] on its own.

    Linear [n, in]: reshaped to in_shape's (H, W) (channels averaged), or to a square when
    in_shape is unknown and `in` is a square number. Conv2d [n, C_in, kH, kW]: the kernels,
    averaged over input channels.
    """
    if w.dim() == 4:
        img = w.mean(1)  # [n, C_in, kH, kW] -> [n, kH, kW]
    else:
        n, d = w.shape
        if in_shape is not None and math.prod(in_shape) == d:
            shape = tuple(in_shape) if len(in_shape) == 3 else (1, *in_shape[-2:]) if len(in_shape) == 2 else (1, 1, d)
            img = w.reshape(n, *shape).mean(1)  # [n, in] -> [n, C, H, W] -> [n, H, W]
        elif math.isqrt(d) ** 2 == d:
            img = w.reshape(n, math.isqrt(d), math.isqrt(d))
        else:
            img = w.reshape(n, 1, d)
    lo = img.flatten(1).min(1).values.view(-1, 1, 1)
    hi = img.flatten(1).max(1).values.view(-1, 1, 1)
    return (img - lo) / (hi - lo).clamp(min=1e-12)


def plot_weights(w: Tensor, out_png: Path, in_shape: Sequence[int] | None = None,
                 labels: Sequence[str] | None = None, max_tiles: int = 400, title: str = "") -> Path:
    """Save a grid of `weight_tiles(w)` (at most `max_tiles`), each titled with its label if given."""
    tiles = weight_tiles(w.detach().float().cpu(), in_shape)[:max_tiles]
    n = tiles.shape[0]
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols + 0.4, 1.1 * rows + 0.6), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(tiles[i].numpy(), cmap="hot", vmin=0, vmax=1, interpolation="nearest")
            if labels is not None:
                ax.set_title(labels[i], fontsize=7, pad=1)
    fig.suptitle(title or f"incoming weights of {n} neurons (each scaled to its own range)", fontsize=9)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
