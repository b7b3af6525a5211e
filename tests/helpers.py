"""Compose configs in-process (Hydra's compose API) for tests."""
from __future__ import annotations

import os
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from snnexp.deploy.requires import apply_requirements

CONF = Path(__file__).resolve().parents[1] / "snnexp" / "conf"


def compose_cfg(overrides: list[str], run_dir: Path | None = None) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    cfg = apply_requirements(cfg, overrides)  # as snnexp.compose and run.py do
    if run_dir is not None:
        with open_dict(cfg):
            cfg.run_dir = str(run_dir)
    return cfg


def options(group: str) -> list[str]:
    """Every option of a config group (a folder of YAML files under snnexp/conf/)."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))
