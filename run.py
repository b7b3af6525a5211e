"""Entry point: `python run.py [group=option ...] [key=value ...]`, `-m` for sweeps."""
from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from snnexp.errors import config_error

log = logging.getLogger("snnexp")


@hydra.main(version_base="1.3", config_path="snnexp/conf", config_name="config")
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
            log.exception("job failed: %s", error or e)
            return float("nan")
        if error is None:
            raise
        print(f"snnexp: configuration error: {error}\n"
              f"Fix the value on the command line (e.g. `python run.py key=value`) or in snnexp/conf/.", file=sys.stderr)
        raise SystemExit(2) from None
    metric = cfg.get("optimized_metric")
    return results.get(metric) if metric else None


if __name__ == "__main__":
    from snnexp.sweep import FailureReport

    try:
        main()
    except BaseException:  # the launcher died (e.g. a worker killed by the OS): still list the failed jobs
        FailureReport.report_unfinished()
        raise
    if FailureReport.failures:
        sys.exit(1)
