"""torch.profiler's top rows for one csnn case of scripts/bench_neurons.py (5 training steps, 1 thread).

    .venv/bin/python scripts/profile_csnn.py [CASE] [--tree OTHER_CHECKOUT]   # CASE default issue-lif

--tree profiles another snnexp checkout's code (e.g. the commit before a change) with this script.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", nargs="?", default="issue-lif")
    ap.add_argument("--tree", type=Path, default=ROOT, help="the snnexp checkout to import")
    ap.add_argument("--rows", type=int, default=10)
    args = ap.parse_args()
    sys.path[:0] = [str(args.tree.resolve()), str(ROOT / "scripts")]
    import torch
    from torch.profiler import ProfilerActivity, profile

    import bench_neurons
    from snnexp.runtime import tune_allocator

    tune_allocator()  # as bench_neurons.py and every run: else page faults of fresh buffers show in the ops
    torch.set_num_threads(1)
    step = bench_neurons.csnn_step_fn(args.case)
    for _ in range(3):  # warm-up: kernels built, allocator settled
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            step()
    print(f"{args.case}, code of {args.tree}, 5 training steps, 1 thread")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=40))


if __name__ == "__main__":
    main()
