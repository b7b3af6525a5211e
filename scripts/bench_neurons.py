"""Benchmark: neuron layers and csnn BPTT training on this machine's CPU.

    python scripts/bench_neurons.py                      # snnexp only
    python scripts/bench_neurons.py --baseline OLD_TREE  # also an older snnexp, interleaved with this one
    make bench-peers                                     # also snnTorch and SpikingJelly, same shapes

Each case runs in a fresh process (so peak memory does not mix) and times `--repeats` calls
after 2 warm-up calls; the whole list of cases runs `--rounds` times, interleaved (and with
--baseline, every case runs with both trees one after the other), and the figure is the median
over rounds of each round's median. --clock cpu times the process's CPU time instead of the wall
clock: with --threads 1 that is what the step costs when other processes share the cores.

Sections:
- neuron: one layer forward+backward on x [T=32, N=64, 4096] (the loss is the spike sum), with
  the peak extra resident memory of the first call; "copy-floor" clones the layer's 3 tensors
  (input, spikes, input gradient) once, what any implementation must at least move.
- csnn: BPTT training samples/s on [T=8, N=64, 1, 28, 28] with one Adam step, cross-entropy on
  the mean output. "issue-*" is SpikingJelly's / Fang et al.'s tutorial network: conv 1->32,
  neuron, max-pool, conv 32->32, neuron, max-pool, linear -> 10, neuron; no BatchNorm, no bias,
  the neuron before the pool (snnexp's pool_first=false). "default-*" is snnexp's csnn with
  pool_first=true (and bias). -relu: the same layers with ReLU (what the layers cost without
  neurons); -nchw: PyTorch's default layout, else channels-last; -m: layer by layer over T*N
  frames, else the whole network one time step at a time (snnexp's default for csnn).
- resnet: BPTT training samples/s of ResNet-18 in its CIFAR form (conv3x3 stem, no max-pool; 11.2 M
  parameters) on direct input [T=4, N=32, 3, 32, 32], one Adam step, cross-entropy on the mean output.
  "resnet18-lif": snnexp's model=resnet (LIF, multi-step, channels-last); "resnet18-relu[-nchw]": the
  same layers with ReLU; "spikingjelly-resnet18": SpikingJelly's spiking_resnet18 (MultiStep LIFNode,
  tau 2, ATan; its torch backend, the one on a CPU) given the same CIFAR stem.
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
SHAPE = (32, 64, 4096)
NEURON_CASES = ["snnexp-if", "snnexp-lif", "snnexp-plif", "snnexp-lif-loop", "copy-floor", "snntorch-leaky",
                "spikingjelly-lif"]
CSNN_CASES = ["issue-lif", "issue-relu", "issue-lif-nchw", "issue-relu-nchw", "issue-lif-m", "issue-relu-m",
              "default-lif", "default-relu", "default-lif-nchw", "default-relu-nchw", "default-lif-m",
              "snntorch-leaky", "spikingjelly-lif"]
RESNET_CASES = ["resnet18-lif", "resnet18-relu", "resnet18-relu-nchw", "spikingjelly-resnet18"]
RESNET_SHAPE = (4, 32, 3, 32, 32)  # T, N, C, H, W


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def timed(fn, repeats: int, clock) -> float:
    """Median seconds of `repeats` calls after 2 warm-up calls."""
    fn()
    fn()
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times)


# -- neuron layers -------------------------------------------------------------------------
def neuron_fn(case: str, x):
    import torch

    if case == "copy-floor":
        s, g = x.detach().clone(), x.detach().clone()
        return lambda: [t.clone() for t in (x.detach(), s, g)]
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


def bench_neuron(case: str, repeats: int, clock) -> dict:
    import torch

    x = torch.rand(*SHAPE).requires_grad_()
    fn = neuron_fn(case, x)
    base = rss_mb()
    fn()  # first forward+backward: the peak
    peak = peak_rss_mb() - base
    return {"ms": 1e3 * timed(fn, repeats, clock), "peak_mb": peak}


# -- csnn training -------------------------------------------------------------------------
def snnexp_csnn(case: str):
    from torch import nn

    from snnexp.models import CSNN
    from snnexp.neurons import LIF

    neuron = (lambda **kw: nn.ReLU()) if "-relu" in case else LIF
    issue = case.startswith("issue")
    return CSNN(neuron, in_shape=(1, 28, 28), num_classes=10, channels=(32, 32), batch_norm=False, bias=not issue,
                pool_first=not issue, step_mode="m" if case.endswith("-m") else "s",
                channels_last="-nchw" not in case)


def peer_csnn(case: str):
    """The issue network in snnTorch / SpikingJelly, their defaults (NCHW), neuron before pool."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    if case == "snntorch-leaky":
        import snntorch as snn
        from snntorch import surrogate

        sg = surrogate.atan()
        conv1, conv2 = nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.Conv2d(32, 32, 3, padding=1, bias=False)
        fc = nn.Linear(32 * 7 * 7, 10, bias=False)
        lif1, lif2, lif3 = (snn.Leaky(beta=0.5, spike_grad=sg) for _ in range(3))
        model = nn.ModuleList([conv1, conv2, fc, lif1, lif2, lif3])

        def forward(x_seq):
            m1, m2, m3 = lif1.init_leaky(), lif2.init_leaky(), lif3.init_leaky()
            out = []
            for x_t in x_seq:
                s1, m1 = lif1(conv1(x_t), m1)
                s2, m2 = lif2(conv2(F.max_pool2d(s1, 2)), m2)
                s3, m3 = lif3(fc(F.max_pool2d(s2, 2).flatten(1)), m3)
                out.append(s3)
            return torch.stack(out)
        return model, forward
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    def lif():
        return neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan())
    model = nn.Sequential(
        layer.Conv2d(1, 32, 3, padding=1, bias=False), lif(), layer.MaxPool2d(2),
        layer.Conv2d(32, 32, 3, padding=1, bias=False), lif(), layer.MaxPool2d(2),
        layer.Flatten(), layer.Linear(32 * 7 * 7, 10, bias=False), lif())
    functional.set_step_mode(model, "m")

    def forward(x_seq):
        functional.reset_net(model)
        return model(x_seq)
    return model, forward


