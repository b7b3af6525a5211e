"""One error type for bad user input, so `run.py` can print it without a traceback."""
from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and what is allowed."""


def check(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise ConfigError naming `key` unless `ok`."""
    if not ok:
        raise ConfigError(f"{key}={value!r} is invalid: {allowed}")


def config_error(e: BaseException | None) -> ConfigError | None:
    """The ConfigError behind `e`, also when Hydra's instantiate wrapped it (`raise ... from e`).

    Only explicit causes are followed: an unrelated error raised while a ConfigError was being
    handled (its `__context__`) is a bug to show with its traceback, not a configuration error.
    """
    while e is not None:
        if isinstance(e, ConfigError):
            return e
        e = e.__cause__
    return None


def refuse(error: BaseException | str) -> None:
    """Print a bad input's one message (no traceback) and exit 2: what run.py does for every refusal."""
    import sys

    print(f"snnexp: configuration error: {error}\n"
          f"Fix the value on the command line (e.g. `python run.py key=value`) or in snnexp/conf/.", file=sys.stderr)
    raise SystemExit(2) from None
