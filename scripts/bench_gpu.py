"""GPU benchmarks for scripts/device_check.sh: one JSON line per figure.

    python scripts/bench_gpu.py layer --impl snnexp [--sizes 4096,8192,16384] [--out figures.jsonl]
    python scripts/bench_gpu.py csnn [--batches 16,128] [--precisions 32,bf16-mixed] [--out ...]

`layer`: the Open Neuromorphic SNN benchmark's layer, Linear(n, n) + LIF on x [T=500, 16, n],
forward + backward (loss = spike sum), the median of --repeats timed calls after warm-up, each timed
with CUDA events around a synchronized call, and the peak CUDA memory. Every implementation
computes the same function (LIF, tau 2, input decayed, threshold 1, hard reset to 0, reset in the
same step) and the first call's spikes are saved (--spikes) so device_check.sh can check they are
equal across implementations. --impl: snnexp (its fused path for CUDA tensors), snnexp_loop (its
per-step reference: plain PyTorch autograd per step), spikingjelly (the backend named by
SJ_LIF_CUDA_IMPLEMENTATION=torch|cuda|triton, read when SpikingJelly is imported), snntorch
(Leaky, a Python loop over steps).
`csnn`: training samples/s of the Fang et al. 2021 network (experiment=fang_2021: two 128-channel
convolutions, T = 8) on Fashion-MNIST batches, fused path against the per-step reference, fp32 and
bf16-mixed, each the median over timed steps after warm-up.
Runs on the CPU too (--device cpu, small --sizes) so the script itself is tested without a GPU.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TAU = 2.0


def timed(fn: Callable[[], None], repeats: int, warmup: int, device: torch.device) -> list[float]:
    """Milliseconds per call; CUDA events on a GPU (synchronized), perf_counter on the CPU."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return times


@contextlib.contextmanager
def reference_path() -> Iterator[None]:
    """snnexp's neurons run their per-step reference loop (plain PyTorch autograd per step)."""
    from snnexp.neurons.base import SpikingNeuron

    saved = SpikingNeuron.charge_coefficients
    SpikingNeuron.charge_coefficients = lambda self: None  # no affine charge declared: the loop
    try:
        yield
    finally:
        SpikingNeuron.charge_coefficients = saved