def csnn_step_fn(case: str):
    import torch
    import torch.nn.functional as F

    from snnexp.encoding import poisson_encode

    torch.manual_seed(0)
    x_img = torch.rand(64, 1, 28, 28)
    y = torch.randint(0, 10, (64,))
    gen = torch.Generator().manual_seed(0)
    if case.startswith(("issue", "default")):
        model = forward = snnexp_csnn(case)
    else:
        model, forward = peer_csnn(case)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        x_seq = poisson_encode(x_img, 8, generator=gen)  # [T, N, 1, 28, 28]
        opt.zero_grad()
        loss = F.cross_entropy(forward(x_seq).mean(0), y)
        loss.backward()
        opt.step()
    return step


def bench_csnn(case: str, repeats: int, clock) -> dict:
    step = csnn_step_fn(case)
    base = rss_mb()
    step()
    peak = peak_rss_mb() - base
    return {"samples_per_s": 64 / timed(step, repeats, clock), "peak_mb": peak}


def resnet_model(case: str):
    """(model, forward) for a resnet case: forward maps x_seq [T, N, 3, 32, 32] to [T, N, 10]."""
    import torch
    from torch import nn

    if case.startswith("resnet18"):
        from snnexp.models.resnet import ResNet
        from snnexp.neurons import LIF

        neuron = (lambda **kw: nn.ReLU()) if "-relu" in case else LIF
        model = ResNet(neuron, (3, 32, 32), 10, depth=18, channels_last="-nchw" not in case)
        return model, model
    import types

    # spiking_resnet imports torchvision only to download pretrained weights (not used here); torchvision's
    # wheels do not load beside this torch, so it gets torch.hub's equivalent
    tv = types.ModuleType("torchvision._internally_replaced_utils")
    tv.load_state_dict_from_url = torch.hub.load_state_dict_from_url
    sys.modules.setdefault("torchvision", types.ModuleType("torchvision"))
    sys.modules["torchvision._internally_replaced_utils"] = tv
    from spikingjelly.activation_based import functional, layer, neuron, surrogate
    from spikingjelly.activation_based.model.spiking_resnet import spiking_resnet18

    model = spiking_resnet18(spiking_neuron=neuron.LIFNode, surrogate_function=surrogate.ATan(), num_classes=10)
    model.conv1 = layer.Conv2d(3, 64, 3, 1, 1, bias=False)  # the CIFAR stem, as snnexp's on 32x32 images
    model.maxpool = nn.Identity()
    functional.set_step_mode(model, "m")

    def forward(x_seq):
        functional.reset_net(model)
        return model(x_seq)
    return model, forward


