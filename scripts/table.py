"""Paper table from sweeps: `python scripts/table.py outputs/multirun/<date>/<time> [more dirs] [--metrics ...]`.

Collects every results.json under the given dirs, groups runs by the keys the
sweep varied (seed excluded: it is averaged over), and writes table.md,
table.csv and table.png (mean ± std over seeds, the paper's number where the
preset stores one) into --out (default: the first dir). Prints the markdown.
`--metrics neurobench` shows NeuroBench's columns (activation sparsity, ACs, MACs, energy,
footprint, connection sparsity); `--metrics nir` the deploy=nir agreement per simulator.
Jobs that failed, were killed (results.json still `started`) or left an unreadable results.json
count as failed in their row and are listed; an unreadable results.json also makes the exit code 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snnexp.sweep import failed_jobs  # noqa: E402
from snnexp.tables import METRIC_SETS, collect, expand_metrics, group, markdown, plot, write_csv  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+", type=Path, help="run dirs or multirun dirs")
    ap.add_argument("--metrics", default="test/acc",
                    help="comma-separated results.json keys, shell globs (deploy/nir/*/acc) or named sets "
                         f"({', '.join(METRIC_SETS)}: {'; '.join(f'{k} = ' + ','.join(v) for k, v in METRIC_SETS.items())})"
                         " (default test/acc)")
    ap.add_argument("--by", default=None, help="comma-separated override keys to group by (default: the swept ones)")
    ap.add_argument("--out", type=Path, default=None, help="folder for table.md/.csv/.png (default: first dir)")
    ap.add_argument("--title", default="")
    args = ap.parse_args(argv)
    for d in args.dirs:
        if not d.exists():
            ap.error(f"{d} does not exist")
    try:
        runs = collect(args.dirs)
    except FileNotFoundError as e:
        print(f"table.py: {e}: give the run dirs or sweep dirs of runs (outputs/multirun/<date>/<time>)", file=sys.stderr)
        return 2
    metrics = expand_metrics([m for m in args.metrics.split(",") if m], runs)
    rows = group(runs, metrics, args.by.split(",") if args.by else None)
    out = args.out or (args.dirs[0] if args.dirs[0].is_dir() else args.dirs[0].parent)
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(rows, metrics, args.title)
    failures = [f for d in args.dirs if d.is_dir() for f in failed_jobs(d)]
    if failures:
        text += "\nFailed jobs:\n" + "".join(f"- {p}: {e}\n" for p, e in failures)
    (out / "table.md").write_text(text)
    write_csv(rows, metrics, out / "table.csv")
    plot(rows, metrics[0], out / "table.png", args.title)
    print(text)
    print(f"wrote {out / 'table.md'}, {out / 'table.csv'}, {out / 'table.png'}")
    unreadable = [r for r in runs if r.results.get("unreadable")]
    for r in unreadable:  # counted as failed in the table; the file itself is bad input: say so, exit 2
        print(f"table.py: {r.results['error']}", file=sys.stderr)
    return 2 if unreadable else 0


if __name__ == "__main__":
    sys.exit(main())
