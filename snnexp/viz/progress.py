"""An unsupervised STDP run's progress (snnexp.learners.progress): accuracy, winners and theta over
the images seen, and each neuron's wins and theta at the end."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402


def plot_progress(rows: list[dict[str, float]], out_png: Path) -> Path:
    """Three panels against images seen: validation accuracy; neurons that ever won / won since the
    last row; theta's quantiles and maximum (keys as `Progress.record` writes them)."""
    images = [r["images"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    axes[0].plot(images, [r["val_acc"] for r in rows], marker="o", ms=3)
    axes[0].set_ylabel("validation accuracy")
    for key in ("winners_ever", "winners_recent"):
        axes[1].plot(images, [r[key] for r in rows], marker="o", ms=3, label=key.replace("_", " "))
    axes[1].set_ylabel("neurons")
    for key in ("theta_p10", "theta_p50", "theta_p90", "theta_max"):
        if key in rows[0]:
            axes[2].plot(images, [r[key] for r in rows], marker="o", ms=3, label=key.replace("theta_", ""))
    axes[2].set_ylabel("theta (mV)")
    for ax in axes:
        ax.set_xlabel("training images seen")
        ax.grid(alpha=0.3)
        if len(ax.lines) > 1:
            ax.legend()
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def plot_neurons(wins: Tensor, theta: Tensor | None, out_png: Path) -> Path:
    """Per neuron, sorted by wins: the training images it won, and (right) the histogram of theta."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    ordered = wins.sort(descending=True).values
    axes[0].bar(range(len(ordered)), ordered.tolist(), width=1.0)
    axes[0].set_xlabel("neurons, most wins first")
    axes[0].set_ylabel("training images won")
    axes[0].set_title(f"{int((wins > 0).sum())} of {len(wins)} neurons ever won")
    if theta is not None:
        axes[1].hist(theta.float().numpy(), bins=40)
        axes[1].set_xlabel("theta (mV) at the end of training")
        axes[1].set_ylabel("neurons")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
