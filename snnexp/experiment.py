"""Compose an experiment from its config, run it, and leave the results in the run dir.

The run dir (snnexp.context.RunContext: chosen by Hydra for run.py, by snnexp.compose for the
API) gets: .hydra/ (config.yaml: the config the run ran with), results.json, metrics.csv,
checkpoints/last.ckpt, plots/*.png and, with the wandb logger, wandb/; results.json and the
checkpoint carry snnexp's version stamp (snnexp.version). The console: snnexp.console.

What each part offers is declared once: a learner is a `snnexp.learners.base.Learner`
(.model, .encoder, generator(stage), extra_results, extra_plots, unused_keys, unused_groups,
check_setup, deployed_model), a target a `snnexp.deploy.base.Target` (setup, prepare_model,
check_learner, trainer_kwargs, after_training), and a datamodule may offer the Protocols of
`snnexp.data.base` (use_encoder, extra_plots). results.json carries the run's `status`
(snnexp.status): written when the run starts, rewritten when it ends. SIGTERM and SIGINT end it
`interrupted` and raise snnexp.signals.Interrupted; a requeued scheduler job continues in its own
run dir (snnexp.slurm).
"""
from __future__ import annotations

import difflib
import logging
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_object
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_only

from snnexp import capacity, console, rundir
from snnexp import loggers as trackers
from snnexp.callbacks import TestEveryEpoch
from snnexp.data.base import MakesPlots, UsesEncoder
from snnexp.ddp import one_job_per_process_group
from snnexp.context import CONF, RUN_DIR_ENV, RunContext, job_config
from snnexp.deploy.base import Target
from snnexp.deploy.requires import apply_requirements
from snnexp.errors import ConfigError, check, config_error
from snnexp.learners.base import Learner
from snnexp.metrics.energy import run_metrics
from snnexp.models.base import SpikingModel
from snnexp.nonfinite import NonFiniteGuard
from snnexp.resume import check_shapes, prepend_metrics, resume_config
from snnexp.runtime import tune_allocator
from snnexp.signals import Interrupted, as_interrupted, stop_on_signals
from snnexp.slurm import JOB_KEY, current_job, requeued_into, set_aside_metrics
from snnexp.status import DONE, FAILED, STARTED, ended, write_results
from snnexp.typecheck import check_config
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
    learner: Learner
    target: Target


def build(cfg: DictConfig, overrides: list[str] | None = None) -> Parts:
    """Instantiate the config groups in pipeline order; the datamodule tells the model its shapes.

    `overrides`: what the user set (`key=value`); a learner key this run would not use is refused.
    Every check that can be made before training is made here (snnexp.typecheck, the learner's and
    the target's checks), so a bad value never costs the training time.
    """
    check_config(cfg)  # every value against the signature of the constructor it goes to
    overrides = overrides or []
    check(isinstance(cfg.seed, int) and not isinstance(cfg.seed, bool) and 0 <= cfg.seed <= MAX_SEED,
          "seed", cfg.seed, f"must be an integer from 0 to {MAX_SEED}")
    refuse_unread(overrides)
    target: Target = instantiate(cfg.deploy)
    target.setup()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.dataset)
    learner_class: type[Learner] = get_object(cfg.learner._target_)
    for group, why in learner_class.unused_groups.items():
        refuse_group(group, overrides, f"learner={learner_class.name} {why}")
    encoder = None
    if "encoding" not in learner_class.unused_groups:
        encoder = instantiate(cfg.encoding)
        if isinstance(datamodule, UsesEncoder):  # it may convert the whole dataset with it (events, cached)
            encoder = datamodule.use_encoder(encoder)  # ... and hand back the per-batch step; in_shape follows
    neuron = instantiate(cfg.neuron)  # a factory: the model calls it once per layer
    # Objects go in through partials: Hydra would turn a dataclass argument into a DictConfig.
    model = instantiate(cfg.model, _partial_=True)(
        neuron=neuron, in_shape=tuple(datamodule.in_shape), num_classes=datamodule.num_classes)
    target.prepare_model(model)  # a target may refuse a model it cannot run, before any training
    learner = instantiate(cfg.learner, _partial_=True)(
        model=model, encoder=encoder, num_classes=datamodule.num_classes)
    refuse_unused(learner, overrides)
    learner.check_setup(cfg.trainer)  # Trainer options it cannot honour; its optimizer, built once
    target.check_learner(learner, datamodule)  # what it will deploy, and its input
    if target.trainer_kwargs().get("accelerator") == "cpu" and isinstance(model, SpikingModel):
        capacity.check_fits(model, tuple(datamodule.in_shape), int(cfg.T), int(datamodule.batch_size),
                            learner.steps_kept(int(cfg.T)), learner.name, learner.memory_advice())  # not after the work
    return Parts(datamodule, encoder, model, learner, target)


MAX_SEED = 2**32 - 1  # numpy's and Lightning's range


