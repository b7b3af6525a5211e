"""The command line: `snnexp [group=option ...] [key=value ...]` (installed by pip), or `python run.py ...`
from a checkout; `-m` for sweeps.

Exit codes: 0 done; 2 bad input (one message naming the key or file, no traceback: snnexp's own
checks and Hydra's refusals of the command line alike); 1 a failure (a bug: its traceback) or a
sweep with failed jobs; 128 + N a run stopped by signal N (snnexp.status).
"""
from __future__ import annotations

import logging
import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from snnexp.errors import config_error, refuse

log = logging.getLogger("snnexp")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from snnexp.api import run  # after Hydra parsed the command line: `--help` stays fast
    from snnexp.signals import Interrupted
    from snnexp.slurm import current_job

    sweeping = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        results = run(cfg)
    except Interrupted as e:  # SIGTERM or Ctrl+C: results.json says `interrupted` and how to continue
        if sweeping and current_job() is not None:  # a scheduler job: the sweep goes on, and its report lists it
            log.error("job interrupted: %s", e.detail)
            return float("nan")
        print(f"snnexp: {e.detail}", file=sys.stderr)
        raise SystemExit(e.exit_code) from None  # 143 for SIGTERM, 130 for SIGINT, as a shell reports them
    except Exception as e:
        error = config_error(e)
        if sweeping:  # the job's results.json holds the error; the other jobs go on
            log.error("job failed: %s", error or f"{type(e).__name__}: {e}")
            _traceback_to_run_log()
            return float("nan")
        if error is None:
            raise
        refuse(error)
    metric = cfg.get("optimized_metric")
    return results.get(metric) if metric else None


def _traceback_to_run_log() -> None:
    """A failed sweep job's traceback goes to its run.log only: the console keeps one line per job."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "traceback of the failure:", (), sys.exc_info())
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def hydra_refusal(e: BaseException) -> str | None:
    """Hydra's refusal of the command line (an unknown key or option, a malformed override), in one message."""
    from hydra.errors import HydraException, InstantiationException

    if not isinstance(e, HydraException) or isinstance(e, InstantiationException):
        return None
    lines = [str(e).split("Config search path:")[0].strip()]  # the option list stays, Hydra's search path goes
    if e.__cause__ is not None and str(e.__cause__).strip():
        lines.append(str(e.__cause__).strip().splitlines()[0])
    return "\n".join(line for line in lines if line)


def entry() -> None:
    """What `snnexp` and `python run.py` run: the Hydra app, its refusals as exit 2, a sweep's failures as exit 1."""
    from snnexp.sweep import FailureReport

    from snnexp.errors import ConfigError
    from snnexp.moved import refuse_moved

    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its errors to here (else it prints them and exits 1)
    try:
        refuse_moved(sys.argv[1:])  # before Hydra, which would only say the old key is not in the config
    except ConfigError as e:
        refuse(e)
    try:
        main()
    except Exception as e:
        message = hydra_refusal(e)
        if message is None:
            FailureReport.report_unfinished()
            raise
        refuse(message)
    except BaseException:  # the launcher died (e.g. a worker killed by the OS): still list the failed jobs
        FailureReport.report_unfinished()
        raise
    if FailureReport.failures:
        sys.exit(1)


if __name__ == "__main__":
    entry()
