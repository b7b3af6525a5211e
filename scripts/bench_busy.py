"""The default run alone and beside a CPU-bound process, per thread setting (issue 27's busy-machine figure).

    .venv/bin/python scripts/bench_busy.py [--repeats 3] [--settings auto,null,1] [--extra logger=none ...]

Each point is one `python run.py logger=none deploy.num_threads=<setting>` (the default run: digits,
Poisson, LIF csnn, BPTT, 20 epochs) in a fresh process, timed by wall clock; `busy` starts one process
spinning on one core (`while True: pass`) before the run and stops it after. The settings and the
alone/busy cases are interleaved, so a drift of the machine's speed spreads over all of them.
Prints one JSON line per run, then a markdown table of the medians and each setting's busy/alone ratio.
Run it on an otherwise idle machine: other work counts as 'busy' too.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPIN = "while True:\n    pass\n"


def one_run(setting: str, busy: bool, extra: list[str]) -> tuple[float, dict]:
    """`setting`: a deploy.num_threads value, with `@passive` appended for OMP_WAIT_POLICY=PASSIVE."""
    threads, _, policy = setting.partition("@")
    env = {**os.environ, **({"OMP_WAIT_POLICY": policy.upper()} if policy else {})}
    env.pop("OMP_NUM_THREADS", None)
    spinner = subprocess.Popen([sys.executable, "-c", SPIN]) if busy else None
    try:
        time.sleep(0.5 if busy else 0.0)  # the spinner is running before the run starts
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, str(ROOT / "run.py"), "logger=none", f"deploy.num_threads={threads}",
                   "trainer.enable_progress_bar=false", f"hydra.run.dir={tmp}/run", *extra]
            start = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, env=env)
            wall = time.perf_counter() - start
            results = json.loads((Path(tmp) / "run" / "results.json").read_text())
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return wall, results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--settings", default="auto,null,null@passive,1",
                    help="deploy.num_threads values, comma-separated; @passive: with OMP_WAIT_POLICY=PASSIVE")
    ap.add_argument("--extra", nargs="*", default=[], help="more run.py overrides")
    args = ap.parse_args()
    settings = args.settings.split(",")
    walls: dict[tuple[str, bool], list[float]] = {}
    for repeat in range(args.repeats):
        for setting in settings:
            for busy in (False, True):
                wall, results = one_run(setting, busy, args.extra)
                walls.setdefault((setting, busy), []).append(wall)
                print(json.dumps({"setting": setting, "busy": busy, "repeat": repeat, "wall_s": round(wall, 2),
                                  "threads": results.get("threads"), "test/acc": results.get("test/acc")}),
                      flush=True)
    print("\n| deploy.num_threads | alone (s) | beside a busy core (s) | busy / alone |")
    print("|---|---:|---:|---:|")
    for setting in settings:
        alone, busy = statistics.median(walls[setting, False]), statistics.median(walls[setting, True])
        print(f"| {setting} | {alone:.1f} | {busy:.1f} | {busy / alone:.2f}x |")


if __name__ == "__main__":
    main()
