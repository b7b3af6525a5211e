"""Where a run writes and how its config was composed, with or without Hydra's job runner.

`python run.py` runs inside Hydra's job context (HydraConfig): it chose the run dir, wrote
`.hydra/` and knows the overrides and the option chosen in each group. `snnexp.compose` gives
the same facts without that context: its config carries them in a small `hydra` node with
Hydra's own key paths (`hydra.run.dir`, `hydra.overrides.task`, `hydra.runtime.choices`,
`hydra.verbose`), which the run takes out before it builds anything.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.utilities import rank_zero_only

from snnexp.status import read_results

CONF = Path(__file__).resolve().parent / "conf"  # the config groups, shipped as package data
RUN_DIR_ENV = "SNNEXP_RUN_DIR"  # rank 0's run dir, for the processes a DDP launch starts without Hydra


@dataclass(frozen=True)
class RunContext:
    """run_dir: where everything goes; overrides and choices: recorded in results.json;
    verbose: the full console (Lightning's INFO lines, wandb's own output, dependency warnings);
    hydra_wrote_dir: Hydra's job runner already wrote run_dir/.hydra/ (config, hydra, overrides)."""

    run_dir: Path
    overrides: tuple[str, ...] = ()
    choices: dict[str, str] = field(default_factory=dict)
    verbose: bool = False
    hydra_wrote_dir: bool = False

    @classmethod
    def of(cls, cfg: DictConfig) -> RunContext:
        """From the config's `hydra` node (snnexp.compose), else Hydra's job context (run.py),
        else a `run_dir` key (tests) or a new outputs/runs/<date>/<time> as the CLI would pick."""
        verbose = bool(cfg.get("verbose"))
        if "hydra" in cfg:
            node = cfg.hydra
            return cls(run_dir=_inherited_run_dir() or _resolve_run_dir(cfg),
                       overrides=tuple(node.get("overrides", {}).get("task", ())),
                       choices=_user_choices(node.get("runtime", {}).get("choices", {})),
                       verbose=verbose or bool(node.get("verbose")))
        if HydraConfig.initialized():
            hc = HydraConfig.get()
            return cls(run_dir=Path(hc.runtime.output_dir), overrides=tuple(hc.overrides.task),
                       choices=_user_choices(hc.runtime.choices), verbose=verbose or bool(hc.verbose),
                       hydra_wrote_dir=hc.output_subdir is not None)
        run_dir = _inherited_run_dir() or Path(cfg.get("run_dir") or _resolve_run_dir(default_hydra_node()))
        return cls(run_dir=run_dir.absolute(), verbose=verbose)

    def resuming(self, old_run_dir: Path) -> RunContext:
        """A resumed run keeps the old run's config groups: it records the old run's choices, from its
        results.json (a resumed run's own .hydra/hydra.yaml holds its command line's), else Hydra's file."""
        recorded = read_results(old_run_dir / "results.json").get("choices")
        if isinstance(recorded, dict):
            return replace(self, choices=_user_choices(recorded))
        saved = old_run_dir / ".hydra" / "hydra.yaml"
        if not saved.is_file():
            return self
        return replace(self, choices=_user_choices(OmegaConf.select(OmegaConf.load(saved), "hydra.runtime.choices")))

    def record(self, cfg: DictConfig) -> None:
        """Create the run dir and write `.hydra/config.yaml`: the config this run runs with
        (for a resumed run: the old run's config plus the overrides, not the composed one), so
        `resume=` and `snnexp.load` read the right one. Without Hydra's job runner, also
        `overrides.yaml` and `hydra.yaml` (just the facts above), as Hydra would."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if rank_zero_only.rank != 0:
            return
        if not HydraConfig.initialized():  # a DDP launch reruns the script: its processes must find this dir
            os.environ[RUN_DIR_ENV] = str(self.run_dir)
        hydra_dir = self.run_dir / ".hydra"
        hydra_dir.mkdir(exist_ok=True)
        OmegaConf.save(cfg, hydra_dir / "config.yaml")
        if self.hydra_wrote_dir:
            return
        OmegaConf.save(OmegaConf.create(list(self.overrides)), hydra_dir / "overrides.yaml")
        if HydraConfig.initialized():  # run.py: Hydra's own record, written once the dir was claimed (snnexp.rundir)
            OmegaConf.save(OmegaConf.create({"hydra": HydraConfig.get()}), hydra_dir / "hydra.yaml")
        else:
            OmegaConf.save(OmegaConf.create({"hydra": {
                "run": {"dir": str(self.run_dir)}, "overrides": {"task": list(self.overrides)},
                "runtime": {"choices": dict(self.choices), "output_dir": str(self.run_dir)},
                "verbose": self.verbose}}), hydra_dir / "hydra.yaml")


def job_config(cfg: DictConfig) -> DictConfig:
    """The config without its `hydra` node: what `python run.py` hands its job, and what .hydra/config.yaml holds."""
    if "hydra" not in cfg:
        return cfg
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def default_hydra_node() -> DictConfig:
    """conf/config.yaml's `hydra` block (the CLI's run-dir pattern)."""
    return OmegaConf.create({"hydra": OmegaConf.load(CONF / "config.yaml").hydra})


def _resolve_run_dir(cfg: DictConfig) -> Path:
    """hydra.run.dir resolved now (`${now:...}`: each run gets its own dir, as each CLI call does),
    in a fresh copy: OmegaConf caches `now` on the config it resolved it in."""
    fresh = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    _register_now()
    return Path(str(fresh.hydra.run.dir)).absolute()


def _register_now() -> None:
    if not OmegaConf.has_resolver("now"):  # Hydra registers it when it initialises
        from hydra.core.utils import setup_globals

        setup_globals()


def _inherited_run_dir() -> Path | None:
    """In a process a DDP launch started (rank > 0, no Hydra): the run dir rank 0 chose (see `record`)."""
    value = os.environ.get(RUN_DIR_ENV)
    return Path(value) if value and rank_zero_only.rank != 0 else None


def _user_choices(choices: Any) -> dict[str, str]:
    """The option chosen in each config group (dataset: digits, neuron: lif, ...), without Hydra's own groups."""
    items = choices.items() if choices else ()
    return {str(k): str(v) for k, v in items if v is not None and not str(k).startswith("hydra/")}
