"""Compose an experiment from its config, run it, and leave the results in the run dir.

The run dir (snnexp.context.RunContext: chosen by Hydra for run.py, by snnexp.compose for the
API) gets: .hydra/ (config.yaml: the config the run ran with), results.json, metrics.csv,
checkpoints/last.ckpt, plots/*.png and, with the wandb logger, wandb/; results.json and the
checkpoint carry snnexp's version stamp (snnexp.version). The console: snnexp.console.

What a learner must offer: it is a LightningModule with `.model` (a
SpikingModel), `.encoder` and `.generator(stage)` (used for the raster plot).
Optional: `extra_results(run_dir) -> dict` (merged into results.json after
testing) and `extra_plots(run_dir) -> list[Path]` (saved PNGs, logged too; a
datamodule may offer it as well). A datamodule with `use_encoder(encoder)` gets
the encoder first and returns what the learner applies per batch (it may
convert the dataset itself, e.g. event emulation; its in_shape follows).
A deploy target adds its results through `Target.after_training`; optional
`prepare_model(model)` checks the model before training (deploy=loihi).
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_only

from snnexp import console
from snnexp import loggers as trackers
from snnexp.context import RunContext, job_config
from snnexp.deploy.base import Target
from snnexp.errors import check, config_error
from snnexp.resume import prepend_metrics, resume_config
from snnexp.runtime import tune_allocator
from snnexp.version import STAMP_KEY, StampCheckpoints, stamp
from snnexp.viz.curves import plot_curves
from snnexp.viz.raster import plot_raster, record_spikes

log = logging.getLogger(__name__)


def instantiate(node: Any, *args: Any, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, re-raising a bad value's ConfigError as itself (no wrapper)."""
    try:
        return hydra_instantiate(node, *args, **kwargs)
    except InstantiationException as e:
        cause = config_error(e)
        if cause is None:
            raise
        raise cause from None


@dataclass
class Parts:
    """Everything one config builds, before training."""

    datamodule: pl.LightningDataModule
    encoder: Any
    model: torch.nn.Module
    learner: pl.LightningModule
    target: Target


def build(cfg: DictConfig) -> Parts:
    """Instantiate the config groups in pipeline order; the datamodule tells the model its shapes."""
    target: Target = instantiate(cfg.deploy)
    target.setup()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.dataset)
    encoder = instantiate(cfg.encoding)
    if hasattr(datamodule, "use_encoder"):  # it may convert the whole dataset with it (events, cached)
        encoder = datamodule.use_encoder(encoder)  # ... and hand back the per-batch step; in_shape follows
    neuron = instantiate(cfg.neuron)  # a factory: the model calls it once per layer
    # Objects go in through partials: Hydra would turn a dataclass argument into a DictConfig.
    model = instantiate(cfg.model, _partial_=True)(
        neuron=neuron, in_shape=tuple(datamodule.in_shape), num_classes=datamodule.num_classes)
    if hasattr(target, "prepare_model"):  # a target may refuse a model it cannot run, before any training
        target.prepare_model(model)
    learners = getattr(model, "learners", None)  # a model only some learners can train names them
    learner_name = str(cfg.learner._target_).rsplit(".", 1)[-1].lower()
    check(learners is None or learner_name in learners, "learner", learner_name,
          f"model {type(model).__name__} trains with learner={'|'.join(learners or ())} only")
    learner = instantiate(cfg.learner, _partial_=True)(
        model=model, encoder=encoder, num_classes=datamodule.num_classes)
    return Parts(datamodule, encoder, model, learner, target)


class Throughput(Callback):
    """Training samples per second, counting training batches only (not validation)."""

    def __init__(self):
        self.seconds = 0.0
        self.samples = 0
        self._last = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._last = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        self.seconds += now - self._last
        self._last = now
        self.samples += len(batch[-1]) * trainer.world_size  # all DDP processes together

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        self._last = time.perf_counter()  # validation inside an epoch does not count

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else float("nan")


def run(cfg: DictConfig, context: RunContext | None = None) -> dict[str, Any]:
    """Build, train, test and deploy; write results.json; return the results.

    `context` (run dir, overrides, choices, verbose) defaults to RunContext.of(cfg): from the
    config's `hydra` node (snnexp.compose), Hydra's job context (run.py) or a `run_dir` key.
    """
    context = context or RunContext.of(cfg)
    with console.quiet(context.verbose):
        return _run(job_config(cfg), context)


