"""Experiment trackers. The run dir's metrics.csv is always written; these add trackers.

wandb (offline unless an account is set up), TensorBoard and MLflow, the last two local: their
files go under the run dir (tensorboard/, mlflow.db), and the console's last lines say how to look.
"""
from __future__ import annotations

import netrc
import os
import warnings
from pathlib import Path

from pytorch_lightning.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger, WandbLogger

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
    logger = WandbLogger(project=project, name=name, save_dir=str(save_dir), mode=mode, tags=list(tags or []))
    # Lightning always passes anonymous=None, which wandb >= 0.19 warns about on every run ("has no effect").
    if getattr(logger, "_wandb_init", {}).get("anonymous", "unset") is None:
        del logger._wandb_init["anonymous"]
    return logger


def tensorboard_logger(save_dir: str | Path, name: str = "tensorboard") -> TensorBoardLogger:
    """Event files in <save_dir>/<name>/ (`tensorboard --logdir` it; a sweep's dir shows every job)."""
    return TensorBoardLogger(save_dir=str(save_dir), name=name, version="", default_hp_metric=False)


def mlflow_logger(save_dir: str | Path, experiment: str = "snnexp", run_name: str | None = None) -> MLFlowLogger:
    """An MLflow run in <save_dir>/mlflow.db, a local SQLite store (no server: `mlflow ui` reads it;
    MLflow 3 refuses its old folder store unless told otherwise)."""
    uri = f"sqlite:///{Path(save_dir).absolute() / 'mlflow.db'}"
    return MLFlowLogger(experiment_name=experiment, run_name=run_name, tracking_uri=uri)


def csv_logger(save_dir: str | Path) -> CSVLogger:
    """Writes <save_dir>/metrics.csv (one row per logging call) and hparams.yaml.

    Lightning warns "Previous log files in this directory will be deleted" whenever the folder is
    not empty, as a fresh run dir is (it holds .hydra/); it deletes only an old metrics.csv, so
    the warning is kept for that case alone (the writer is created here, where we know which).
    """
    logger = CSVLogger(save_dir=str(save_dir), name="", version="")
    with warnings.catch_warnings():
        if not (Path(save_dir) / "metrics.csv").exists():
            warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")
        logger.experiment  # noqa: B018 (creates the writer, which checks the folder)
    return logger


def finish(loggers: list[Logger]) -> list[str]:
    """Close trackers (wandb's run must end before the next job of a sweep starts).

    Returns one line per tracker saying where its data went (replaces wandb's own summary).
    """
    notes = []
    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            run = logger.experiment
            notes.append(wandb_note(run))
            run.finish()
        elif isinstance(logger, TensorBoardLogger):
            logger.finalize("success")
            notes.append(f"tensorboard: tensorboard --logdir {_short(Path(logger.log_dir))}")
        elif isinstance(logger, MLFlowLogger):
            logger.finalize("success")
            notes.append(f"mlflow: mlflow ui --backend-store-uri {logger._tracking_uri}")
    return [n for n in notes if n]


def wandb_note(run) -> str:
    """`wandb: offline run in <dir> (upload it with: wandb sync <dir>)`, or the online run's URL."""
    if getattr(run, "disabled", False) or not hasattr(run, "dir"):
        return ""
    if run.offline:
        folder = _short(Path(run.dir).parent)  # <save_dir>/wandb/offline-run-<time>-<id>/files -> the run folder
        return f"wandb: offline run, upload it with: wandb sync {folder}"
    return f"wandb: {run.url}"


def _short(path: Path) -> Path:
    """`path` relative to the current folder when it lies below it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path