def bench_resnet(case: str, repeats: int, clock) -> dict:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    T, N = RESNET_SHAPE[:2]
    x_seq = torch.rand(N, *RESNET_SHAPE[2:]).unsqueeze(0).expand(T, -1, -1, -1, -1)  # direct input
    y = torch.randint(0, 10, (N,))
    model, forward = resnet_model(case)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        F.cross_entropy(forward(x_seq).mean(0), y).backward()
        opt.step()
    base = rss_mb()
    step()
    peak = peak_rss_mb() - base
    return {"samples_per_s": N / timed(step, repeats, clock), "peak_mb": peak}


# -- driver --------------------------------------------------------------------------------
def child(section: str, case: str, repeats: int, threads: int, clock_name: str) -> None:
    import torch

    from snnexp.runtime import tune_allocator

    tuned = tune_allocator()
    torch.set_num_threads(threads)
    clock = time.process_time if clock_name == "cpu" else time.perf_counter
    bench = {"neuron": bench_neuron, "csnn": bench_csnn, "resnet": bench_resnet}[section]
    out = bench(case, repeats, clock)
    out["allocator_tuned"] = tuned
    print(json.dumps(out))


def available(case: str) -> bool:
    lib = case.split("-")[0]
    if lib not in ("snntorch", "spikingjelly"):
        return True
    probe = subprocess.run([sys.executable, "-c", f"import {lib}"], capture_output=True)
    return probe.returncode == 0


def uses_snnexp(case: str) -> bool:
    return case.startswith(("snnexp", "issue", "default", "resnet18"))