def _run(cfg: DictConfig, context: RunContext) -> dict[str, Any]:
    t_start = time.perf_counter()
    tune_allocator()
    ckpt_path = None
    if cfg.get("resume"):
        cfg, ckpt_path = resume_config(cfg, list(context.overrides))
        context = context.resuming(Path(cfg.resume))
    run_dir = context.run_dir
    context.record(cfg)  # run dir, .hydra/config.yaml
    console.say(console.choices_line(context.choices))
    results: dict[str, Any] = {"run_dir": str(run_dir), STAMP_KEY: stamp()}
    loggers: list = []
    notes: list[str] = []
    try:
        parts = build(cfg)
        loggers = [trackers.csv_logger(run_dir)]
        loggers += [instantiate(c, save_dir=run_dir) for c in cfg.logger.values()]
        config = OmegaConf.to_container(cfg, resolve=True)
        for lg in loggers:
            lg.log_hyperparams(config)
        throughput = Throughput()
        # checkpoints/last.ckpt rewritten after every epoch (resume reads it after a crash)
        checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="last", monitor=None, save_top_k=1,
                                     enable_version_counter=False)
        callbacks = [throughput, checkpoint, StampCheckpoints(), *console.progress_bars(cfg.trainer)]
        trainer: pl.Trainer = instantiate(cfg.trainer, logger=loggers, callbacks=callbacks,
                                          default_root_dir=str(run_dir), **parts.target.trainer_kwargs())
        trainer.fit(parts.learner, datamodule=parts.datamodule, ckpt_path=ckpt_path)
        results.update(_scalars(trainer.callback_metrics))  # train/ and val/ (test replaces them)
        results["train/samples_per_s"] = throughput.samples_per_s
        results["train/epochs"] = trainer.current_epoch
        trainer.test(parts.learner, datamodule=parts.datamodule, verbose=False)
        results.update(_scalars(trainer.callback_metrics))
        if not _is_rank_zero():  # DDP: the other processes stop here; rank 0 reports
            return results
        if ckpt_path is not None:  # continuous curves: the old run's epochs first
            prepend_metrics(Path(cfg.resume) / "metrics.csv", run_dir / "metrics.csv")
            results["resumed_from"] = str(ckpt_path)
        if hasattr(parts.learner, "extra_results"):
            results.update(parts.learner.extra_results(run_dir))
        results.update(parts.target.after_training(parts.learner, parts.datamodule, run_dir))
        results["plots"] = [str(p) for p in _plots(parts, run_dir, loggers)]
        results["checkpoint"] = str(run_dir / "checkpoints" / "last.ckpt")
        choices = dict(context.choices)
        if choices:
            results["choices"] = choices
        if cfg.get("preset"):
            results["preset"] = cfg.preset
        if cfg.get("paper"):  # a preset's reported number, for scripts/table.py
            results["paper"] = paper_reference(cfg, choices)
    except BaseException as e:
        results["error"] = f"{type(e).__name__}: {e}"
        raise
    finally:
        results["wall_s"] = time.perf_counter() - t_start
        results["overrides"] = list(context.overrides)
        notes = trackers.finish(loggers)
        path = run_dir / "results.json"
        if _is_rank_zero():
            path.write_text(json.dumps(results, indent=2, sort_keys=True, default=str))
        if "error" in results:
            log.error("run failed; what exists is in %s", run_dir)
    console.say("\n".join(notes))
    console.say(console.metrics_table(results))
    console.say(f"results: {path}")
    return results


def paper_reference(cfg: DictConfig, choices: dict[str, str]) -> dict[str, Any]:
    """The paper's number for this run from the preset's `paper` block.

    `paper: {source, metric, value}` or, when it depends on the run,
    `paper: {source, metric, by: [<group or config key>, ...], values: {<option>: {<option>: <number>}}}`
    with one nesting level per key, a group standing for its chosen option
    (e.g. by: [dataset, neuron], values: {fashion_mnist: {plif: 0.9438}}); no entry, no number.
    """
    paper = cfg.paper
    value = paper.get("value")
    if paper.get("by"):
        keys = [paper.by] if isinstance(paper.by, str) else list(paper.by)
        value = paper["values"]
        for key in keys:
            chosen = choices[key] if key in choices else OmegaConf.select(cfg, key)
            value = value.get(chosen) if isinstance(value, DictConfig) else None
    return {"source": paper.get("source", ""), "metric": paper.get("metric", "test/acc"), "value": value}


def _is_rank_zero() -> bool:
    return rank_zero_only.rank == 0


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        value = float(value)
        out[key] = value if math.isfinite(value) else None
    return out


def _plots(parts: Parts, run_dir: Path, loggers: list) -> list[Path]:
    """Training curves and a spike raster of the first test sample, saved and sent to the trackers."""
    plots = run_dir / "plots"
    paths = [plot_curves(run_dir / "metrics.csv", plots / "curves.png")]
    learner, dm = parts.learner, parts.datamodule
    x, y = next(iter(dm.test_dataloader()))
    learner.eval()
    with torch.no_grad():
        x_seq = learner.encoder(x[:1].to(learner.device), generator=learner.generator("test"))
        layers = {"input": x_seq.flatten(1).cpu()}  # [T, 1, ...] -> [T, inputs]
        layers.update(record_spikes(parts.model, x_seq))
    pred = int(learner.model(x_seq).mean(0).argmax(-1))
    paths.append(plot_raster(layers, plots / "raster.png", title=f"test sample 0: label {int(y[0])}, predicted {pred}"))
    for part in (learner, dm):  # a datamodule may add plots too (event frames and rasters)
        if hasattr(part, "extra_plots"):
            paths += part.extra_plots(run_dir)
    for lg in loggers:
        if hasattr(lg, "log_image"):
            for p in paths:
                lg.log_image(key=f"plots/{p.stem}", images=[str(p)])
    return paths
