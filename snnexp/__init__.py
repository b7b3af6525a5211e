"""snnexp: configuration-driven experiments with spiking neural networks.

The Python API (snnexp.api) beside the CLI (run.py), re-exported here:
compose, build, run, load (-> Loaded), export (-> a NIR file), Parts, ConfigError, __version__.
Imported on first use, so `import snnexp` and the CLI's `--help` stay fast.
"""
from __future__ import annotations

from typing import Any

_EXPORTS = {
    "compose": "snnexp.api", "build": "snnexp.api", "run": "snnexp.api", "load": "snnexp.api", "export": "snnexp.api",
    "Loaded": "snnexp.api", "Parts": "snnexp.experiment", "ConfigError": "snnexp.errors",
    "__version__": "snnexp.version",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'snnexp' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