def run_case(section: str, case: str, tree: Path, args) -> dict | None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, __file__, "--child", section, case, "--repeats", str(args.repeats),
           "--threads", str(args.threads), "--clock", args.clock]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        print(f"  {case} ({tree}): failed\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(section: str, cases: list[str], args) -> dict:
    """{tree label: {case: {metric: median over rounds}}}, the rounds interleaved."""
    trees = {"new": ROOT} | ({"old": args.baseline.resolve()} if args.baseline else {})
    runs: dict = {label: {c: [] for c in cases} for label in trees}
    for _ in range(args.rounds):
        for case in cases:
            for label, tree in trees.items():
                if label == "old" and not uses_snnexp(case):
                    continue  # peers do not change with snnexp
                out = run_case(section, case, tree, args)
                if out:
                    runs[label][case].append(out)
    return {label: {c: {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "allocator_tuned"}
                    for c, rs in per_case.items() if rs}
            for label, per_case in runs.items()}


def print_table(title: str, figures: dict, metric: str, unit: str, fmt: str) -> None:
    print(title)
    labels = list(figures)
    head = "".join(f"{lb + ' ' + unit:>20}{'peak MB':>9}" for lb in labels)
    print(f"  {'case':<20}{head}" + (f"{'new/old':>9}" if len(labels) == 2 else ""))
    for case in figures["new"]:
        row = ""
        for lb in labels:
            f = figures[lb].get(case)
            row += f"{format(f[metric], fmt):>20}{f['peak_mb']:>9.0f}" if f else f"{'-':>20}{'':>9}"
        if len(labels) == 2 and case in figures["old"]:
            row += f"{figures['new'][case][metric] / figures['old'][case][metric]:>9.2f}"
        print(f"  {case:<20}{row}")


def print_ratios(figures: dict) -> None:
    """Each LIF network against the same layers with ReLU: in its own mode/layout and the best ReLU."""
    for label, f in figures.items():
        for net in ("issue", "default"):
            relus = {c: v["samples_per_s"] for c, v in f.items() if c.startswith(net + "-relu")}
            if not relus:
                continue
            best = max(relus, key=relus.get)
            for case, v in f.items():
                twin = case.replace("-lif", "-relu")
                if case.startswith(net + "-lif") and twin in relus:
                    print(f"  [{label}] {case:<18} {v['samples_per_s'] / relus[twin]:.2f}x {twin}, "
                          f"{v['samples_per_s'] / relus[best]:.2f}x the best ReLU ({best})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=2, metavar=("SECTION", "CASE"), help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per process (median)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds over all cases (median)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    ap.add_argument("--baseline", type=Path, help="a checkout of another snnexp to compare with, interleaved")
    ap.add_argument("--only", choices=["neuron", "csnn", "resnet"], help="one section only")
    ap.add_argument("--cases", help="comma-separated subset of the cases, e.g. issue-lif,issue-relu")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if args.child:
        child(*args.child, args.repeats, args.threads, args.clock)
        return
    import torch

    print(f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, {args.clock} clock, "
          f"median of {args.rounds} rounds x {args.repeats} calls, load average {os.getloadavg()[0]:.1f}")
    figures: dict = {}
    for section, cases in (("neuron", NEURON_CASES), ("csnn", CSNN_CASES), ("resnet", RESNET_CASES)):
        if args.only and section != args.only:
            continue
        if args.cases:
            cases = [c for c in cases if c in args.cases.split(",")]
        missing = [c for c in cases if not available(c)]
        if missing:
            print(f"not installed (make bench-peers): {', '.join(missing)}")
        figures[section] = measure(section, [c for c in cases if c not in missing], args)
    if "neuron" in figures:
        print_table(f"\nNeuron layer forward+backward on x{list(SHAPE)} (float32), ms:", figures["neuron"],
                    "ms", "ms", ".1f")
        for label, f in figures["neuron"].items():
            if "copy-floor" in f and "snnexp-lif" in f:
                print(f"  [{label}] snnexp-lif = {f['snnexp-lif']['ms'] / f['copy-floor']['ms']:.2f}x the copy floor")
    if "csnn" in figures:
        print_table("\ncsnn BPTT training on [T=8, N=64, 1, 28, 28], samples/s:", figures["csnn"],
                    "samples_per_s", "samples/s", ".0f")
        print_ratios(figures["csnn"])
    if "resnet" in figures:
        print_table(f"\nResNet-18 (CIFAR form) BPTT training on {list(RESNET_SHAPE)}, samples/s:", figures["resnet"],
                    "samples_per_s", "samples/s", ".1f")
        for label, f in figures["resnet"].items():
            relus = {c: v["samples_per_s"] for c, v in f.items() if "-relu" in c}
            if "resnet18-lif" in f and relus:
                best = max(relus, key=relus.get)
                lif = f["resnet18-lif"]["samples_per_s"]
                print(f"  [{label}] resnet18-lif = {lif / relus[best]:.2f}x the best ReLU twin ({best})"
                      + (f", {lif / f['spikingjelly-resnet18']['samples_per_s']:.2f}x SpikingJelly's"
                         if "spikingjelly-resnet18" in f else ""))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
