"""snnexp as a library: compose a config, build its parts, run it, load a finished run.

    import snnexp
    cfg = snnexp.compose(["neuron=plif", "trainer.max_epochs=2"])  # the CLI's overrides
    parts = snnexp.build(cfg)              # datamodule, encoder, model, learner, target; nothing trained
    results = snnexp.run(cfg)              # trains, tests, deploys; the run dir the CLI writes; results.json's dict
    loaded = snnexp.load(results["run_dir"])   # the trained model in eval mode, its config and encoder

`python run.py ARGS` and `snnexp.run([ARGS])` compose the same config from the same files
(snnexp/conf/, shipped with the package) and run the same `experiment.run`.
"""
from __future__ import annotations

import copy
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import pytorch_lightning as pl
import torch
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict, read_write
from omegaconf.base import ContainerMetadata, Metadata
from omegaconf.errors import OmegaConfBaseException
from omegaconf.nodes import AnyNode

from snnexp import experiment
from snnexp.context import CONF, job_config
from snnexp.deploy.requires import apply_requirements
from snnexp.errors import ConfigError, check, config_error
from snnexp.experiment import Parts
from snnexp.moved import refuse_moved
from snnexp.version import STAMP_KEY, __version__, check_compatible, renamed

CONFIG_FILE = Path(".hydra") / "config.yaml"
CHECKPOINT_FILE = Path("checkpoints") / "last.ckpt"
# What a learner's saved hyperparameters may hold besides plain values: OmegaConf containers
# (data only: stdp keeps its rule's DictConfig). Anything else stays refused, as weights_only does.
CONFIG_GLOBALS = [DictConfig, ListConfig, ContainerMetadata, Metadata, AnyNode, Any, dict, list, defaultdict,
                  int, float, str, bool]


