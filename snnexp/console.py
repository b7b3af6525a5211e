"""A quiet console: what a run prints, and the dependency chatter it holds back.

A run prints the option chosen in each config group on one line, one progress bar per stage
(train, val, test), a short table of the final metrics, and the results path last. It holds
back Lightning's INFO lines (accelerators, tips, "configured so 100% of the batches..."),
deprecation warnings raised inside dependencies (torch's LeafSpec from Lightning's internals),
Lightning's hint to use `srun` on a machine with SLURM installed,
and wandb's own output (a one-line note from `snnexp.loggers.finish` replaces its summary).
Warnings raised by snnexp or about the user's own code, errors, and WARNING log records (e.g.
deploy=loihi's notes) still show. `verbose=true` (or `hydra.verbose=true`) holds nothing back.
"""
from __future__ import annotations

import logging
import math
import os
import warnings
from contextlib import contextmanager
from typing import Any, Iterator

from pytorch_lightning.callbacks import Callback, RichProgressBar
from pytorch_lightning.utilities import rank_zero_only

# Deprecations these packages raise about their own internals: the user can do nothing about them.
DEPENDENCIES = r"(torch|torchmetrics|pytorch_lightning|lightning_fabric|lightning_utilities|hydra|omegaconf|wandb|tonic)(\.|$)"
CHATTY_LOGGERS = ("pytorch_lightning", "lightning_fabric")
# The table's rows, in this order, when the run has them; then every numeric deploy/* result.
HEADLINE = ("test/acc", "test/loss", "val/acc", "train/acc", "train/loss", "test/rate/mean", "test/synops",
            "train/samples_per_s", "train/epochs", "wall_s")


@contextmanager
def quiet(verbose: bool = False) -> Iterator[None]:
    """Hold the chatter back while the block runs (nothing when verbose); restore everything after."""
    if verbose:
        yield
        return
    levels = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    silent = os.environ.get("WANDB_SILENT")
    try:
        for name in CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        os.environ["WANDB_SILENT"] = "true"  # read by wandb.init: no banner, no summary, no termwarn
        with warnings.catch_warnings():
            for category in (DeprecationWarning, FutureWarning):
                warnings.filterwarnings("ignore", category=category, module=DEPENDENCIES)
            # Lightning's hint on any machine with SLURM installed, for every run not started by srun
            # (a run on a login node, a sweep job of submitit's): snnexp runs one process per job.
            warnings.filterwarnings("ignore", message="The `srun` command is available on your system")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        if silent is None:
            os.environ.pop("WANDB_SILENT", None)
        else:
            os.environ["WANDB_SILENT"] = silent


class ProgressBar(RichProgressBar):
    """Lightning's rich progress bars without the logger's version (`v_num`) beside the metrics."""

    def get_metrics(self, trainer, pl_module) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items


def progress_bars(trainer_cfg: Any) -> list[Callback]:
    """The progress bar callback, unless the trainer config turns bars off (Lightning refuses both)."""
    return [ProgressBar()] if trainer_cfg.get("enable_progress_bar", True) else []


def say(text: str) -> None:
    """Print on the rank-0 process only (DDP: every process runs the same code)."""
    if rank_zero_only.rank == 0 and text:
        print(text, flush=True)


PIPELINE = ("dataset", "encoding", "neuron", "model", "learner", "deploy", "trainer", "logger")


def choices_line(choices: dict[str, str]) -> str:
    """`dataset=digits encoding=poisson neuron=lif neuron/surrogate=atan ...`: the pipeline's order
    (data -> encoding -> model -> learner -> target), then any other group (experiment, ...)."""
    def rank(group: str) -> tuple[int, int, str]:
        top = group.split("/")[0]
        return (PIPELINE.index(top) if top in PIPELINE else len(PIPELINE), group.count("/"), group)

    return " ".join(f"{g}={choices[g]}" for g in sorted(choices, key=rank))


def metrics_table(results: dict[str, Any]) -> str:
    """The final metrics, one per row: the headline ones, then the deploy target's numbers."""
    keys = [k for k in HEADLINE if k in results]
    keys += sorted(k for k in results if k.startswith("deploy/") and k not in keys)
    rows = [(k, _fmt(results[k])) for k in keys if _fmt(results[k]) is not None]
    paper = results.get("paper") or {}
    if paper.get("value") is not None:
        rows.append((f"paper {paper.get('metric', '')}", f"{paper['value']:.4g}  ({paper.get('source', '')})"))
    if not rows:
        return ""
    width = max(len(k) for k, _ in rows)
    return "\n".join([f"{'metric':<{width}}  value", f"{'-' * width}  {'-' * 10}"]
                     + [f"{k:<{width}}  {v}" for k, v in rows])


def _fmt(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4f}" if abs(value) < 100 else f"{value:,.0f}"
