"""Which snnexp wrote a run: a stamp in results.json and in every checkpoint, checked by `snnexp.load`.

RUN_FORMAT counts incompatible changes to what a run leaves behind (the run dir's layout, the
checkpoint's keys): raise it with such a change, and `load` refuses older runs with a message
that says which version wrote them, instead of failing somewhere inside a state dict.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback

from snnexp.errors import ConfigError

try:
    __version__ = version("snnexp")
except PackageNotFoundError:  # a source tree on sys.path without `pip install`
    __version__ = "0+unknown"

RUN_FORMAT = 1
STAMP_KEY = "snnexp"  # the key in results.json and in the checkpoint dict

# Classes renamed within RUN_FORMAT 1 (issue 26: MNISTData beside NMNISTData): a saved config that
# names the old path loads as the same class.
RENAMED = {
    "snnexp.data.digits.Digits": "snnexp.data.digits.DigitsData",
    "snnexp.data.idx.MNIST": "snnexp.data.idx.MNISTData",
    "snnexp.data.idx.FashionMNIST": "snnexp.data.idx.FashionMNISTData",
    "snnexp.data.cifar10.CIFAR10": "snnexp.data.cifar10.CIFAR10Data",
}


def renamed(cfg: DictConfig) -> DictConfig:
    """A saved run's config with its dataset class under today's name (RENAMED), in place."""
    target = OmegaConf.select(cfg, "dataset._target_")
    if target in RENAMED:
        cfg.dataset._target_ = RENAMED[target]
    return cfg


def stamp() -> dict[str, Any]:
    """{"version": the installed snnexp, "format": RUN_FORMAT}: plain values (weights_only loads)."""
    return {"version": __version__, "format": RUN_FORMAT}


class StampCheckpoints(Callback):
    """Writes `stamp()` into every checkpoint Lightning saves (checkpoint["snnexp"])."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint[STAMP_KEY] = stamp()


def check_compatible(found: Any, source: Path) -> None:
    """Refuse what an snnexp of another RUN_FORMAT wrote (or one from before the stamp existed)."""
    if not isinstance(found, dict) or "format" not in found:
        raise ConfigError(
            f"{source} has no snnexp version stamp: it was written by an snnexp older than the run format "
            f"{RUN_FORMAT} of this snnexp {__version__}. Train the run again with this version "
            f"(the saved config is in the run dir's .hydra/config.yaml).")
    if found["format"] != RUN_FORMAT:
        raise ConfigError(
            f"{source} was written by snnexp {found.get('version')} (run format {found['format']}); this snnexp "
            f"{__version__} reads run format {RUN_FORMAT}. Load it with snnexp {found.get('version')}, "
            f"or train the run again with this version.")
