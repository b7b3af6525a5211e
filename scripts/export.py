"""Export a trained run: `python scripts/export.py RUN_DIR --to nir [--dt 1e-4] [--avg-pool avg|sum] [--out PATH]`.

Writes RUN_DIR/export/net.nir (or --out): the float model of the run's checkpoints/last.ckpt as a NIR
graph (`snnexp.deploy.nir.export_nir`: chains, residual and recurrent networks). Prints the path. Exit 2
with a message for a model NIR cannot express (max-pool, reset by subtraction, ...).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snnexp.errors import ConfigError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--to", choices=["nir"], default="nir")
    ap.add_argument("--dt", type=float, default=1e-4, help="seconds per time step in the graph (default 1e-4)")
    ap.add_argument("--avg-pool", choices=["avg", "sum"], default="avg",
                    help="sum: average pools as SumPool2d with 1/window folded in (for Norse 1.1)")
    ap.add_argument("--out", type=Path, default=None, help="default: RUN_DIR/export/net.nir")
    args = ap.parse_args(argv)
    import snnexp

    try:
        out = snnexp.export(args.run_dir, args.to, args.out, args.dt, args.avg_pool)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
