"""The deploy boundary to Lava: Lava's [N, X, T] layout (only here) and the Lava subprocess."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from snnexp.errors import ConfigError

RUNNER = Path(__file__).with_name("lava_runner.py")
ROOT = Path(__file__).resolve().parents[3]
DEFAULT_VENV = ROOT / ".venv-lava"


def to_lava_layout(x_seq: Tensor, image: bool) -> np.ndarray:
    """Time-first spikes -> Lava's sample-major, time-last layout.

    image: [T, N, C, H, W] -> [N, W, H, C, T] (Lava's (x, y, c)); otherwise
    [T, N, ...] -> [N, X, T] with X the features flattened in torch's order.
    """
    if image:
        return x_seq.permute(1, 4, 3, 2, 0).to(torch.uint8).contiguous().numpy()  # [T,N,C,H,W] -> [N,W,H,C,T]
    return x_seq.flatten(2).permute(1, 2, 0).to(torch.uint8).contiguous().numpy()  # [T,N,X] -> [N,X,T]


def from_lava_layout(spikes: np.ndarray) -> Tensor:
    """Lava's output [N, K, T] -> time-first [T, N, K]."""
    return torch.from_numpy(np.ascontiguousarray(spikes)).permute(2, 0, 1).double()


def lava_python(venv: str | Path | None = None) -> Path:
    """The Lava venv's interpreter; ConfigError saying how to build it when missing."""
    path = Path(venv) if venv else DEFAULT_VENV
    python = path / "bin" / "python"
    if not python.is_file():
        raise ConfigError(f"deploy.lava_venv={str(path)!r} is invalid: no Lava environment there; "
                          f"run `make lava` (needs a Python 3.10) or point deploy.lava_venv at one")
    return python


def run_lava(net_path: Path, spikes: np.ndarray, python: Path, work: Path, timeout_s: float = 1800
             ) -> tuple[np.ndarray, dict[str, float]]:
    """Run the exported network on spikes [N, X, T] in the Lava venv (one compile, one run).

    Returns (output spikes [N, K, T + 1]: Lava's reset step of the sample, then its T steps;
    seconds: compile_s (the one compile), run_s (all samples, and reading the output back),
    wall_s (the whole subprocess: start, imports, compile, run).
    """
    work.mkdir(parents=True, exist_ok=True)
    inp, out = work / "lava_in.npz", work / "lava_out.npz"
    np.savez(inp, spikes=spikes)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = "1"
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([str(python), str(RUNNER), str(net_path), str(inp), str(out)], capture_output=True,
                              text=True, timeout=timeout_s, env=env, cwd=work)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"deploy.timeout_s={timeout_s:g} is too short: the Lava run of {len(spikes)} samples did not "
                          f"finish in time and was stopped; raise deploy.timeout_s or lower deploy.samples "
                          f"(the export is in {work})") from None
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"the Lava run failed ({proc.returncode}): {proc.stderr[-3000:]}")
    result = np.load(out)
    return result["spikes"], {"compile_s": float(result["compile_s"]), "run_s": float(result["run_s"]), "wall_s": total}
