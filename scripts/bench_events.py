"""Event-emulation throughput: images/s and events per image of saccade, flicker and rotation.

    .venv/bin/python scripts/bench_events.py [--images 2048] [--threads 2] [--root /usr/share/datasets/fashion-mnist]

Uses Fashion-MNIST's test images when found (as snnexp's dataset=fashion_mnist finds them), else
random sparse images; converts them as a datamodule does (`convert`, frames T = 8) and prints one
line per emulation. The figures depend on the machine's load: `uptime` is printed with them.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from snnexp.encoding.emulation import Flicker, Rotation, Saccade
from snnexp.runtime import tune_allocator


def images(n: int, root: str | None) -> tuple[np.ndarray, str]:
    from snnexp.data.idx import SPLITS, find_idx, read_idx
    from snnexp.data.files import candidates

    for folder in candidates("fashion-mnist", root):
        path = find_idx(folder, SPLITS["test"][0])
        if path:
            x = read_idx(path)[:n].astype(np.float32)[:, None] / 255.0
            return x, f"Fashion-MNIST test images from {folder}"
    rng = np.random.default_rng(0)
    return (rng.random((n, 1, 28, 28)) * (rng.random((n, 1, 28, 28)) > 0.7)).astype(np.float32), "random images"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--root", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tune_allocator()
    x, source = images(args.images, args.root)
    print(f"{len(x)} {source}; torch threads {args.threads}; load average {os.getloadavg()}")
    for cls in (Saccade, Flicker, Rotation):
        enc = cls(T=8)
        enc.convert(x[:256])  # warm-up
        t0 = time.perf_counter()
        frames = enc.convert(x)
        seconds = time.perf_counter() - t0
        events = enc.events(torch.as_tensor(x[:512])).counts().float()
        print(f"{cls.__name__.lower():9s} {len(x) / seconds:8.0f} images/s   events/image {events.mean():7.0f} "
              f"(median {events.median():.0f})   frames {tuple(frames.shape[1:])}")


if __name__ == "__main__":
    main()
