"""Compose configs in-process (Hydra's compose API) for tests."""
from __future__ import annotations

import os
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

CONF = Path(__file__).resolve().parents[1] / "snnexp" / "conf"


def compose_cfg(overrides: list[str], run_dir: Path | None = None) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    if run_dir is not None:
        with open_dict(cfg):
            cfg.run_dir = str(run_dir)
    return cfg


def options(group: str) -> list[str]:
    """Every option of a config group (a folder of YAML files under snnexp/conf/)."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def nir_graph_file() -> Path:
    """A small NIR graph for digits ([1, 8, 8] -> 10 classes), written once per test process, for model=nir."""
    import tempfile
    from functools import partial

    from snnexp.deploy.nir import export_nir
    from snnexp.models import MLP
    from snnexp.neurons import LIF

    path = Path(tempfile.gettempdir()) / f"snnexp-tests-{os.getpid()}" / "digits_mlp.nir"
    if not path.is_file():
        export_nir(MLP(partial(LIF, reset="hard"), in_shape=(1, 8, 8), num_classes=10, hidden=(16,)), (1, 8, 8), path)
    return path
