"""Event-emulation throughput: images/s and events per image of saccade, flicker and rotation.

    .venv/bin/python scripts/bench_events.py [--images 2048] [--threads 2] [--repeats 3] [--baseline REV]
                                             [--root /usr/share/datasets/fashion-mnist]

Uses Fashion-MNIST's test images when found (as snnexp's dataset=fashion_mnist finds them), else
random sparse images; converts them as a datamodule does (`convert`, frames T = 8) and prints one
line per emulation: the median of --repeats runs, in images per second of wall time and per
CPU-second (process time, all threads: what the load of other processes changes least; on an
idle machine, wall images/s ~ threads x images per CPU-second when the threads scale). --baseline REV also loads the emulation code
of git revision REV (its snnexp/encoding modules, as a package beside this one) and
times it interleaved with the current code, run by run, so both see the same machine load
(other processes share it: the load average is printed at the start and the end).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from snnexp.encoding import emulation  # noqa: E402
from snnexp.runtime import tune_allocator  # noqa: E402

NAMES = ("Saccade", "Flicker", "Rotation")


def images(n: int, root: str | None) -> tuple[np.ndarray, str]:
    from snnexp.data.files import candidates
    from snnexp.data.idx import SPLITS, find_idx, read_idx

    for folder in candidates("fashion-mnist", root):
        path = find_idx(folder, SPLITS["test"][0])
        if path:
            x = read_idx(path)[:n].astype(np.float32)[:, None] / 255.0
            return x, f"Fashion-MNIST test images from {folder}"
    rng = np.random.default_rng(0)
    return (rng.random((n, 1, 28, 28)) * (rng.random((n, 1, 28, 28)) > 0.7)).astype(np.float32), "random images"


def baseline(rev: str):
    """The emulation module of git revision `rev`, importable beside the current one (as snnexp_baseline)."""
    folder = Path(tempfile.mkdtemp(prefix="snnexp-baseline-")) / "snnexp_baseline"
    (folder / "encoding").mkdir(parents=True)
    for part in ("__init__.py", "encoding/__init__.py"):
        (folder / part).write_text("")
    names = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", rev, "snnexp/encoding/"],
                           check=True, capture_output=True, text=True).stdout.split()
    for name in (Path(n).name for n in names if n.endswith(".py") and not n.endswith("__init__.py")):
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:snnexp/encoding/{name}"],
                              check=True, capture_output=True, text=True).stdout
        text = text.replace("from snnexp.encoding import", "from snnexp_baseline.encoding import")
        (folder / "encoding" / name).write_text(text.replace("snnexp.encoding.", "snnexp_baseline.encoding."))
    sys.path.insert(0, str(folder.parent))
    import snnexp_baseline.encoding.emulation as old

    return old


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline", default=None, help="git revision to time beside the current code")
    ap.add_argument("--root", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tune_allocator()
    x, source = images(args.images, args.root)
    versions = {"new": emulation}
    if args.baseline:
        versions = {f"old ({args.baseline})": baseline(args.baseline), **versions}
    print(f"{len(x)} {source}; torch threads {args.threads}; {args.repeats} repeats; load average {os.getloadavg()}")
    for name in NAMES:
        seconds: dict[str, list[float]] = {v: [] for v in versions}
        cpu: dict[str, list[float]] = {v: [] for v in versions}
        frames = {}
        for label, module in versions.items():
            getattr(module, name)(T=8).convert(x[:64])  # warm-up (the compiled path compiles or loads once)
        for _ in range(args.repeats):
            for label, module in versions.items():
                enc = getattr(module, name)(T=8)
                t0, c0 = time.perf_counter(), time.process_time()
                frames[label] = enc.convert(x)
                seconds[label].append(time.perf_counter() - t0)
                cpu[label].append(time.process_time() - c0)
        events = emulation.__dict__[name](T=8).events(torch.as_tensor(x[:512])).counts().float()
        same = all(np.array_equal(f, frames["new"]) for f in frames.values())
        for label in versions:
            rate = [len(x) / s for s in seconds[label]]
            per_cpu = statistics.median(len(x) / s for s in cpu[label])
            print(f"{name.lower():9s} {label:14s} {statistics.median(rate):8.0f} images/s "
                  f"(runs {', '.join(f'{r:.0f}' for r in rate)}); {per_cpu:.0f} images per CPU-second")
        print(f"{'':9s} events/image {events.mean():.0f} (median {events.median():.0f}); frames "
              f"{tuple(frames['new'].shape[1:])}" + ("; identical frames" if len(versions) > 1 and same else "")
              + ("; FRAMES DIFFER" if not same else ""))
    print(f"load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
