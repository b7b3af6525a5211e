"""ANN->SNN conversion results: accuracy against time steps, as a PNG and a markdown table."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Rueckauer et al. 2017 (Front. Neurosci. 11:682), Table 1, MNIST: no loss from conversion.
PAPER_MNIST = "Rueckauer et al. 2017, MNIST: ANN 0.56 % error, SNN 0.56 % error"


def plot_acc_vs_T(ann_acc: float, snn_acc: dict[int, float], out_png: Path, title: str = "") -> Path:
    """SNN test accuracy per number of time steps T (log2 axis), the ANN's as a dashed line."""
    Ts = sorted(snn_acc)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(Ts, [snn_acc[t] for t in Ts], marker="o", label="SNN")
    ax.axhline(ann_acc, color="k", ls="--", lw=1, label=f"ANN ({ann_acc:.4f})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(Ts, [str(t) for t in Ts])
    ax.set_xlabel("time steps T")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def write_table(ann_acc: float, snn_acc: dict[int, float], out_md: Path, settings: str = "") -> Path:
    """A markdown table: ANN, then the SNN at each T, with accuracy, error and gap to the ANN (points)."""
    lines = ["# ANN->SNN conversion", ""]
    if settings:
        lines += [f"Settings: {settings}", ""]
    lines += ["| network | T | accuracy | error % | SNN - ANN (points) |", "|---|---:|---:|---:|---:|",
              f"| ANN | - | {ann_acc:.4f} | {100 * (1 - ann_acc):.2f} | - |"]
    for t in sorted(snn_acc):
        a = snn_acc[t]
        lines.append(f"| SNN | {t} | {a:.4f} | {100 * (1 - a):.2f} | {100 * (a - ann_acc):+.2f} |")
    lines += ["", f"Reference: {PAPER_MNIST}.", ""]
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text("\n".join(lines))
    return out_md
