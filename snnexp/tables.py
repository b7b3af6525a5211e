"""Paper tables from run dirs: collect results.json files, group by the swept keys, mean ± std over seeds."""
from __future__ import annotations

import csv
import fnmatch
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from snnexp.status import failure, read_results

IGNORED_KEYS = {"seed", "resume"}  # never a grouping key: seeds are what we average over
# Named column sets for --metrics (a name stands for its list; shell-style globs match results keys).
METRIC_SETS = {
    "neurobench": ["test/acc", "test/activation_sparsity", "test/synops/ac", "test/synops/mac", "test/energy_nj",
                   "model/footprint_bytes", "model/connection_sparsity"],
    "nir": ["deploy/nir/float/acc", "deploy/nir/*/spike_agreement", "deploy/nir/*/acc"],
}


@dataclass
class Run:
    path: Path
    overrides: dict[str, str]
    results: dict[str, Any]


@dataclass
class Row:
    group: dict[str, str]
    metrics: dict[str, list[float]] = field(default_factory=dict)
    seeds: list[str] = field(default_factory=list)
    paper: dict[str, Any] | None = None
    failed: int = 0


def collect(dirs: list[Path]) -> list[Run]:
    """Every results.json under `dirs` (a run dir, a multirun dir, or a folder of them)."""
    runs = []
    for d in dirs:
        paths = [d] if d.is_file() else sorted(d.glob("**/results.json"))
        for path in paths:
            results = read_results(path)  # an unreadable one counts as a failed run, named
            overrides = {}
            for item in results.get("overrides") or _hydra_overrides(path.parent):
                key, _, value = item.lstrip("+~").partition("=")
                if not key.startswith("hydra"):
                    overrides[key] = value
            runs.append(Run(path.parent, overrides, results))
    if not runs:
        raise FileNotFoundError(f"no results.json under {', '.join(map(str, dirs))}")
    return runs


def expand_metrics(names: list[str], runs: list[Run]) -> list[str]:
    """Column names: a METRIC_SETS name becomes its list, a glob (deploy/nir/*/acc) the keys it matches
    in the runs' results (sorted), anything else stays as it is."""
    keys = sorted({k for run in runs for k in run.results})
    out: list[str] = []
    for name in names:
        for item in METRIC_SETS.get(name, [name]):
            matched = sorted(fnmatch.filter(keys, item)) if any(c in item for c in "*?[") else [item]
            out += [m for m in matched if m not in out]
    return out
def _hydra_overrides(run_dir: Path) -> list[str]:
    """The run's command-line overrides from Hydra's .hydra/overrides.yaml (when results.json lacks them)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    return [str(o) for o in OmegaConf.load(path)]


def swept_keys(runs: list[Run]) -> list[str]:
    """Override keys whose values differ between runs (seed excluded), in first-seen order."""
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.overrides if k not in keys and k not in IGNORED_KEYS]
    return [k for k in keys if len({run.overrides.get(k) for run in runs}) > 1]


def group(runs: list[Run], metrics: list[str], keys: list[str] | None = None) -> list[Row]:
    """One row per combination of the swept keys; each metric's values over seeds."""
    keys = swept_keys(runs) if keys is None else keys
    rows: dict[tuple, Row] = {}
    for run in runs:
        ident = tuple(run.overrides.get(k, "(default)") for k in keys)
        row = rows.setdefault(ident, Row(dict(zip(keys, ident))))
        if failure(run.results):  # an error, unreadable, or never finished (killed)
            row.failed += 1
            continue
        row.seeds.append(run.overrides.get("seed", "0"))
        row.paper = row.paper or run.results.get("paper")
        for m in metrics:
            value = run.results.get(m)
            if isinstance(value, (int, float)) and math.isfinite(value):
                row.metrics.setdefault(m, []).append(float(value))
    return list(rows.values())


def mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def is_accuracy(metric: str) -> bool:
    """test/acc, ann/test/acc, snn/test/acc/T64: shown in percent."""
    return "acc" in metric.split("/")


def _fmt(m: str, mean: float, std: float, n: int) -> str:
    if math.isnan(mean):
        return "—"
    if is_accuracy(m):
        return f"{mean * 100:.2f}" + (f" ± {std * 100:.2f}" if n > 1 else "")
    return f"{mean:.4g}" + (f" ± {std:.2g}" if n > 1 else "")


def paper_value(row: Row, metric: str) -> float | None:
    if row.paper and row.paper.get("metric") == metric and row.paper.get("value") is not None:
        return float(row.paper["value"])
    return None


def markdown(rows: list[Row], metrics: list[str], title: str = "") -> str:
    keys = list(rows[0].group) if rows else []
    has_paper = any(paper_value(r, m) is not None for r in rows for m in metrics)
    head = keys + [f"{m} (%)" if is_accuracy(m) else m for m in metrics] + ["seeds"]
    head += ["paper", "paper source"] if has_paper else []
    lines = ([f"### {title}", ""] if title else []) + ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.group[k] for k in keys]
        for m in metrics:
            values = r.metrics.get(m, [])
            cells.append(_fmt(m, *mean_std(values), len(values)))
        cells.append(str(len(r.seeds)) + (f" ({r.failed} failed)" if r.failed else ""))
        if has_paper:
            p = next((paper_value(r, m) for m in metrics if paper_value(r, m) is not None), None)
            cells += ["—" if p is None else f"{p * 100:.2f}" if is_accuracy(r.paper["metric"]) else f"{p:g}",
                      r.paper.get("source", "") if r.paper else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: list[Row], metrics: list[str], path: Path) -> None:
    keys = list(rows[0].group) if rows else []
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(keys + [c for m in metrics for c in (f"{m}/mean", f"{m}/std")] + ["n", "failed", "paper"])
        for r in rows:
            stats = [v for m in metrics for v in mean_std(r.metrics.get(m, []))]
            paper = next((paper_value(r, m) for m in metrics if paper_value(r, m) is not None), None)
            w.writerow([r.group[k] for k in keys] + stats + [len(r.seeds), r.failed, paper])


def plot(rows: list[Row], metric: str, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [", ".join(f"{k}={v}" for k, v in r.group.items()) or "run" for r in rows]
    stats = [mean_std(r.metrics.get(metric, [])) for r in rows]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(rows) + 2), 3.6))
    x = list(range(len(rows)))
    ax.bar(x, [s[0] for s in stats], yerr=[s[1] for s in stats], capsize=4, color="#4c72b0", label="snnexp")
    papers = [paper_value(r, metric) for r in rows]
    if any(p is not None for p in papers):
        ax.scatter([i for i, p in zip(x, papers) if p is not None], [p for p in papers if p is not None],
                   marker="_", s=600, color="#c44e52", zorder=3, label="paper")
        ax.legend()
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    if is_accuracy(metric):
        finite = [s[0] for s in stats if not math.isnan(s[0])] + [p for p in papers if p is not None]
        ax.set_ylim(max(0.0, min(finite, default=0.0) - 0.1), 1.0)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
