"""Disk cache of converted datasets: one .npy per (dataset pool, converter, code), made once.

Layout: <cache root>/<name>-<digest>.npy (memory-mapped when read) and <name>-<digest>.json
beside it (what the key holds, for people). The digest hashes the key: every parameter of the
converter (its repr), the images it converted (or the recordings), and `code_version` of the
converting code, derived from its source, so an edited conversion misses the old cache by
itself (no hand-bumped version number).
"""
from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import sys
import types
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from snnexp.errors import ConfigError

log = logging.getLogger(__name__)


def cache_root(setting: str | None) -> Path:
    """dataset.cache_dir, else $SNNEXP_CACHE, else ~/.cache/snnexp."""
    return Path(setting or os.environ.get("SNNEXP_CACHE") or "~/.cache/snnexp").expanduser()


def _snnexp_modules(start: list[types.ModuleType]) -> list[types.ModuleType]:
    """The snnexp modules `start` reach through their module-level names (imports, classes, functions)."""
    seen: dict[str, types.ModuleType] = {}
    todo = list(start)
    while todo:
        module = todo.pop()
        if module.__name__ in seen or not module.__name__.startswith("snnexp"):
            continue
        seen[module.__name__] = module
        for value in vars(module).values():
            name = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
            if isinstance(name, str) and name.startswith("snnexp") and name in sys.modules:
                todo.append(sys.modules[name])
    return [seen[name] for name in sorted(seen)]


def code_version(*objects: object) -> str:
    """A hash of the source of every snnexp module the objects' classes reach, and of torch's version.

    Any edit to the converting code (or to code it imports) gives a new cache key; so does a torch
    upgrade, whose float32 kernels the conversion's rounding follows.
    """
    classes = [c for obj in objects for c in type(obj).__mro__]
    modules = _snnexp_modules([sys.modules[c.__module__] for c in classes if c.__module__ in sys.modules])
    h = hashlib.sha1(f"torch {torch.__version__}".encode())
    for module in modules:
        h.update(module.__name__.encode())
        h.update(inspect.getsource(module).encode())
    return h.hexdigest()[:16]


def fingerprint(x: np.ndarray) -> str:
    """Shape, dtype and a hash of the bytes: which images were converted."""
    x = np.ascontiguousarray(x)
    return f"{x.shape}{x.dtype}{hashlib.sha1(x.data).hexdigest()}"


def _readable(path: Path, shape: tuple[int, ...] | None, dtype: np.dtype) -> np.ndarray | None:
    """The memory-mapped array at path, or None (with a warning) if it is unreadable, truncated or
    not what the key promised."""
    try:
        array = np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError) as e:  # a bad header, or data shorter than the header says
        log.warning("cache file %s is corrupt or truncated (%s): converting again", path, e)
        return None
    if array.dtype != dtype or (shape is not None and tuple(array.shape) != tuple(shape)):
        log.warning("cache file %s holds %s %s, expected %s %s: converting again", path, array.dtype,
                    tuple(array.shape), np.dtype(dtype), shape)
        return None
    return array


def cached_array(root: Path, name: str, key: dict[str, str], make: Callable[[], np.ndarray],
                 shape: tuple[int, ...] | None = None, dtype: np.dtype = np.dtype(np.uint8)) -> np.ndarray:
    """The array saved under `name-<hash of key>.npy` (memory-mapped, read-only), made once.

    The key must hold everything the array depends on: Tonic's DiskCachedDataset misses a
    changed transform because its path does not (NOTES). A corrupt, truncated or mis-shaped file
    is converted again, with a warning naming it: the cache holds derived data only, and it is
    written atomically, so a bad file was damaged from outside and rebuilding loses nothing. A
    cache folder that cannot be written is a ConfigError naming it and dataset.cache_dir.
    """
    text = json.dumps(key, sort_keys=True)
    path = root / f"{name}-{hashlib.sha1(text.encode()).hexdigest()[:16]}.npy"
    if path.exists():
        array = _readable(path, shape, np.dtype(dtype))
        if array is not None:
            return array
    log.info("converting %s (cache %s)", name, path)
    array = make()
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, array)
        tmp.replace(path)  # atomic: a crashed or concurrent run never leaves half a file
        path.with_suffix(".json").write_text(json.dumps(key, indent=1, sort_keys=True) + "\n")
    except OSError as e:
        raise ConfigError(f"cannot write the conversion cache {path} ({e.strerror or e}). Free space there, or set "
                          f"dataset.cache_dir (or $SNNEXP_CACHE) to a writable folder.") from None
    return np.load(path, mmap_mode="r")


class FrameDataset(Dataset):
    """Samples [T, ...] from an (often memory-mapped) array, with int64 labels; `index` picks rows."""

    def __init__(self, frames: np.ndarray, labels: np.ndarray, index: np.ndarray | None = None):
        self.frames, self.labels = frames, np.asarray(labels, np.int64)
        self.index = np.arange(len(self.labels)) if index is None else np.asarray(index, np.int64)
        if index is not None:
            self.labels = self.labels[self.index]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(np.array(self.frames[self.index[i]])), int(self.labels[i])
