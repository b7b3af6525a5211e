"""Export a trained run: `python scripts/export.py RUN_DIR --to nir [--dt 1e-4] [--avg-pool avg|sum] [--out PATH]`.

Writes RUN_DIR/export/net.nir (or --out): the float model of the run's checkpoints/last.ckpt as a NIR
graph (`snnexp.deploy.nir.export_nir`). Prints the path. Exit 2 with a message for a model NIR cannot
express (max-pool, reset by subtraction, ...).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snnexp.errors import ConfigError  # noqa: E402


def _load_run(run_dir: Path):
    """(model, in_shape) of a run dir, rebuilt from .hydra/config.yaml and checkpoints/last.ckpt.

    PRIVATE STOPGAP: to be replaced by `snnexp.load(run_dir)` (issue 12, part 1) once it lands.
    """
    import torch
    from omegaconf import OmegaConf, open_dict

    from snnexp.experiment import build

    config, ckpt = run_dir / ".hydra" / "config.yaml", run_dir / "checkpoints" / "last.ckpt"
    for path in (config, ckpt):
        if not path.is_file():
            raise ConfigError(f"{run_dir} is not a finished run dir: {path.relative_to(run_dir)} is missing")
    cfg = OmegaConf.load(config)
    with open_dict(cfg):  # build on the CPU whatever the run deployed to (no Lava, no CUDA needed)
        cfg.deploy = {"_target_": "snnexp.deploy.cpu.CPUTarget"}
        cfg.logger = {}
    parts = build(cfg)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    parts.learner.load_state_dict(state)
    return parts.model.eval(), tuple(parts.datamodule.in_shape)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--to", choices=["nir"], default="nir")
    ap.add_argument("--dt", type=float, default=1e-4, help="seconds per time step in the graph (default 1e-4)")
    ap.add_argument("--avg-pool", choices=["avg", "sum"], default="avg",
                    help="sum: average pools as SumPool2d with 1/window folded in (for Norse 1.1)")
    ap.add_argument("--out", type=Path, default=None, help="default: RUN_DIR/export/net.nir")
    args = ap.parse_args(argv)
    from snnexp.deploy.nir import export_nir

    try:
        model, in_shape = _load_run(args.run_dir)
        out = args.out or args.run_dir / "export" / "net.nir"
        export_nir(model, in_shape, out, args.dt, args.avg_pool)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