def lif_layer(impl: str, n: int, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """x_seq [T, N, n] -> spikes [T, N, n] through Linear(n, n) + LIF, as `impl` computes it."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(n, n, bias=False).to(device)
    with torch.no_grad():  # currents of std ~1 for inputs in [0, 1]: a firing rate of some 10-20 %
        linear.weight.normal_(0.0, 2.0 / n ** 0.5)
    if impl in ("snnexp", "snnexp_loop"):
        from snnexp.neurons.lif import LIF

        neuron = LIF(tau=TAU, decay_input=True, reset="hard", v_reset=0.0).to(device)
        return lambda x: neuron(linear(x))
    if impl == "spikingjelly":
        from spikingjelly.activation_based import neuron as sj, surrogate

        node = sj.LIFNode(tau=TAU, decay_input=True, v_threshold=1.0, v_reset=0.0,
                          surrogate_function=surrogate.ATan(), step_mode="m").to(device)

        def run(x):
            node.reset()
            return node(linear(x))
        return run
    if impl == "snntorch":
        import snntorch
        from snntorch import surrogate as st_surrogate

        # mem = beta*mem + x/tau with beta = 1 - 1/tau is LIF with decayed input; reset to zero, same step
        leaky = snntorch.Leaky(beta=1 - 1 / TAU, threshold=1.0, spike_grad=st_surrogate.atan(),
                               reset_mechanism="zero", reset_delay=False).to(device)

        def run(x):
            current = linear(x) / TAU
            mem = torch.zeros_like(current[0])
            out = []
            for c in current:
                s, mem = leaky(c, mem)
                out.append(s)
            return torch.stack(out)
        return run
    raise SystemExit(f"unknown --impl {impl!r}")


def bench_layer(args: argparse.Namespace, emit: Callable[[dict], None]) -> None:
    device = torch.device(args.device)
    ctx = reference_path() if args.impl == "snnexp_loop" else contextlib.nullcontext()
    backend = None
    if args.impl == "spikingjelly":
        import os

        backend = os.environ.get("SJ_LIF_CUDA_IMPLEMENTATION", "auto")
    with ctx:
        for n in [int(s) for s in args.sizes.split(",")]:
            layer = lif_layer(args.impl, n, device)
            gen = torch.Generator(device=device).manual_seed(1)
            x = torch.rand(args.T, args.batch, n, device=device, generator=gen).requires_grad_(True)

            def step():
                s = layer(x)
                s.sum().backward()

            if args.spikes:  # the spikes of the first call, for the equality check across implementations
                with torch.no_grad():
                    s = layer(x)
                path = Path(args.spikes.format(n=n))
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.save(s.to(torch.bool).cpu(), path)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            try:
                times = timed(step, args.repeats, args.warmup, device)
            except Exception as e:  # e.g. a SpikingJelly backend that does not run on this machine
                emit({"figure": "layer", "impl": args.impl, "backend": backend, "neurons": n, "error": repr(e)[:300]})
                continue
            emit({"figure": "layer", "impl": args.impl, "backend": backend, "neurons": n, "T": args.T,
                  "batch": args.batch, "device": str(device), "median_ms": statistics.median(times),
                  "min_ms": min(times), "repeats": len(times),
                  "peak_mem_mb": torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else None})


def bench_csnn(args: argparse.Namespace, emit: Callable[[dict], None]) -> None:
    from snnexp.experiment import build
    from tests.helpers import compose_cfg

    device = torch.device(args.device)
    for batch in [int(b) for b in args.batches.split(",")]:
        for precision in args.precisions.split(","):
            for impl in ("fused", "loop"):
                cfg = compose_cfg(["experiment=fang_2021", f"dataset.batch_size={batch}", "logger=none",
                                   "deploy.num_threads=null" if device.type == "cpu" else "deploy=gpu"]
                                  + ([f"dataset.limit_train={batch * (args.steps + args.warmup)}"]))
                ctx = reference_path() if impl == "loop" else contextlib.nullcontext()
                with ctx:
                    parts = build(cfg)
                    learner = parts.learner.to(device)
                    if device.type == "cuda":
                        learner.model.to(memory_format=torch.channels_last)
                    optimizer = torch.optim.Adam(learner.parameters(), lr=1e-3)
                    loader = parts.datamodule.train_dataloader()
                    batches = [(x.to(device), y.to(device)) for x, y in loader][: args.steps + args.warmup]
                    dtype = torch.bfloat16 if precision.startswith("bf16") else None

                    def step(x, y):
                        optimizer.zero_grad(set_to_none=True)
                        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                            out = learner(x, stage="train")
                            loss = learner.loss(out.float(), y)
                        loss.backward()
                        optimizer.step()

                    times = []
                    for i, (x, y) in enumerate(batches):
                        t = timed(lambda: step(x, y), 1, 0, device)[0]
                        if i >= args.warmup:
                            times.append(t)
                ms = statistics.median(times)
                emit({"figure": "csnn_train", "network": "fang_2021", "impl": impl, "batch": batch,
                      "precision": precision, "T": int(cfg.T), "device": str(device), "median_ms_per_step": ms,
                      "samples_per_s": batch / (ms / 1e3), "steps": len(times)})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["layer", "csnn"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--impl", default="snnexp", help="layer: snnexp | snnexp_loop | spikingjelly | snntorch")
    ap.add_argument("--sizes", default="4096,8192,16384")
    ap.add_argument("--T", type=int, default=500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--spikes", default=None, help="layer: save the spikes to this path ({n} = neurons)")
    ap.add_argument("--batches", default="16,128")
    ap.add_argument("--precisions", default="32,bf16-mixed")
    ap.add_argument("--steps", type=int, default=20, help="csnn: timed training steps")
    ap.add_argument("--out", default=None, help="append JSON lines here (default: stdout only)")
    args = ap.parse_args(argv)

    def emit(record: dict) -> None:
        line = json.dumps(record)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")

    (bench_layer if args.what == "layer" else bench_csnn)(args, emit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
