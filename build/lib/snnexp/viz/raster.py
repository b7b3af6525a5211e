"""Spike rasters: which neuron fired at which time step, for one sample."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from snnexp.models.base import SpikingModel  # noqa: E402


@torch.no_grad()
def record_spikes(model: SpikingModel, x_seq: Tensor) -> dict[str, Tensor]:
    """Run x_seq [T, 1, ...] and return {layer name: spikes [T, neurons]} for every spiking layer."""
    records: dict[str, list[Tensor]] = {name: [] for name in model.spiking_layers()}
    handles = []
    for name, layer in model.spiking_layers().items():
        def hook(module, inputs, s, name=name):
            records[name].append(s.detach().cpu())
        handles.append(layer.register_forward_hook(hook))
    try:
        model(x_seq)
    finally:
        for h in handles:
            h.remove()
    # single-step mode: T outputs of [1, ...]; multi-step: one output of [T, 1, ...]
    out = {}
    for name, chunks in records.items():
        s = torch.stack(chunks) if model.step_mode == "s" else chunks[0]
        out[name] = s.flatten(1)  # [T, 1, ...] -> [T, neurons]
    return out


def plot_raster(layers: dict[str, Tensor], out_png: Path, title: str = "", max_neurons: int = 512) -> Path:
    """One panel per layer (input first if given): a dot per spike, time on x, neuron on y."""
    fig, axes = plt.subplots(len(layers), 1, figsize=(7, 1.6 + 1.4 * len(layers)), squeeze=False)
    for ax, (name, s) in zip(axes[:, 0], layers.items()):
        s = s[:, :max_neurons]
        t, n = torch.nonzero(s, as_tuple=True)
        ax.scatter(t.numpy(), n.numpy(), s=4, marker="|", color="k")
        ax.set_xlim(-0.5, s.shape[0] - 0.5)
        ax.set_ylim(-0.5, s.shape[1] - 0.5)
        ax.set_ylabel(f"{name}\n({s.shape[1]} shown)", fontsize=8)
        ax.text(1.0, 1.02, f"rate {float(s.mean()):.3f}", transform=ax.transAxes, ha="right", fontsize=7)
    axes[-1, 0].set_xlabel("time step")
    if title:
        axes[0, 0].set_title(title, fontsize=9)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
