"""Benchmark: peak memory and step time of one BPTT training step against T, per `learner.memory` mode.

    python scripts/bench_memory.py --model csnn --Ts 8,32,128,512 --modes full,checkpoint,online,tbptt

Every (mode, T) point runs in a fresh process (peak memory does not mix). Input: binary event frames
x_seq [T, batch, *in_shape] (default [T, 32, 2, 34, 34], N-MNIST's frame size; Bernoulli(--rate)),
built before the step, with its labels. The step: `BPTT.train_forward` in the mode, its backward,
one Adam step (cross-entropy on the mean output, logit_scale T), the model from the `model` config
group (`--set model.channels=[8]` etc. override it).

peak_mb: on the CPU, the peak resident memory during the first step above the resident memory just
before it (VmHWM reset through /proc/self/clear_refs, the heap's free memory released first with
malloc_trim), i.e. what the step adds to a process that already holds the model and the input
(input_mb; before_mb is the process before the step); on CUDA, torch.cuda.max_memory_allocated during the step
minus memory_allocated before it. step_s: the median of `--repeats` steps after the first (CUDA:
synchronised). One JSON line per point (model, mode, T, peak_mb, step_s, and more); a point that
fails (out of memory under --limit-mb, which sets RLIMIT_AS in the child like `ulimit -v`) prints
its error and peak_mb null. --plot writes peak_mb and step_s against T, one line per mode.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="csnn")
    ap.add_argument("--Ts", default="8,32,128,512")
    ap.add_argument("--modes", default="full,checkpoint,online,tbptt")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--in-shape", default="2,34,34")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--rate", type=float, default=0.05, help="input spike probability per pixel and step")
    ap.add_argument("--memory-steps", type=int, default=None, help="k (learner.memory_steps); default ~sqrt(T)")
    ap.add_argument("--set", action="append", default=[], help="a config override, e.g. model.step_mode=m")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="step_s as wall-clock or this process's CPU time (1 thread: what the step costs when "
                         "other processes share the cores)")
    ap.add_argument("--limit-mb", type=int, default=None, help="RLIMIT_AS of each point's process (ulimit -v)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per point")
    ap.add_argument("--out", type=Path, default=None, help="append the JSON lines here too")
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--replot", type=Path, default=None, help="only plot the JSON lines of this file to --plot")
    ap.add_argument("--one", nargs=2, metavar=("MODE", "T"), help=argparse.SUPPRESS)
    return ap.parse_args()


def main() -> None:
    args = parse()
    if args.one:
        print(json.dumps(point(args, args.one[0], int(args.one[1]))), flush=True)
        return
    if args.replot is not None:
        rows = [json.loads(line) for line in args.replot.read_text().splitlines() if line.startswith("{")]
        plot(rows, args.plot, args)
        return
    rows = []
    for T in [int(t) for t in args.Ts.split(",")]:
        for mode in args.modes.split(","):
            row = spawn(args, mode, T)
            rows.append(row)
            line = json.dumps(row)
            print(line, flush=True)
            if args.out is not None:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                with args.out.open("a") as f:
                    f.write(line + "\n")
    if args.plot is not None:
        plot(rows, args.plot, args)


def spawn(args: argparse.Namespace, mode: str, T: int) -> dict:
    """One point in a fresh process (its own peak memory)."""
    cmd = [sys.executable, __file__, "--one", mode, str(T)] + [a for a in sys.argv[1:] if a not in ("--one",)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT)}
    limit = None
    if args.limit_mb is not None:
        limit = lambda: resource.setrlimit(resource.RLIMIT_AS, (args.limit_mb << 20,) * 2)  # noqa: E731
    base = {"model": args.model, "mode": mode, "T": T}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout, preexec_fn=limit)
    except subprocess.TimeoutExpired:
        return {**base, "peak_mb": None, "step_s": None, "error": f"timeout after {args.timeout} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
    return {**base, "peak_mb": None, "step_s": None, "limit_mb": args.limit_mb,
            "error": f"exit {proc.returncode}: {tail}"}


def point(args: argparse.Namespace, mode: str, T: int) -> dict:
    import torch
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from snnexp.learners.bptt import BPTT
    from snnexp.learners.memory import segment_length
    from snnexp.runtime import tune_allocator

    tune_allocator()  # as run.py: keep freed blocks in the heap
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    in_shape = tuple(int(n) for n in args.in_shape.split(","))
    with initialize_config_dir(config_dir=str(ROOT / "snnexp" / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"model={args.model}", f"T={T}", *args.set])
    torch.manual_seed(0)
    model = instantiate(cfg.model, _partial_=True)(neuron=instantiate(cfg.neuron), in_shape=in_shape,
                                                  num_classes=args.classes).to(device)
    learner = BPTT(model, encoder=lambda x, generator=None: x, num_classes=args.classes, logit_scale=T,
                   memory=mode, memory_steps=args.memory_steps,
                   optimizer=lambda params: torch.optim.Adam(params, lr=1e-3))
    opt = learner.configure_optimizers()
    gen = torch.Generator(device=device).manual_seed(0)
    x_seq = torch.empty(T, args.batch, *in_shape, device=device)
    for x_t in x_seq:  # step by step: no [T, ...]-sized temporaries left in the heap before the measurement
        x_t.copy_(torch.rand(x_t.shape, generator=gen, device=device) < args.rate)
    y = torch.randint(args.classes, (args.batch,), generator=gen, device=device)
    cuda = device.type == "cuda"

    def step() -> float:
        if cuda:
            torch.cuda.synchronize()
        clock = time.process_time if args.clock == "cpu" and not cuda else time.perf_counter
        t0 = clock()
        opt.zero_grad(set_to_none=True)
        _, loss = learner.train_forward(x_seq, y, lambda value: value.backward())
        if not learner.windowed:
            loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()
        return clock() - t0

    learner.train()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        first = step()
        peak_mb = (torch.cuda.max_memory_allocated() - before) / 2**20
        rss_before_mb = before / 2**20
    else:
        _release_free_heap()
        rss_before_mb = _status_mb("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS now
        first = step()
        peak_mb = _status_mb("VmHWM") - rss_before_mb
    times = [step() for _ in range(args.repeats)]
    return {"figure": "memory", "model": args.model, "mode": mode, "T": T, "peak_mb": round(peak_mb, 1),
            "step_s": round(statistics.median(times), 4) if times else round(first, 4), "first_step_s": round(first, 4),
            "k": segment_length(mode, args.memory_steps, T) if mode != "full" else None,
            "batch": args.batch, "in_shape": list(in_shape), "before_mb": round(rss_before_mb, 1),
            "input_mb": round(x_seq.numel() * x_seq.element_size() / 2**20, 1),
            "device": args.device, "threads": args.threads, "clock": args.clock, "overrides": args.set}


def _release_free_heap() -> None:
    """Return the heap's free memory to the OS (glibc's malloc_trim), so that the step's peak counts what
    it needs, not what earlier frees happened to leave resident (snnexp.runtime keeps freed blocks)."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    name = ctypes.util.find_library("c")
    if name is not None and hasattr(ctypes.CDLL(name), "malloc_trim"):
        ctypes.CDLL(name).malloc_trim(0)


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"{key} not in /proc/self/status")


def plot(rows: list[dict], path: Path, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for mode in args.modes.split(","):
        pts = sorted((r for r in rows if r["mode"] == mode and r.get("peak_mb") is not None), key=lambda r: r["T"])
        for ax, key in zip(axes, ("peak_mb", "step_s")):
            ax.plot([r["T"] for r in pts], [r[key] for r in pts], marker="o", label=mode)
    for ax, label in zip(axes, ("peak memory of the step (MB)", "step time (s)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("T (time steps)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"{args.model}, input [T, {args.batch}, {args.in_shape}], {args.device}, {args.threads} thread(s)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"plot: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
