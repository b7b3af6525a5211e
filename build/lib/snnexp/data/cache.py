"""Disk cache of converted datasets, keyed by the converter's repr (every parameter) and the data."""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

log = logging.getLogger(__name__)
VERSION = "1"  # bump when a conversion's code changes its output


def cache_root(setting: str | None) -> Path:
    """dataset.cache_dir, else $SNNEXP_CACHE, else ~/.cache/snnexp."""
    return Path(setting or os.environ.get("SNNEXP_CACHE") or "~/.cache/snnexp").expanduser()


def cached_array(root: Path, name: str, key: str, make: Callable[[], np.ndarray]) -> np.ndarray:
    """The array saved under `name-<hash of key>.npy` (memory-mapped, read-only), made once.

    The key must hold everything the array depends on: Tonic's DiskCachedDataset misses a
    changed transform because its path does not (NOTES).
    """
    digest = hashlib.sha1(f"{VERSION}|{key}".encode()).hexdigest()[:16]
    path = root / f"{name}-{digest}.npy"
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        log.info("converting %s (cache %s)", name, path)
        array = make()
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, array)
        tmp.replace(path)  # atomic: a crashed or concurrent run never leaves half a file
    return np.load(path, mmap_mode="r")


def fingerprint(x: np.ndarray) -> str:
    """Shape, dtype and a hash of the bytes: which images were converted."""
    x = np.ascontiguousarray(x)
    return f"{x.shape}{x.dtype}{hashlib.sha1(x.data).hexdigest()}"


class FrameDataset(Dataset):
    """Samples [T, ...] from an (often memory-mapped) array, with int64 labels."""

    def __init__(self, frames: np.ndarray, labels: np.ndarray):
        self.frames, self.labels = frames, np.asarray(labels, np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(np.array(self.frames[i])), int(self.labels[i])
