"""DDP under Hydra's multirun (`-m`): every job of a sweep gets its own process group.

Lightning's DDP launcher starts the extra processes as `sys.argv` plus `hydra.run.dir=<run.dir>`
(lightning_fabric's `_hydra_subprocess_cmd`), which under `-m` is the whole sweep again, and it
leaves LOCAL_RANK, WORLD_SIZE, MASTER_* in the parent's environment, so the next job of the sweep
believes its processes were launched externally and waits for ranks that have exited.
lightning-hydra-template's users report both. `one_job_per_process_group()` fixes them for a job.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import open_dict, read_write

LAUNCHER_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


@contextlib.contextmanager
def one_job_per_process_group() -> Iterator[None]:
    """Around one job: DDP children run this job alone, and the job leaves no DDP state behind."""
    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    launched_here = "LOCAL_RANK" not in os.environ  # else SLURM/torchrun made the processes: leave them be
    argv = list(sys.argv)
    if multirun:
        hydra_cfg = HydraConfig.get()
        sys.argv = [sys.argv[0], *hydra_cfg.overrides.task]  # this job's overrides, without -m
        with open_dict(hydra_cfg), read_write(hydra_cfg):
            hydra_cfg.run.dir = hydra_cfg.runtime.output_dir  # the children write into the job's dir
    try:
        yield
    finally:
        sys.argv = argv
        if multirun and launched_here:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()
            for key in LAUNCHER_ENV:
                os.environ.pop(key, None)
