"""The low-latency ANN->SNN table (issue 15): rate / QCFS / calibrated conversion against T.

    bash scripts/ann2snn_low_latency.sh                  # the runs (hours on a 2-core CPU)
    python scripts/ann2snn_low_latency.py [RUN_DIR ...]  # default: outputs/ann2snn_low_latency/*/

Writes docs/results/ann2snn_low_latency/: table.md/.csv/.png from scripts/table.py (one row per
run), and README.md with every network's accuracy and SynOps per sample against T, the papers'
CIFAR-10 figures beside them, and each run's command, data, epochs and wall time; acc_vs_T.png.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import table  # noqa: E402  (scripts/table.py)
from snnexp.viz.conversion import plot_acc_vs_T  # noqa: E402

OUT = ROOT / "docs" / "results" / "ann2snn_low_latency"
# The papers' numbers, on CIFAR-10 with VGG-16: not this data set or network, shown for scale.
PAPERS = [
    "Bu et al. 2022 (QCFS, ICLR), CIFAR-10, VGG-16: 93.96 % at T = 4 (as cited in issue 15; the paper's "
    "table was not reachable from this machine to re-check)",
    "Li et al. 2021 (calibration, ICML), CIFAR-10, VGG-16, T = 16: 64.52 % uncalibrated -> 93.30 % light, "
    "93.65 % advanced (mean of 5 seeds; the authors' README, github.com/yhhhli/SNN_Calibration)",
]


def curves(run: dict) -> list[tuple[str, dict[int, tuple[float, float]]]]:
    """(label, {T: (accuracy, SynOps per sample)}) for each SNN a run tested."""
    method = run.get("conversion/method", "rate")
    readout = _override(run, "model.readout") or "spikes"
    out = []
    for prefix, label in (("snn", _label(run, method)), ("base", f"{_override(run, 'learner/method/base') or 'rate'}"
                                                                    f", uncalibrated")):
        ts = sorted(int(k.rsplit("/T", 1)[1]) for k in run if k.startswith(f"{prefix}/test/acc/T"))
        if ts:
            out.append((f"{label} ({readout} readout)",
                        {t: (run[f"{prefix}/test/acc/T{t}"], run[f"{prefix}/test/synops/T{t}"]) for t in ts}))
    return out


def all_curves(runs: list[tuple[str, dict]]) -> list[tuple[str, str, dict[int, tuple[float, float]]]]:
    """(run name, label, curve) over the runs, each network once: the calibrate runs share their
    uncalibrated base (the same ANN and conversion), which would otherwise be listed twice."""
    seen, out = set(), []
    for name, run in runs:
        for label, c in curves(run):
            if (label, tuple(sorted(c.items()))) not in seen:
                seen.add((label, tuple(sorted(c.items()))))
                out.append((name, label, c))
    return out


def _label(run: dict, method: str) -> str:
    if method == "calibrate":
        base, mode = _override(run, "learner/method/base") or "rate", _override(run, "learner.method.mode") or "light"
        return f"{base} + {mode} calibration"
    if method == "qcfs":
        return f"QCFS L={_override(run, 'learner.method.levels') or 8}"
    return "rate"


def _override(run: dict, key: str) -> str | None:
    return next((o.split("=", 1)[1] for o in run.get("overrides", []) if o.split("=", 1)[0] == key), None)


def readme(runs: list[tuple[Path, dict]], notes: list[str] = ()) -> str:
    networks = all_curves(runs)
    Ts = sorted({t for _, _, c in networks for t in c})
    head = "| network | ANN | " + " | ".join(f"T={t}" for t in Ts) + " |"
    rule = "|---|---:|" + "---:|" * len(Ts)
    lines = ["# ANN->SNN at low latency: rate, QCFS and calibrated conversion against T", "",
             "csnn (conv 32 - BN - pool - IF, conv 32 - BN - pool - IF, linear) on Fashion-MNIST (54,000 training, "
             "6,000 validation, 10,000 test images), 20 ANN epochs, direct (analog) input, one seed. "
             "Made by `python scripts/ann2snn_low_latency.py` from the runs of `bash scripts/ann2snn_low_latency.sh`.",
             "", "## Test accuracy (%)", "", head, rule]
    for name, label, c in networks:
        ann = dict(runs)[name]["ann/test/acc"]
        lines.append(f"| {label} | {100 * ann:.2f} | " +
                     " | ".join(f"{100 * c[t][0]:.2f}" if t in c else "—" for t in Ts) + " |")
    lines += ["", "ANN: the run's own ANN (ReLU for rate and rate-based calibration, QCFS for QCFS).", "",
              "## SynOps per test sample (millions)", "", "| network | " + " | ".join(f"T={t}" for t in Ts) + " |",
              "|---|" + "---:|" * len(Ts)]
    for _, label, c in networks:
        lines.append(f"| {label} | " + " | ".join(f"{c[t][1] / 1e6:.3g}" if t in c else "—" for t in Ts) + " |")
    lines += ["", "## The papers (CIFAR-10, VGG-16: another data set and network)", ""]
    lines += [f"- {p}" for p in PAPERS]
    lines += ["", "## Runs", "", "| run | wall time | command |", "|---|---:|---|"]
    for name, run in runs:
        cmd = "python run.py " + " ".join(o for o in run.get("overrides", []) if not o.startswith("hydra."))
        lines.append(f"| {name} | {run['wall_s'] / 60:.1f} min | `{cmd}` |")
    lines += ["", "Wall times are on a shared 2-core CPU with other jobs running, one torch thread (the load: below).", ""]
    lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="*", type=Path)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--note", action="append", default=[], help="a line under the runs (e.g. the code they ran)")
    args = ap.parse_args(argv)
    dirs = args.dirs or sorted(p.parent for p in (ROOT / "outputs" / "ann2snn_low_latency").glob("*/results.json"))
    runs = [(d.name, json.loads((d / "results.json").read_text())) for d in dirs]
    runs = [(n, r) for n, r in runs if not r.get("error")]
    args.out.mkdir(parents=True, exist_ok=True)
    Ts = sorted({int(k.rsplit("/T", 1)[1]) for _, r in runs for k in r if k.startswith("snn/test/acc/T")})
    metrics = ["ann/test/acc"] + [f"snn/test/acc/T{t}" for t in Ts] + [f"base/test/acc/T{t}" for t in Ts] + ["wall_s"]
    table.main([*map(str, dirs), "--metrics", ",".join(metrics), "--out", str(args.out),
                "--by", "learner/method,learner.method.mode,model.readout", "--title", "ann2snn low latency"])
    (args.out / "README.md").write_text(readme(runs, args.note))
    flat = {f"{name}: {label}": c for name, label, c in all_curves(runs)}
    plot_acc_vs_T(max(r["ann/test/acc"] for _, r in runs), flat, args.out / "acc_vs_T.png",
                  title="csnn, Fashion-MNIST, 20 epochs (dashed: the best ANN)")
    print(f"wrote {args.out / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
