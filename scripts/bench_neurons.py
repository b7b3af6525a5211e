"""Benchmark: neuron layers and csnn BPTT training on this machine's CPU.

    python scripts/bench_neurons.py            # snnexp only
    make bench-peers                           # also snnTorch and SpikingJelly, same shapes, same process setup

Prints, for each neuron on x [T=32, N=64, 4096]: forward+backward time (best of
N repeats, as timeit) and the peak extra resident memory of one forward+backward (each case in
a fresh process, so peaks don't mix); then csnn BPTT training samples/s on
[T=8, N=64, 1, 28, 28] (conv 1->32, pool, conv 32->32, pool, linear -> 10, Adam,
cross-entropy on the mean firing rate), with ReLU in place of the neurons as the
"layers alone" reference. Each case runs with and without snnexp's allocator
tuning (snnexp/runtime.py); peers are measured the same two ways.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHAPE = (32, 64, 4096)
NEURON_CASES = ["snnexp-if", "snnexp-lif", "snnexp-plif", "snnexp-lif-loop", "snntorch-leaky", "spikingjelly-lif"]
CSNN_CASES = ["snnexp-lif", "snnexp-lif-m", "snnexp-lif-nchw", "snnexp-lif-pool-after", "snnexp-relu",
              "snnexp-relu-nchw", "snntorch-leaky", "spikingjelly-lif"]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def timed(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)  # best of N: robust to other processes on a shared 2-core machine (as timeit)


# -- neuron layers -------------------------------------------------------------------------
def neuron_fn(case: str, x):
    import torch

    if case.startswith("snnexp"):
        from snnexp.neurons import IF, LIF, PLIF

        kind = case.split("-")[1]
        n = {"if": IF, "lif": lambda: LIF(tau=2.0), "plif": lambda: PLIF(init_tau=2.0)}[kind]()
        if case.endswith("-loop"):  # the reference path: autograd through the step function
            return lambda: n.run_loop(x, n.initial_state(x[0]))[0].sum().backward()
        return lambda: n(x).sum().backward()
    if case == "snntorch-leaky":
        import snntorch as snn
        from snntorch import surrogate

        lif = snn.Leaky(beta=0.5, spike_grad=surrogate.atan(), reset_mechanism="subtract")

        def run():
            mem = lif.init_leaky()
            spikes = []
            for x_t in x:
                s, mem = lif(x_t, mem)
                spikes.append(s)
            torch.stack(spikes).sum().backward()
        return run
    if case == "spikingjelly-lif":
        from spikingjelly.activation_based import functional, neuron, surrogate

        lif = neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), step_mode="m")

        def run():
            functional.reset_net(lif)
            lif(x).sum().backward()
        return run
    raise ValueError(case)


def bench_neuron(case: str, repeats: int) -> dict:
    import torch

    x = torch.rand(*SHAPE).requires_grad_()
    fn = neuron_fn(case, x)
    base = rss_mb()
    fn()  # first forward+backward: the peak
    peak = peak_rss_mb() - base
    return {"ms": 1e3 * timed(fn, repeats), "peak_mb": peak}


# -- csnn training -------------------------------------------------------------------------
def csnn_step_fn(case: str):
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(0)
    x_img = torch.rand(64, 1, 28, 28)
    y = torch.randint(0, 10, (64,))
    gen = torch.Generator().manual_seed(0)

    from snnexp.encoding import poisson_encode

    if case.startswith("snnexp"):
        from snnexp.models import CSNN
        from snnexp.neurons import LIF

        neuron = (lambda **kw: nn.ReLU()) if case.startswith("snnexp-relu") else LIF
        model = CSNN(neuron, in_shape=(1, 28, 28), num_classes=10, channels=(32, 32), batch_norm=False,
                     pool_first="-pool-after" not in case, step_mode="m" if case.endswith("-m") else "s",
                     channels_last="-nchw" not in case)
        forward = model
    elif case == "snntorch-leaky":
        import snntorch as snn
        from snntorch import surrogate

        sg = surrogate.atan()
        conv1, conv2, fc = nn.Conv2d(1, 32, 3, padding=1), nn.Conv2d(32, 32, 3, padding=1), nn.Linear(32 * 7 * 7, 10)
        lif1, lif2, lif3 = (snn.Leaky(beta=0.5, spike_grad=sg) for _ in range(3))
        model = nn.ModuleList([conv1, conv2, fc, lif1, lif2, lif3])

        def forward(x_seq):
            m1, m2, m3 = lif1.init_leaky(), lif2.init_leaky(), lif3.init_leaky()
            out = []
            for x_t in x_seq:
                s1, m1 = lif1(F.max_pool2d(conv1(x_t), 2), m1)
                s2, m2 = lif2(F.max_pool2d(conv2(s1), 2), m2)
                s3, m3 = lif3(fc(s2.flatten(1)), m3)
                out.append(s3)
            return torch.stack(out)
    elif case == "spikingjelly-lif":
        from spikingjelly.activation_based import functional, layer, neuron, surrogate

        def lif():
            return neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan())
        model = nn.Sequential(
            layer.Conv2d(1, 32, 3, padding=1), layer.MaxPool2d(2), lif(),
            layer.Conv2d(32, 32, 3, padding=1), layer.MaxPool2d(2), lif(),
            layer.Flatten(), layer.Linear(32 * 7 * 7, 10), lif())
        functional.set_step_mode(model, "m")

        def forward(x_seq):
            functional.reset_net(model)
            return model(x_seq)
    else:
        raise ValueError(case)

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        x_seq = poisson_encode(x_img, 8, generator=gen)  # [T, N, 1, 28, 28]
        opt.zero_grad()
        loss = F.cross_entropy(forward(x_seq).mean(0), y)
        loss.backward()
        opt.step()
    return step


def bench_csnn(case: str, repeats: int) -> dict:
    step = csnn_step_fn(case)
    return {"samples_per_s": 64 / timed(step, repeats)}


# -- driver --------------------------------------------------------------------------------
def child(section: str, case: str, repeats: int, threads: int) -> None:
    import torch

    from snnexp.runtime import tune_allocator

    tuned = tune_allocator()
    torch.set_num_threads(threads)
    out = bench_neuron(case, repeats) if section == "neuron" else bench_csnn(case, repeats)
    out["allocator_tuned"] = tuned
    print(json.dumps(out))


def available(case: str) -> bool:
    lib = case.split("-")[0]
    if lib == "snnexp":
        return True
    module = {"snntorch": "snntorch", "spikingjelly": "spikingjelly"}[lib]
    probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
    return probe.returncode == 0


def run_case(section: str, case: str, tuned: bool, repeats: int, threads: int) -> dict | None:
    env = {**os.environ, "SNNEXP_MALLOC_TUNING": "1" if tuned else "0"}
    cmd = [sys.executable, __file__, "--child", section, case, "--repeats", str(repeats), "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        print(f"  {case}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=2, metavar=("SECTION", "CASE"), help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if args.child:
        child(*args.child, args.repeats, args.threads)
        return
    import torch

    print(f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, best of {args.repeats}")
    figures: dict = {"neuron": {}, "csnn": {}}
    print(f"\nNeuron layer forward+backward on x{list(SHAPE)} (float32):")
    print(f"  {'case':<22}{'tuned ms':>10}{'peak MB':>10}{'untuned ms':>12}{'peak MB':>10}")
    for case in NEURON_CASES:
        if not available(case):
            print(f"  {case:<22}not installed (make bench-peers)")
            continue
        on = run_case("neuron", case, True, args.repeats, args.threads)
        off = run_case("neuron", case, False, max(3, args.repeats // 3), args.threads)
        figures["neuron"][case] = {"tuned": on, "untuned": off}
        if on and off:
            print(f"  {case:<22}{on['ms']:>10.1f}{on['peak_mb']:>10.0f}{off['ms']:>12.1f}{off['peak_mb']:>10.0f}")
    print("\ncsnn BPTT training on [T=8, N=64, 1, 28, 28] (conv 1->32, pool, conv 32->32, pool, linear -> 10):")
    print(f"  {'case':<22}{'tuned samples/s':>17}{'untuned samples/s':>19}")
    for case in CSNN_CASES:
        if not available(case):
            print(f"  {case:<22}not installed (make bench-peers)")
            continue
        on = run_case("csnn", case, True, args.repeats, args.threads)
        off = run_case("csnn", case, False, max(3, args.repeats // 2), args.threads)
        figures["csnn"][case] = {"tuned": on, "untuned": off}
        if on and off:
            print(f"  {case:<22}{on['samples_per_s']:>17.0f}{off['samples_per_s']:>19.0f}")
    print("\nsnnexp-lif: the default csnn (whole network one step at a time, NHWC); -m: layer by layer over"
          "\nT*N frames; -nchw: PyTorch's default layout; -pool-after: pool the spikes instead of the current;"
          "\n-relu: the same layers with ReLU; -loop: autograd through lif_step (the reference path the fused"
          "\none is tested against). Peers use their defaults (NCHW), conv -> pool -> neuron like snnexp-lif.")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
