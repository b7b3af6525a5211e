"""A run's status in its results.json, from the start: nothing a run did is lost or mistaken for success.

The experiment writes results.json when a run starts (`status: started`) and again when it ends
(`done`, `failed` or `interrupted`, with `error`). A job the OS killed (out of memory, SIGKILL, a
lost node) never gets to the second write, so its results.json still says `started`: the sweep's
failure report and scripts/table.py count it as failed instead of not seeing it at all.
Both writes go to a temporary file that is then renamed, so a kill mid-write leaves the old file.
"""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from snnexp.signals import STOPS, signal_of

STARTED, DONE, FAILED, INTERRUPTED = "started", "done", "failed", "interrupted"
UNFINISHED = (f"did not finish (status: {STARTED}): the process was killed (out of memory, SIGKILL, a lost node) "
              f"or is still running")


def write_results(path: Path, results: dict[str, Any]) -> None:
    """results.json, atomically (a reader sees the old file or the new one, never half of one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=True, default=str))
    tmp.replace(path)


def failure(results: dict[str, Any]) -> str | None:
    """Why the run of `results` (a results.json) did not succeed; None when it did."""
    if results.get("error"):
        return str(results["error"])
    if results.get("status") == STARTED:
        return UNFINISHED
    return None


def read_results(path: Path) -> dict[str, Any]:
    """A results.json; an unreadable one (truncated, edited) as a failed run that says so and names it."""
    try:
        results = json.loads(Path(path).read_text())
        if not isinstance(results, dict):
            raise ValueError("not a JSON object")
        return results
    except (OSError, ValueError) as e:  # json.JSONDecodeError is a ValueError
        return {"status": FAILED, "unreadable": True,
                "error": f"unreadable results.json ({path}: {e}); rerun the job, or delete the file"}


def ended(e: BaseException, epoch: int | None, run_dir: Path) -> dict[str, Any]:
    """status and error for a run that raised `e` (epoch: the training epoch it was in, if any).

    A signal (SIGTERM, SIGINT, a scheduler's time-limit warning: snnexp.signals) interrupted the run;
    its last finished epoch is in checkpoints/last.ckpt, and the error says how to continue.
    """
    signum = signal_of(e)
    if signum is None:
        return {"status": FAILED, "error": f"{type(e).__name__}: {e}"}
    name = signal.Signals(signum).name
    where = f"at epoch {epoch}" if epoch is not None else "before training"
    if signum in STOPS:
        kept = (f"checkpoints/last.ckpt holds the last finished epoch: continue with `python run.py resume={run_dir}`"
                if (run_dir / "checkpoints" / "last.ckpt").is_file() else "no epoch had finished, so there is no checkpoint")
    else:  # submitit's handler requeued the job (or said why not, in the job's log under .submitit/)
        kept = "the scheduler's time-limit or preemption warning: submitit requeues the job, which continues here"
    return {"status": INTERRUPTED, "interrupted_at_epoch": epoch, "signal": name,
            "error": f"interrupted ({name}) {where}; {kept}"}
