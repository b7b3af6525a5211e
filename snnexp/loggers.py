"""Experiment trackers. The run dir's metrics.csv is always written; these add trackers."""
from __future__ import annotations

import netrc
import os
from pathlib import Path

from pytorch_lightning.loggers import CSVLogger, Logger, WandbLogger

WANDB_MODES = ("auto", "online", "offline", "disabled")


def wandb_has_credentials() -> bool:
    """True when an API key is set (WANDB_API_KEY) or stored by `wandb login` (~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_logger(save_dir: str | Path, project: str = "snnexp", name: str | None = None,
                 mode: str = "auto", tags: list[str] | None = None) -> WandbLogger:
    """A WandbLogger that never needs the network unless an account is configured.

    mode "auto": $WANDB_MODE if set, else online with credentials, else offline
    (files under <run dir>/wandb/, upload later with `wandb sync`).
    """
    from snnexp.errors import check

    check(mode in WANDB_MODES, "logger.wandb.mode", mode, f"choose one of {list(WANDB_MODES)}")
    if mode == "auto":
        mode = os.environ.get("WANDB_MODE") or ("online" if wandb_has_credentials() else "offline")
    return WandbLogger(project=project, name=name, save_dir=str(save_dir), mode=mode, tags=list(tags or []))


def csv_logger(save_dir: str | Path) -> CSVLogger:
    """Writes <save_dir>/metrics.csv (one row per logging call) and hparams.yaml."""
    return CSVLogger(save_dir=str(save_dir), name="", version="")


def finish(loggers: list[Logger]) -> None:
    """Close trackers (wandb's run must end before the next job of a sweep starts)."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger.experiment.finish()