def refuse_unread(overrides: list[str]) -> None:
    """A top-level `+key=value` is a key no part reads: every key a part reads is declared in
    conf/config.yaml (or a preset), where `+` would have been refused. `+sed=1` meant `seed=1`."""
    groups = {p.name for p in CONF.iterdir() if p.is_dir()}
    declared = set(OmegaConf.load(CONF / "config.yaml")) | {"run_dir"}
    for item in overrides:
        if not item.startswith("+"):
            continue
        key = item.lstrip("+").split("=", 1)[0].split(".")[0]
        if key in groups or (key in declared and "." in item.split("=", 1)[0]):
            continue  # a group added, or a key inside a group or a declared node (checked against its constructor)
        close = difflib.get_close_matches(key, sorted(declared | groups), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(f"{item} has no effect: no part of snnexp reads a top-level {key!r}; {hint}"
                          f"remove it (`python run.py --cfg job` lists every key)")


def refuse_group(group: str, overrides: list[str], why: str) -> None:
    """A choice or key of `group` the user set, in a run that does not use that group, is an error."""
    for item in overrides:
        key = item.lstrip("+~").split("=", 1)[0]
        if key == group or key.startswith((group + ".", group + "/")):
            raise ConfigError(f"{item} has no effect: {why}; remove it")


def refuse_unused(learner: Learner, overrides: list[str]) -> None:
    """A `learner.<key>` the user set that this run ignores is an error, not a silent no-op."""
    unused = learner.unused_keys()
    for item in overrides:
        key = item.lstrip("+~").split("=", 1)[0]
        parts = key.split(".")
        if len(parts) > 1 and parts[0] == "learner" and parts[1] in unused:
            raise ConfigError(f"{item} has no effect with model={type(learner.model).__name__.lower()} and "
                              f"learner={learner.name}: {learner.name}'s {parts[1]!r} is not used by this model "
                              f"or these settings; remove it")


class LastCheckpoint(Callback):
    """checkpoints/last.ckpt after every training epoch (resume reads it after a crash), written to a
    temporary file and renamed, so a kill mid-write never leaves a truncated checkpoint. Saved
    whatever global_step says (STDP has no optimizer steps; Lightning's ModelCheckpoint would skip)."""

    def __init__(self, dirpath: Path):
        self.path = Path(dirpath) / "last.ckpt"

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        tmp = self.path.with_suffix(".ckpt.tmp")
        trainer.save_checkpoint(tmp)
        if trainer.is_global_zero:
            tmp.replace(self.path)


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
    with console.quiet(context.verbose), one_job_per_process_group(), stop_on_signals(), _restored_process():
        return _run(job_config(cfg), context)  # one_job_per_process_group: DDP in a sweep, a process group per job


@contextmanager
def _restored_process() -> Iterator[None]:
    """What a run sets for itself and gives back: torch's thread count (deploy.num_threads) and the
    run-dir variable a DDP launch reads (snnexp.context.RUN_DIR_ENV). What it leaves changed is said
    in snnexp.api.run's docstring."""
    threads, run_dir_env = torch.get_num_threads(), os.environ.get(RUN_DIR_ENV)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if run_dir_env is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = run_dir_env


def _run(cfg: DictConfig, context: RunContext) -> dict[str, Any]:
    t_start = time.perf_counter()
    tune_allocator()
    run_dir = context.run_dir
    requeued = None if cfg.get("resume") else requeued_into(run_dir)  # a scheduler job back in its own dir
    if _is_rank_zero():  # before anything is written: the dir is this run's alone (snnexp.rundir)
        rundir.claim(run_dir, resume=Path(cfg.resume) if cfg.get("resume") else None, requeued=requeued is not None)
    results: dict[str, Any] = {"run_dir": str(run_dir), STAMP_KEY: stamp()}
    if context.choices:
        results["choices"] = dict(context.choices)
    job = current_job()
    if job is not None:  # how a requeued job knows its own dir again
        results[JOB_KEY] = job
    if requeued is not None:
        results["requeued"] = requeued.attempt
    if _is_rank_zero():  # a job killed before it ends still shows up: as "started", i.e. failed
        write_results(run_dir / "results.json", {**results, "status": STARTED, "overrides": list(context.overrides)})
    loggers: list = []
    notes: list[str] = []
    trainer: pl.Trainer | None = None
    ckpt_path = None
    earlier_metrics = None  # the rows of the run this one continues
    refused = False
    try:
        if cfg.get("resume"):
            cfg, ckpt_path = resume_config(cfg, list(context.overrides))
            context = context.resuming(Path(cfg.resume))  # the run it continues: its group choices
            earlier_metrics = Path(cfg.resume) / "metrics.csv"
        elif requeued is not None:  # a scheduler job requeued into its own dir (snnexp.slurm)
            ckpt_path = requeued.checkpoint
            earlier_metrics = set_aside_metrics(run_dir)
        cfg = apply_requirements(cfg, context.overrides, context.choices)  # run.py's config: as snnexp.compose's
        context.record(cfg)  # .hydra/config.yaml
        console.say(console.choices_line(context.choices))
        choices = dict(context.choices)
        if choices:
            results["choices"] = choices  # a resumed run: the old run's groups
        parts = build(cfg, list(context.overrides))
        if ckpt_path is not None:
            check_shapes(ckpt_path, parts.learner, cfg.resume, list(context.overrides))
        loggers = [trackers.csv_logger(run_dir)]
        loggers += [instantiate(c, save_dir=run_dir) for c in cfg.logger.values()]
        config = OmegaConf.to_container(cfg, resolve=True)
        for lg in loggers:
            lg.log_hyperparams(config)
        throughput = Throughput()
        checkpoint = LastCheckpoint(run_dir / "checkpoints")
        epoch_test = TestEveryEpoch() if cfg.get("test_every_epoch") else None
        guard = NonFiniteGuard(cfg.get("nonfinite", "stop"))
        callbacks = [guard, throughput] + ([epoch_test] if epoch_test else [])  # test before saving
        callbacks += [checkpoint, StampCheckpoints(), *console.progress_bars(cfg.trainer)]
        trainer = instantiate(cfg.trainer, logger=loggers, callbacks=callbacks,
                              enable_checkpointing=False, default_root_dir=str(run_dir),
                              **parts.target.trainer_kwargs())
        trainer.fit(parts.learner, datamodule=parts.datamodule, ckpt_path=ckpt_path)
        results.update(_scalars(trainer.callback_metrics))  # train/ and val/ (test replaces them)
        results["train/samples_per_s"] = throughput.samples_per_s
        results["train/epochs"] = trainer.current_epoch
        results["threads"] = torch.get_num_threads()  # deploy.num_threads: it can change a result's last digits
        results.update(guard.results())
        results["data/samples"] = {"train": _size(parts.datamodule.train_dataloader()),
                                   "val": _size(parts.datamodule.val_dataloader()),
                                   "test": _size(parts.datamodule.test_dataloader())}
        if epoch_test is not None:
            results.update(epoch_test.summary())
        trainer.test(parts.learner, datamodule=parts.datamodule, verbose=False)
        results.update(_scalars(trainer.callback_metrics))
        results.update(run_metrics(parts.model, results, cfg.get("energy")))  # footprint, sparsity, energy
        if not _is_rank_zero():  # DDP: the other processes stop here; rank 0 reports
            return results
        if earlier_metrics is not None:  # continuous curves: the old run's epochs first
            prepend_metrics(earlier_metrics, run_dir / "metrics.csv")
            if requeued is not None:
                earlier_metrics.unlink(missing_ok=True)
        if ckpt_path is not None:
            results["resumed_from"] = str(ckpt_path)
        results.update(parts.learner.extra_results(run_dir))
        results.update(parts.target.after_training(parts.learner, parts.datamodule, run_dir))
        results["plots"] = [str(p) for p in _plots(parts, run_dir, loggers)]
        results["checkpoint"] = str(run_dir / "checkpoints" / "last.ckpt")
        if cfg.get("preset"):
            results["preset"] = cfg.preset
        if cfg.get("paper"):  # a preset's reported number, for scripts/table.py
            results["paper"] = paper_reference(cfg, choices)
        results["status"] = DONE
    except BaseException as e:
        results.update(ended(e, trainer.current_epoch if trainer is not None else None, run_dir))
        refused = config_error(e) is not None  # run.py prints its one message: no log line before it
        stop = as_interrupted(e)
        if isinstance(stop, Interrupted):  # run.py prints this and exits 128 + signum
            stop.detail = results["error"]
        if stop is e:
            raise
        raise stop from None
    finally:
        results["wall_s"] = time.perf_counter() - t_start
        results["overrides"] = list(context.overrides)
        notes = trackers.finish(loggers)
        path = run_dir / "results.json"
        if _is_rank_zero():
            write_results(path, results)
        if results.get("status") == FAILED and not refused:  # interrupted or refused: run.py prints one message
            log.error("run failed; what exists is in %s", run_dir)
        rundir.release(run_dir)
    console.say("\n".join(notes))
    console.say(console.metrics_table(results))
    console.say(f"results: {path}")
    return results


def _size(loader: Any) -> int | None:
    """Samples a dataloader serves (None when its dataset has no length)."""
    try:
        return len(loader.dataset)
    except (TypeError, AttributeError):
        return None


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
    paths += learner.extra_plots(run_dir)
    if isinstance(dm, MakesPlots):  # a datamodule may add plots too (event frames and rasters)
        paths += dm.extra_plots(run_dir)
    for lg in loggers:
        if hasattr(lg, "log_image"):
            for p in paths:
                lg.log_image(key=f"plots/{p.stem}", images=[str(p)])
    return paths
