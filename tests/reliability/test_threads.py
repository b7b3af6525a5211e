"""deploy.num_threads=auto: the CPUs this process may use (affinity, cgroup quota), less those other processes keep busy."""
import subprocess
import sys
import time

import pytest

from snnexp import threads


def test_the_cgroup_quota_caps_the_affinity(monkeypatch):
    files = {"/sys/fs/cgroup/cpu.max": "150000 100000"}  # docker --cpus=1.5
    monkeypatch.setattr(threads, "_read", lambda path: files.get(path))
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert threads.cgroup_quota() == 1.5
    assert threads.allowed_cpus() == 2
    files["/sys/fs/cgroup/cpu.max"] = "max 100000"
    assert threads.cgroup_quota() is None and threads.allowed_cpus() == 4
    files.clear()
    files.update({"/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "100000", "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000"})
    assert threads.allowed_cpus() == 1  # cgroup v1


@pytest.mark.solo  # make test runs it alone, after the parallel tests: another worker would fill the free core
def test_a_core_kept_busy_by_another_process_is_left_out():
    idle = threads.busy_elsewhere(0.5)
    free = threads.allowed_cpus() - idle
    if free < 0.8:  # another job fills the cores: one more spinner would have no core to show on
        pytest.skip(f"{idle:.1f} of {threads.allowed_cpus()} cores are busy already: no free core to measure one more on")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        busy = threads.busy_elsewhere(0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert busy - idle > 0.6, (idle, busy)  # one spinning process: about one core more
