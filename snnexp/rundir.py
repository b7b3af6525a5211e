"""A run owns its run dir: nothing another run wrote is ever overwritten, and two runs never share one.

A run takes an exclusive lock (flock) on `<run dir>/.lock` before it writes anything and holds it
until its process ends, so a second run into the same dir, started at the same moment or later,
stops before any work. A dir that already holds a run's files (results.json, metrics.csv,
checkpoints/, .hydra/config.yaml) is refused too, whatever that run's status: to continue it, resume
it (into a new dir); to redo it, delete it. Hydra's own writes do not get there first: conf/config.yaml
sets `hydra.output_subdir: null` and snnexp.context writes `.hydra/` once the dir is claimed.

The one run allowed into a dir that holds a run is that run itself, requeued by SLURM
(snnexp.slurm.requeued_into): it continues from its own checkpoint.
"""
from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from snnexp.errors import ConfigError, refuse

LOCK = ".lock"
RUN_FILES = ("results.json", "metrics.csv", "checkpoints", ".hydra/config.yaml")
_held: dict[Path, int] = {}  # run dir -> the lock's file descriptor, held until release or exit


def writable_dir(path: Path, key: str = "hydra.run.dir") -> None:
    """Create `path` if needed and check a file can be written in it; else ConfigError naming `key`."""
    path = Path(path).absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test.{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"{key}={path} is invalid: it cannot be written ({e.strerror or e}); "
                          f"choose a {key} under a folder you can write to") from None


def claim(run_dir: Path, resume: Path | None = None, requeued: bool = False) -> None:
    """Make `run_dir` this run's own, or raise ConfigError saying why not and what to do.

    resume: the run dir this run continues (a resumed run writes to a new dir, never into the old one);
    requeued: this is the dir's own run, restarted by the scheduler (its files are its own).
    """
    run_dir = Path(run_dir).absolute()
    if resume is not None and Path(resume).absolute() == run_dir:
        raise ConfigError(f"resume={resume} with hydra.run.dir={run_dir} is invalid: a resumed run writes to a new "
                          f"run dir and leaves the old one as it was; drop hydra.run.dir (or give another one)")
    writable_dir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if run_dir in _held:  # this process claimed it already (a DDP launch re-enters the run)
        return
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        owner = os.pread(fd, 64, 0).decode(errors="replace").strip()
        os.close(fd)
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        raise ConfigError(f"hydra.run.dir={run_dir} is in use by a running run (process {owner or '?'}); "
                          f"give this run another hydra.run.dir, or wait for that one to end") from None
    existing = [name for name in RUN_FILES if (run_dir / name).exists()]
    if existing and not requeued:
        os.close(fd)  # releases the lock
        raise ConfigError(f"hydra.run.dir={run_dir} already holds a run ({', '.join(existing)}); nothing is "
                          f"overwritten: give this run another hydra.run.dir, continue that run with "
                          f"`python run.py resume={run_dir}` (into a new dir), or delete the dir")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[run_dir] = fd


def release(run_dir: Path) -> None:
    """Give the dir's lock back (the run ended); the dir stays owned by its files."""
    fd = _held.pop(Path(run_dir).absolute(), None)
    if fd is not None:
        os.close(fd)


class WritableDirs(Callback):
    """Hydra callback: an unwritable hydra.run.dir or hydra.sweep.dir is refused before Hydra's own mkdir
    (which would fail with a PermissionError traceback)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.sweep.dir, "hydra.sweep.dir")

    @staticmethod
    def _check(path: str, key: str) -> None:
        try:
            writable_dir(Path(path), key)
        except ConfigError as e:
            refuse(e)
