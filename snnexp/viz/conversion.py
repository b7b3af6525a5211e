"""ANN->SNN conversion results: accuracy and SynOps against time steps, as a PNG and a markdown table.

A curve is {T: (accuracy, SynOps per sample)}; several curves (e.g. calibrated and uncalibrated)
share one figure and one table, each under its label.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

Curve = dict[int, tuple[float, float]]


def plot_acc_vs_T(ann_acc: float, curves: dict[str, Curve], out_png: Path, title: str = "") -> Path:
    """Left: test accuracy per T (log2 axis), the ANN's as a dashed line; right: SynOps per sample per T."""
    fig, (ax, ax_ops) = plt.subplots(1, 2, figsize=(9, 3.6))
    Ts = sorted({t for c in curves.values() for t in c})
    for label, curve in curves.items():
        ts = sorted(curve)
        ax.plot(ts, [curve[t][0] for t in ts], marker="o", label=label)
        ax_ops.plot(ts, [curve[t][1] for t in ts], marker="o", label=label)
    ax.axhline(ann_acc, color="k", ls="--", lw=1, label=f"ANN ({ann_acc:.4f})")
    for a in (ax, ax_ops):
        a.set_xscale("log", base=2)
        a.set_xticks(Ts, [str(t) for t in Ts])
        a.set_xlabel("time steps T")
        a.grid(alpha=0.3)
    ax.set_ylabel("test accuracy")
    ax.legend(loc="lower right", fontsize=7)
    ax_ops.set_yscale("log")
    ax_ops.set_ylabel("SynOps per sample")
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def write_table(ann_acc: float, curves: dict[str, Curve], out_md: Path, settings: str = "",
                reference: str | None = None) -> Path:
    """A markdown table: the ANN, then each curve's SNN at each T with accuracy, error, gap to the ANN
    (points) and SynOps per sample. `reference`: a line naming a paper's result (a preset's), if any."""
    lines = ["# ANN->SNN conversion", ""]
    if settings:
        lines += [f"Settings: {settings}", ""]
    lines += ["| network | T | accuracy | error % | SNN - ANN (points) | SynOps/sample |",
              "|---|---:|---:|---:|---:|---:|",
              f"| ANN | - | {ann_acc:.4f} | {100 * (1 - ann_acc):.2f} | - | - |"]
    for label, curve in curves.items():
        for t in sorted(curve):
            a, ops = curve[t]
            lines.append(f"| {label} | {t} | {a:.4f} | {100 * (1 - a):.2f} | {100 * (a - ann_acc):+.2f} | {ops:.4g} |")
    lines.append("")
    if reference:
        lines += [f"Reference: {reference}.", ""]
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text("\n".join(lines))
    return out_md
