"""The README's `make run` figures, measured: `python scripts/readme_figures.py [--render-only]`.

Runs the default experiment as `make run` does (`python run.py` from the repository root, no
overrides), times it from the command to its exit, reads the run's results.json and writes what it
found to docs/make_run.json; then rewrites the block between the README's `make-run-figures`
markers from that JSON. `--render-only` rewrites the block from the JSON without running (after a
change to the wording). tests/test_readme_figures.py checks that the block is exactly what the JSON
renders, so a hand edit of the figures fails.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FIGURES = ROOT / "docs" / "make_run.json"
BEGIN = "<!-- make-run-figures: written by scripts/readme_figures.py from docs/make_run.json; do not edit -->"
END = "<!-- /make-run-figures -->"


def measure() -> dict:
    """Run the default experiment once and collect its figures."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "run.py"], cwd=ROOT, capture_output=True, text=True)
    command_s = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"readme_figures: `python run.py` exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    last = proc.stdout.strip().splitlines()[-1]
    if not last.startswith("results: "):
        sys.exit(f"readme_figures: the run's last line names no results.json: {last!r}")
    results = json.loads((ROOT / last.removeprefix("results: ")).read_text())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.strip()
    return {
        "command": "make run",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "commit": commit,
        "cpus": os.cpu_count(),
        "load_average_before": round(load_before, 1),
        "command_s": round(command_s, 1),
        "run_wall_s": round(results["wall_s"], 1),
        "test_acc": round(results["test/acc"], 4),
        "threads": results["threads"],
        "epochs": results["train/epochs"],
        "samples": results["data/samples"],
        "train_samples_per_s": round(results["train/samples_per_s"]),
    }


def render(f: dict) -> str:
    """The README block for these figures (the markers included)."""
    n = f["samples"]
    return "\n".join([
        BEGIN,
        f"Measured by `python scripts/readme_figures.py` on {f['date']} (commit {f['commit']}, "
        f"{f['cpus']} CPU cores, load average {f['load_average_before']} before it started): "
        f"`{f['command']}` (its `python run.py`, the venv already built) took **{f['command_s']} s** from the "
        f"command to the result "
        f"(imports and the offline wandb run included; the run itself, results.json's `wall_s`: "
        f"{f['run_wall_s']} s, {f['train_samples_per_s']:,} training samples/s) and reached "
        f"**test accuracy {f['test_acc']:.4f}** with {f['threads']} torch thread(s) "
        f"({f['epochs']} epochs on {n['train']:,} training digits, {n['val']:,} validation, {n['test']:,} test). "
        f"The first `make run` on a fresh clone also builds the venv and compiles the fused kernel once.",
        END,
    ])


def rewrite_readme(figures: dict) -> None:
    text = README.read_text()
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not (sep and sep2):
        sys.exit(f"readme_figures: README.md lacks the markers {BEGIN!r} ... {END!r}")
    README.write_text(head + render(figures) + tail)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--render-only", action="store_true", help="rewrite the README block from docs/make_run.json")
    args = ap.parse_args(argv)
    if not args.render_only:
        FIGURES.write_text(json.dumps(measure(), indent=2) + "\n")
    rewrite_readme(json.loads(FIGURES.read_text()))
    print(render(json.loads(FIGURES.read_text())))


if __name__ == "__main__":
    main()