def compose(overrides: Sequence[str] = (), run_dir: str | Path | None = None) -> DictConfig:
    """The config `python run.py OVERRIDES` runs, e.g. compose(["neuron=plif", "learner=stdp"]).

    It also carries, in a small `hydra` node, what the run records: `hydra.run.dir` (the CLI's
    outputs/runs/<date>/<time> pattern, resolved when the run starts; `run_dir` replaces it),
    `hydra.overrides.task` and `hydra.runtime.choices`. The values the deploy target requires are
    set (snnexp.deploy.requires). An unknown option or key, an override that does not parse (Hydra's
    message, with the options there are), or a value the deploy target cannot run with raises ConfigError.
    """
    overrides = _override_list(overrides)
    refuse_moved(overrides)  # a key that moved to another group: named, before Hydra's "not in struct"
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3", job_name="snnexp"):
            full = hydra_compose(config_name="config", overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(_chain(e)) from None
    full = apply_requirements(full, overrides, full.hydra.runtime.choices)  # e.g. deploy=loihi: model.bias=false
    hydra = full.hydra
    node = {
        "run": {"dir": str(run_dir) if run_dir is not None else OmegaConf.to_container(hydra.run, resolve=False)["dir"]},
        "overrides": {"task": list(hydra.overrides.task)},
        "runtime": {"choices": OmegaConf.to_container(hydra.runtime.choices)},
        "verbose": hydra.verbose,
    }
    with read_write(full), open_dict(full):
        full.hydra = node
    return full


def build(cfg: DictConfig) -> Parts:
    """The config's parts, in pipeline order, without training: Parts(datamodule, encoder, model, learner, target).

    Raises ConfigError for what `python run.py` refuses before training, including the overrides a
    config from `compose` records (`hydra.overrides.task`) that no part of this run would read.
    """
    overrides = OmegaConf.select(cfg, "hydra.overrides.task", default=None)
    return experiment.build(job_config(cfg), list(overrides) if overrides is not None else None)


def run(config: Sequence[str] | DictConfig = (), run_dir: str | Path | None = None) -> dict[str, Any]:
    """Train, test and deploy one experiment; return results.json's dict.

    `config`: overrides as on the command line (composed with `compose`), or a config from
    `compose` (edited or not). The run dir is outputs/runs/<date>/<time> under the current
    folder, like the CLI's, unless `run_dir` is given; it gets what a CLI run leaves
    (.hydra/, results.json, metrics.csv, checkpoints/last.ckpt, plots/), so `resume=<run dir>`
    and `snnexp.load` work on it. Sweeps (`-m`) are the CLI's.

    The calling process keeps its torch thread count and environment (both restored after the run).
    What the run leaves changed: the global random generators (Lightning's seed_everything seeds
    random, numpy and torch from `seed`), and glibc's malloc thresholds (set once per process, keeping
    freed blocks for the next time step's tensors: snnexp.runtime; SNNEXP_MALLOC_TUNING=0 keeps the
    defaults).
    """
    if isinstance(config, DictConfig):
        cfg = config
        if run_dir is not None:
            cfg = copy.deepcopy(cfg)
            with open_dict(cfg):
                OmegaConf.update(cfg, "hydra.run.dir", str(run_dir), force_add=True)
    else:
        cfg = compose(config, run_dir=run_dir)
    return experiment.run(cfg)


class Loaded(NamedTuple):
    """A finished run, rebuilt from its run dir.

    model: the trained network in eval mode: model(x_seq [T, N, ...]) -> out_seq [T, N, classes].
    cfg: the run's config (.hydra/config.yaml). encoder: what the learner applied to each batch,
    encoder(x [N, ...], generator=None) -> x_seq [T, N, ...]. learner: the LightningModule with the
    checkpoint's state (learner.generator("test") draws the test's input spikes). datamodule:
    the run's data (loads on first use). run_dir: where it came from.
    """

    model: torch.nn.Module
    cfg: DictConfig
    encoder: Callable[..., torch.Tensor]
    learner: pl.LightningModule
    datamodule: pl.LightningDataModule
    run_dir: Path


def load(run_dir: str | Path, device: str | torch.device = "cpu") -> Loaded:
    """Rebuild a run's model from its saved config and checkpoints/last.ckpt, on `device`.

    Raises ConfigError naming the file when the run dir, its config or its checkpoint is missing,
    when the checkpoint comes from an snnexp of another run format, or when the saved config
    no longer builds the same network with this snnexp.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"snnexp.load({str(run_dir)!r}): no such run dir; give the folder of a run "
                          f"(outputs/runs/<date>/<time>, or results['run_dir'] of snnexp.run)")
    config_path, ckpt_path = run_dir / CONFIG_FILE, run_dir / CHECKPOINT_FILE
    if not config_path.is_file():
        raise ConfigError(f"snnexp.load: {config_path} does not exist: {run_dir} is not a run dir "
                          f"(every run writes its config there)")
    if not ckpt_path.is_file():
        raise ConfigError(f"snnexp.load: {ckpt_path} does not exist: the run stopped before its first "
                          f"training epoch ended, so there are no trained weights to load")
    try:
        with torch.serialization.safe_globals(CONFIG_GLOBALS):
            checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConfigError(f"snnexp.load: {ckpt_path} is not a readable checkpoint ({type(e).__name__}: {e})") from e
    check_compatible(checkpoint.get(STAMP_KEY), ckpt_path)
    cfg = renamed(OmegaConf.load(config_path))
    parts = _rebuild(cfg, config_path)
    try:
        parts.learner.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as e:  # missing or unexpected keys, or other shapes: the code changed
        raise ConfigError(f"snnexp.load: {ckpt_path} does not fit the network {config_path} builds with snnexp "
                          f"{__version__} (written by {checkpoint[STAMP_KEY].get('version')}): {e}") from None
    parts.learner.restored(parts.datamodule)  # e.g. ann2snn converts its ANN again
    learner = parts.learner.to(device).eval()
    return Loaded(learner.model, cfg, learner.encoder, learner, parts.datamodule, run_dir)  # ann2snn: its own input


def export(run_dir: str | Path, to: str = "nir", path: str | Path | None = None, dt: float = 1e-4,
           avg_pool: str = "avg") -> Path:
    """A trained run's float model as a NIR graph (`to="nir"`), by default <run_dir>/export/net.nir.

    dt: seconds per step in the graph; avg_pool "sum" writes average pools as SumPool2d (Norse 1.1
    reads no AvgPool2d). Raises ConfigError naming what NIR cannot express (max-pool on spikes, ...).
    """
    from snnexp.deploy.nir import export_nir

    check(to == "nir", "to", to, "the one export format is nir (Loihi's netx file comes from deploy=loihi)")
    loaded = load(run_dir)
    out = Path(path) if path is not None else Path(run_dir) / "export" / "net.nir"
    export_nir(loaded.model, tuple(loaded.datamodule.in_shape), out, dt, avg_pool)
    return out


def _rebuild(cfg: DictConfig, config_path: Path) -> Parts:
    """experiment.build on the CPU target: a saved deploy=gpu or deploy=loihi run loads without a
    GPU or a Lava environment (the target only matters for training and after it)."""
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.deploy = {"_target_": "snnexp.deploy.cpu.CPUTarget"}
    try:
        return experiment.build(cfg)
    except Exception as e:
        error = config_error(e)
        detail = f"{type(e).__name__}: {e}" if error is None else str(error)
        raise ConfigError(f"snnexp.load: {config_path} does not build with snnexp {__version__}: {detail}") from e


def _override_list(overrides: Sequence[str]) -> list[str]:
    if isinstance(overrides, str):
        raise TypeError(f"overrides must be a list of strings such as [{overrides!r}], not one string")
    return [str(o) for o in overrides]


def _chain(e: BaseException) -> str:
    """Hydra's message and its causes (`Key 'foo' is not in struct`), as the CLI prints them."""
    lines = []
    while e is not None:
        lines.append(str(e))
        e = e.__cause__
    return "\n".join(line for line in lines if line)
