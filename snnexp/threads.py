"""How many threads a run may really use: not the node's core count that torch assumes.

torch starts one intra-op thread per core of the machine. A SLURM job or a container given 2 of a
node's 64 cores still gets 64 threads, and on a machine where another process keeps a core busy,
torch's 2 threads wait on each other: the default run took 36.9 s beside one CPU-bound process
against 10.2 s alone (issue 27; docs/notes.md has the command and today's figures). So `auto`
counts the CPUs this process may run on (its affinity, which SLURM and taskset set), caps them by
the cgroup's CPU quota (docker --cpus, SLURM's cgroup plugin), and leaves out the cores other
processes keep busy when the run starts (sampled from /proc/stat for a quarter of a second).
A different thread count can change the last digits of a result: float sums are split differently.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

SAMPLE_S = 0.25


def allowed_cpus() -> int:
    """CPUs this process may use: its affinity, capped by the cgroup (v2 cpu.max, v1 cfs quota) quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_quota()
    return max(1, min(cpus, math.ceil(quota))) if quota else cpus


def cgroup_quota() -> float | None:
    """The cgroup's CPU quota in CPUs (e.g. 1.5), or None without one."""
    v2 = _read("/sys/fs/cgroup/cpu.max")
    if v2:
        quota, _, period = v2.partition(" ")
        if quota != "max" and period.strip():
            return int(quota) / int(period)
        return None
    quota, period = _read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), _read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    if quota and period and int(quota) > 0:
        return int(quota) / int(period)
    return None


def busy_elsewhere(seconds: float = SAMPLE_S) -> float:
    """Cores kept busy by other processes right now: the machine's busy time over `seconds`, less this
    process's own, in CPUs (0.0 where /proc/stat cannot be read)."""
    first, own_first = _machine_busy(), _own_cpu()
    if first is None:
        return 0.0
    start = time.perf_counter()
    time.sleep(seconds)
    last, own_last = _machine_busy(), _own_cpu()
    wall = time.perf_counter() - start
    if last is None or wall <= 0:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return max(0.0, ((last - first) / ticks - (own_last - own_first)) / wall)


def auto_threads() -> int:
    """`deploy.num_threads=auto`: the CPUs allowed, less those other processes keep busy, at least 1."""
    allowed = allowed_cpus()
    if allowed == 1:
        return 1
    return max(1, allowed - round(busy_elsewhere()))


def _machine_busy() -> int | None:
    """Busy clock ticks since boot of the CPUs this process may use (/proc/stat's cpuN lines, without
    idle and iowait): on a 64-core node a job's 2 cores, not the other jobs' 62."""
    stat = _read("/proc/stat")
    if not stat:
        return None
    try:
        mine = {f"cpu{i}" for i in os.sched_getaffinity(0)}
    except (AttributeError, OSError):
        mine = None
    total = 0
    for line in stat.splitlines()[1:]:
        name, *values = line.split()
        if not name.startswith("cpu") or (mine is not None and name not in mine):
            continue
        user, nice, system, idle, iowait, irq, softirq, steal = ([int(v) for v in values] + [0] * 8)[:8]
        total += user + nice + system + irq + softirq + steal
    return total


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None
