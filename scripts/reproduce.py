"""Reproduce a paper preset's table: `python scripts/reproduce.py PRESET [--quick] [--seeds N] [key=value ...]`.

Runs the preset's whole sweep (the `reproduce:` block of snnexp/conf/experiment/<PRESET>.yaml: the
values it varies, its seeds, the metrics of its table, its deviations from the paper) as one
`run.py -m` multirun, then writes docs/results/<PRESET>/ (docs/results/<PRESET>_quick/ with
--quick): table.md, table.csv, table.png (with the paper column) and README.md, which gives the
exact command, commit, machine, wall time, data used, every deviation from the paper and the
published reference figures. Extra `key=value` arguments go to every run (e.g.
dataset=fashion_mnist where the paper's dataset is not on the machine; they are listed as
deviations). `--dry-run` prints the command only; `--from DIR` rebuilds the table from a finished
sweep without running it again.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from omegaconf import OmegaConf  # noqa: E402

from snnexp.status import failure  # noqa: E402
from snnexp.tables import collect, group, markdown, plot, write_csv  # noqa: E402


def preset_config(preset: str, overrides: list[str]) -> Any:
    from hydra import compose, initialize_config_dir

    from snnexp.moved import refuse_moved

    refuse_moved(overrides)  # a key set in its old place: named, before Hydra's "not in struct"
    with initialize_config_dir(config_dir=str(ROOT / "snnexp" / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=[f"experiment={preset}", *overrides])


def sweep_arguments(block: Any, seeds: int) -> list[str]:
    """`key=v1,v2` for every swept key, and seed=0,...,N-1."""
    args = [f"{k}={','.join(str(v) for v in values)}" for k, values in (block.get("sweep") or {}).items()]
    if seeds > 1:
        args.append("seed=" + ",".join(str(s) for s in range(seeds)))
    return args


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, {gpu}; Python {platform.python_version()}, torch {torch.__version__}"


def commit() -> str:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return rev + (" (with uncommitted changes)" if dirty else "")


def data_used(runs: list) -> str:
    """Dataset and split sizes as the runs report them (results.json `data/samples`, `choices`)."""
    seen = []
    for run in runs:
        r = run.results
        name = (r.get("choices") or {}).get("dataset", "?")
        sizes = r.get("data/samples") or {}
        text = f"{name}: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items() if v is not None)
        if text not in seen:
            seen.append(text)
    return "; ".join(seen) or "unknown"


def deviations(cfg: Any, block: Any, overrides: list[str], preset_cfg: Any = None) -> list[str]:
    """The preset's own list, plus what the extra overrides change (e.g. another dataset than the paper's)."""
    lines = [str(d) for d in block.get("deviations") or []]
    paper = cfg.get("paper") or {}
    paper_sets = list((paper.get("values") or {}).keys()) if "dataset" in list(paper.get("by") or []) else []
    for item in overrides:
        key, _, value = item.partition("=")
        if key in EXECUTION_KEYS:  # how the run executes, not what it computes
            continue
        if key == "dataset" and paper_sets and value not in paper_sets:
            lines.append(f"dataset={value} instead of the paper's {', '.join(paper_sets)}: the paper column is left "
                         f"empty and the paper's figures are listed apart, labelled with their dataset")
        else:
            before = OmegaConf.select(preset_cfg, key, default=None) if preset_cfg is not None else None
            lines.append(f"`{item}` given on top of the preset" + (f" (the preset: {before})" if before is not None else ""))
    return lines


EXECUTION_KEYS = {"deploy.num_threads", "dataset.num_workers", "trainer.enable_progress_bar"}


def references(block: Any) -> str:
    refs = block.get("references") or []
    if not refs:
        return ""
    lines = ["| source | dataset | setting | test accuracy (%) |", "|---|---|---|---:|"]
    for r in refs:
        lines.append(f"| {r.source} | {r.dataset} | {r.setting} | {r.value} |")
    return "\n".join(lines) + "\n"


def plot_curve(runs: list, metric: str, path: Path, title: str) -> Path | None:
    """`metric` against the epoch for every run (from its metrics.csv), e.g. the test accuracy per epoch."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    drawn = False
    for run in runs:
        csv_path = run.path / "metrics.csv"
        if not csv_path.is_file():
            continue
        with open(csv_path, newline="") as f:
            points = [(int(float(r["epoch"])), float(r[metric])) for r in csv.DictReader(f) if r.get(metric)]
        if points:
            ax.plot([p[0] + 1 for p in points], [p[1] for p in points], marker="o", label=run.path.name)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_docs(out: Path, sweep_dir: Path, preset: str, cfg: Any, block: Any, overrides: list[str], command: str,
               wall_s: float | None, label: str, preset_cfg: Any = None, revision: str | None = None,
               notes: list[str] | None = None) -> str:
    runs = collect([sweep_dir])
    metrics = list(block.get("metrics") or ["test/acc"])
    keys = list((block.get("sweep") or {}).keys()) or None
    rows = group(runs, metrics, keys)
    title = f"{preset} ({label})"
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(rows, metrics, "")
    (out / "table.md").write_text(table)
    write_csv(rows, metrics, out / "table.csv")
    plot(rows, metrics[0], out / "table.png", title)
    job_wall = sum(float(r.results.get("wall_s") or 0) for r in runs)
    failed = [r for r in runs if failure(r.results)]
    parts = [f"# {title}", "", str(block.get("about") or "").strip(), "",
             f"Command (from the repository root): `{command}`", "",
             f"- Commit: {revision or commit()}; table written {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
             f"- Machine: {machine()}",
             f"- Wall time: {wall_s / 60:.1f} min for the sweep" if wall_s is not None else
             "- Wall time: see each run's wall_s",
             f"- Sum of the runs' wall_s: {job_wall / 60:.1f} min over {len(runs)} run(s)"
             + (f", {len(failed)} failed" if failed else ""),
             f"- Data used: {data_used(runs)}",
             f"- Sweep dir: `{sweep_dir.relative_to(ROOT) if sweep_dir.is_relative_to(ROOT) else sweep_dir}`", "",
             "## Deviations from the paper", ""]
    parts += [f"- {d}" for d in deviations(cfg, block, overrides, preset_cfg) + list(notes or [])] or ["- none"]
    parts += ["", "## Results", "", table]
    if block.get("compared"):
        parts += [str(block.compared).strip(), ""]
    for name in block.get("copy_plots") or []:  # e.g. the learnt weights, from the first run that has them
        src = next((r.path / "plots" / name for r in runs if (r.path / "plots" / name).is_file()), None)
        if src is not None:
            shutil.copy(src, out / name)
            parts += [f"![{name}]({name})", f"({name} of `{src.parent.parent.name}`)", ""]
    if block.get("curve"):
        curve = plot_curve(runs, str(block.curve), out / "curve.png", title)
        if curve:
            parts += [f"![{block.curve} per epoch](curve.png)", ""]
    refs = references(block)
    if refs:
        parts += ["## Published figures (for comparison; note their datasets)", "", refs]
    text = "\n".join(parts) + "\n"
    (out / "README.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("preset", help="a file name in snnexp/conf/experiment/ (without _quick)")
    ap.add_argument("overrides", nargs="*", help="key=value for every run")
    ap.add_argument("--quick", action="store_true", help="run <preset>_quick, the short variant")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per setting (default: the preset's)")
    ap.add_argument("--out", type=Path, default=None, help="folder of the table (default docs/results/<preset>[_quick])")
    ap.add_argument("--label", default=None,
                    help='what the table is, in its title (default "full settings", or "QUICK variant")')
    ap.add_argument("--dry-run", action="store_true", help="print the command, run nothing")
    ap.add_argument("--note", action="append", default=[],
                    help="a line for the deviations list (why an override was given); repeatable")
    ap.add_argument("--from", dest="from_dir", type=Path, default=None, help="a finished sweep dir: only rebuild the docs")
    args = ap.parse_args(argv)
    preset = args.preset + ("_quick" if args.quick else "")
    if not (ROOT / "snnexp" / "conf" / "experiment" / f"{preset}.yaml").is_file():
        ap.error(f"no preset {preset!r} in snnexp/conf/experiment/")
    cfg = preset_config(preset, args.overrides)
    block = cfg.get("reproduce") or OmegaConf.create({})
    seeds = args.seeds if args.seeds is not None else int(block.get("seeds") or 1)
    out = args.out or ROOT / "docs" / "results" / preset
    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    sweep_dir = args.from_dir or ROOT / "outputs" / "reproduce" / preset / stamp
    given = {o.split("=", 1)[0] for o in args.overrides}  # a key the user sets replaces the preset's sweep of it
    swept = [a for a in sweep_arguments(block, seeds) if a.split("=", 1)[0] not in given]
    run_args = ["-m", f"experiment={preset}", *swept, *args.overrides, "logger=none",
                "trainer.enable_progress_bar=false"]
    command = "python run.py " + " ".join(shlex.quote(a) for a in run_args)
    if args.dry_run:
        print(command)
        return 0
    wall_s = None
    status = 0
    revision = commit()  # the code the runs use, recorded before they start
    if args.from_dir is None:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log = sweep_dir / "reproduce.log"
        print(f"{command}\n  -> {sweep_dir} (log: {log})", flush=True)
        start = time.perf_counter()
        with open(log, "w") as f:
            status = subprocess.call([sys.executable, str(ROOT / "run.py"), *run_args, f"hydra.sweep.dir={sweep_dir}"],
                                     cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
        wall_s = time.perf_counter() - start
        (sweep_dir / "reproduce.json").write_text(json.dumps({"command": command, "wall_s": wall_s, "exit": status,
                                                              "commit": revision}))
    elif (args.from_dir / "reproduce.json").is_file():
        info = json.loads((args.from_dir / "reproduce.json").read_text())
        command, wall_s, revision = info["command"], info["wall_s"], info.get("commit", revision)
    label = args.label or ("QUICK variant" if args.quick else "full settings")
    preset_cfg = preset_config(preset, [])
    print(write_docs(out, sweep_dir, preset, cfg, block, args.overrides, command, wall_s, label, preset_cfg, revision,
                     args.note))
    print(f"wrote {out}/README.md, table.md, table.csv, table.png")
    return status


if __name__ == "__main__":
    sys.exit(main())
