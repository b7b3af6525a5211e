"""Tiny event datasets written in the real formats, for tests (no download ever)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def nmnist_bytes(x, y, t_us, p) -> bytes:
    """N-MNIST's 40-bit records: x, y, then p in bit 7 of byte 2 and a 23-bit µs timestamp."""
    x, y, t, p = (np.asarray(a, np.uint32) for a in (x, y, t_us, p))
    rec = np.stack([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF], 1).astype(np.uint8)
    return rec.tobytes()


def random_events(rng, n, width, height, duration_us):
    t = np.sort(rng.integers(0, duration_us, n))
    return rng.integers(0, width, n), rng.integers(0, height, n), t, rng.integers(0, 2, n)


def write_nmnist(root: Path, per_class: int = 1, events: int = 300, seed: int = 0) -> Path:
    """<root>/NMNIST/{Train,Test}/<digit>/<id>.bin, extracted only (no zips), as users keep it."""
    rng = np.random.default_rng(seed)
    for split, n in (("Train", 2 * per_class), ("Test", per_class)):
        for digit in range(10):
            d = root / "NMNIST" / split / str(digit)
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                x, y, t, p = random_events(rng, events, 34, 34, 300_000)
                x[: events // 4] = 3 * digit  # a label-dependent column, so there is something to learn
                (d / f"{i:05d}.bin").write_bytes(nmnist_bytes(x, y, t, p))
    return root


def write_dvs_gesture(root: Path, per_class: int = 1, events: int = 400, seed: int = 0) -> Path:
    """Tonic's DVS Gesture: <root>/DVSGesture/ibmGesture{Train,Test}/user<NN>_<lighting>/<label>.npy, rows (x, y, p, t ms)."""
    rng = np.random.default_rng(seed)
    for split, users in (("ibmGestureTrain", range(1, 1 + 2 * per_class)), ("ibmGestureTest", range(30, 30 + per_class))):
        for user in users:
            d = root / "DVSGesture" / split / f"user{user:02d}_fluorescent"
            d.mkdir(parents=True, exist_ok=True)
            for label in range(11):
                x, y, t, p = random_events(rng, events, 128, 128, 1_500)
                np.save(d / f"{label}.npy", np.stack([x, y, p, t], 1).astype(np.int64))
    return root


def write_shd(root: Path, n_train: int = 40, n_test: int = 20, events: int = 200, seed: int = 0) -> Path:
    """<root>/SHD/shd_{train,test}.h5 as Zenke's lab publishes them: spikes/times (s), spikes/units, labels, extra/."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        path = root / "SHD" / f"shd_{split}.h5"
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            times = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float32))
            units = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
            labels = np.arange(n) % 20
            for i in range(n):
                times[i] = np.sort(rng.random(events)).astype(np.float32)  # seconds, within 1 s
                units[i] = rng.integers(0, 700, events).astype(np.uint16)
            f["labels"] = labels.astype(np.uint8)
            f["extra/keys"] = np.array([f"digit-{k}".encode() for k in range(20)])
            f["extra/speaker"] = (np.arange(n) % 5).astype(np.uint8)
    return root


def write_shd_order(root: Path, n_train: int = 200, n_test: int = 100, bands: int = 5, seed: int = 0) -> Path:
    """An SHD-format set (as `write_shd`) whose 20 classes can only be told apart by time order: class k is
    the ordered pair (a, b) of two of `bands` channel bands (5 x 4 = 20 pairs); band a bursts in the
    first 0.35 s, band b after a 0.3 s silence. (a, b) and (b, a) have the same events per channel, so a
    network without memory beyond a few steps can at best name the pair (50 %); telling the order
    needs state that lasts (recurrence)."""
    rng = np.random.default_rng(seed)
    pairs = [(a, b) for a in range(bands) for b in range(bands) if a != b]
    width = 700 // bands
    for split, n in (("train", n_train), ("test", n_test)):
        path = root / "SHD" / f"shd_{split}.h5"
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            times = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float32))
            units = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
            labels = rng.integers(0, len(pairs), n)
            for i, label in enumerate(labels):
                t, u = [], []
                for band, start in zip(pairs[label], (0.0, 0.65)):
                    t.append(start + 0.35 * rng.random(150))
                    u.append(band * width + rng.integers(0, width, 150))
                order = np.argsort(np.concatenate(t))
                times[i] = np.concatenate(t)[order].astype(np.float32)
                units[i] = np.concatenate(u)[order].astype(np.uint16)
            f["labels"] = labels.astype(np.uint8)
            f["extra/keys"] = np.array([f"pair-{a}{b}".encode() for a, b in pairs])
            f["extra/speaker"] = (np.arange(n) % 5).astype(np.uint8)
    return root
