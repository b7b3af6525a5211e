"""Training curves from the run's metrics.csv."""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers
import matplotlib.pyplot as plt  # noqa: E402


def read_epoch_metrics(path: Path) -> dict[str, dict[int, float]]:
    """metrics.csv (one row per logging call) -> {metric: {epoch: value}}."""
    table: dict[str, dict[int, float]] = defaultdict(dict)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if not row.get("epoch"):
                continue
            epoch = int(float(row["epoch"]))
            for key, value in row.items():
                if key in ("epoch", "step") or value in ("", None):
                    continue
                table[key][epoch] = float(value)
    return dict(table)


def plot_curves(metrics_csv: Path, out_png: Path) -> Path:
    """Loss and accuracy per epoch, train vs val, side by side."""
    table = read_epoch_metrics(metrics_csv)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, what in zip(axes, ("loss", "acc")):
        for stage in ("train", "val"):
            series = table.get(f"{stage}/{what}", {})
            if series:
                epochs = sorted(series)
                ax.plot([e + 1 for e in epochs], [series[e] for e in epochs], marker="o", ms=3, label=stage)
        test = table.get(f"test/{what}")
        if test:
            ax.axhline(next(iter(test.values())), color="k", ls="--", lw=1, label="test")
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
