"""SIGTERM and SIGINT stop a run as an interruption: results.json says `interrupted`, exit 128 + signum.

SLURM (time limit, preemption, scancel), `docker stop` and systemd send SIGTERM; Ctrl+C sends SIGINT.
Left to themselves, Python dies on SIGTERM without a word, and Lightning turns it into a
`SIGTERMException`, a SystemExit without a code, so the process exited 0: a scheduler saw success.
While a run trains, both signals raise `Interrupted` in the main thread (as Ctrl+C raises
KeyboardInterrupt), which unwinds through Lightning (it tears down and finalizes the loggers), then
snnexp.experiment records the epoch and run.py exits 128 + signum, as a shell reports a killed job.

Under submitit (hydra/launcher=slurm or submitit_local), SLURM's time-limit warning (SIGUSR2,
`signal_delay_s` before the limit) goes to submitit's own handler, which requeues the job and exits;
the run only notes it, so results.json says why it stopped (snnexp.slurm: the requeued job resumes).
"""
from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

STOPS = (signal.SIGTERM, signal.SIGINT)
_received: list[int] = []  # the signals of the run under way, first first


class Interrupted(BaseException):
    """A signal stopped the run. A BaseException, as KeyboardInterrupt: no `except Exception` swallows it.

    `detail`: what happened and how to continue (set once results.json says so)."""

    def __init__(self, signum: int, detail: str = ""):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)
        self.detail = detail

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def signal_of(e: BaseException) -> int | None:
    """The signal behind `e` when a signal stopped the run, else None.

    Besides `Interrupted`: Lightning's SIGTERMException, Ctrl+C's KeyboardInterrupt (or the
    SystemExit(1) Lightning raises after it), and submitit's exit after a time-limit warning."""
    from pytorch_lightning.utilities.exceptions import SIGTERMException  # here: table.py needs no Lightning

    if isinstance(e, Interrupted):
        return e.signum
    if isinstance(e, SIGTERMException):
        return signal.SIGTERM
    if isinstance(e, KeyboardInterrupt) or (isinstance(e, SystemExit) and isinstance(e.__context__, KeyboardInterrupt)):
        return signal.SIGINT
    if isinstance(e, SystemExit) and _received:
        return _received[0]
    return None


def as_interrupted(e: BaseException) -> BaseException:
    """`e` as an `Interrupted` when a SIGTERM or SIGINT caused it; anything else as it is (submitit's
    exit after its time-limit warning must stay a SystemExit: submitit requeues the job on it)."""
    signum = signal_of(e)
    return Interrupted(signum) if signum in STOPS and not isinstance(e, Interrupted) else e


def scheduler_warning() -> signal.Signals | None:
    """The signal submitit's job handler takes as a time-limit or preemption warning; None outside submitit."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return None
    return signal.Signals["SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")]


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """For the duration of a run: SIGTERM and SIGINT raise Interrupted; a second signal while it stops
    is ignored (a second Ctrl+C, SLURM's repeated SIGTERM) so the results still get written."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    _received.clear()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        first = not _received
        _received.append(signum)
        if first:
            raise Interrupted(signum)

    warning = scheduler_warning()
    handlers: dict[int, Any] = {s: interrupt for s in STOPS}
    if warning is not None and callable(signal.getsignal(warning)):
        handlers[warning] = _noting(signal.getsignal(warning))
    previous = {s: signal.signal(s, h) for s, h in handlers.items()}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _noting(handler: Any) -> Any:
    """`handler` (submitit's), after noting its signal: results.json then names it."""

    def note(signum: int, frame: FrameType | None) -> None:
        _received.append(signum)
        handler(signum, frame)

    return note
