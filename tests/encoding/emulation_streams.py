"""Recorded event streams of the three emulations on fixed inputs, to prove that a rewrite emits the same events.

The fixture (fixtures/emulation_streams.npz) was recorded ONCE from the emulation code before the
fast rewrite (commit 4f76a8b) with `python -m tests.encoding.emulation_streams --record`. Never
re-record it to make a failing test pass: a mismatch means the events changed.

It holds the inputs as uint8 (4 Fashion-MNIST test images, 3 scikit-learn digits, 3 synthetic
images, 1 RGB image), a SHA-256 of every stream in a canonical order, the event count per sample,
and a few streams as exact arrays.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

from snnexp.encoding.emulation import Flicker, Rotation, Saccade

FIXTURE = Path(__file__).parent / "fixtures" / "emulation_streams.npz"

# name -> (emulator, input set); every parameter that reaches a separate code path appears once.
CASES = {
    "saccade": (lambda: Saccade(T=8), "grey"),
    "flicker": (lambda: Flicker(T=8), "grey"),
    "rotation": (lambda: Rotation(T=8), "grey"),
    "saccade_fine_no_refractory": (lambda: Saccade(T=8, threshold=0.1, refractory_us=0.0), "grey"),
    "saccade_fine_refractory": (lambda: Saccade(T=8, threshold=0.1, refractory_us=700.0), "grey"),
    "saccade_long_refractory": (lambda: Saccade(T=8, threshold=0.15, threshold_sigma=0.05, refractory_us=5_000.0,
                                                eps=0.01, seed=3), "grey"),
    "saccade_noise": (lambda: Saccade(T=8, noise_hz=20.0, seed=5), "grey"),
    "saccade_wide": (lambda: Saccade(T=8, amplitude_px=3.3, saccade_us=20_000.0, margin_px=1, render_steps=17), "grey"),
    "flicker_fine": (lambda: Flicker(T=8, threshold=0.15, refractory_us=0.0, render_steps=64), "grey"),
    "rotation_rgb": (lambda: Rotation(T=8, angle_deg=20.0, threshold=0.3), "rgb"),
}
# convert() over more than one CHUNK of images: frames, with the noise stream crossing chunks
CONVERT_CASES = {
    "convert_saccade": lambda: Saccade(T=6, noise_hz=5.0, seed=2),
    "convert_flicker": lambda: Flicker(T=6),
    "convert_rotation": lambda: Rotation(T=6),
}
EXACT = ("saccade", "flicker", "rotation", "saccade_noise")  # also stored event by event (first digit image)


def pad28(x: np.ndarray) -> np.ndarray:
    """[M, h, w] uint8 -> [M, 28, 28] with the image in the top-left corner (one grey batch)."""
    out = np.zeros((len(x), 28, 28), np.uint8)
    out[:, : x.shape[1], : x.shape[2]] = x
    return out


def record_inputs() -> dict[str, np.ndarray]:
    """The inputs, read from the installed Fashion-MNIST, scikit-learn and a fixed formula."""
    from sklearn.datasets import load_digits

    from snnexp.data.idx import SPLITS, find_idx, read_idx

    fmnist = read_idx(find_idx(Path("/usr/share/datasets/fashion-mnist"), SPLITS["test"][0]))[:4]
    digits = np.round(load_digits().images[:3] / 16 * 255).astype(np.uint8)  # [3, 8, 8]
    yy, xx = np.mgrid[:28, :28]
    r = np.hypot(yy - 13.5, xx - 13.5)
    ring = ((r > 6) & (r < 9)) * 255
    gradient = (xx * 9 + yy * 3) % 256
    rng = np.random.default_rng(0)
    sparse = rng.integers(0, 256, (28, 28)) * (rng.random((28, 28)) > 0.7)
    synthetic = np.stack([ring, gradient, sparse]).astype(np.uint8)
    rgb = rng.integers(0, 256, (1, 3, 16, 16)).astype(np.uint8)
    return {"fmnist": fmnist, "digits": digits, "synthetic": synthetic, "rgb": rgb}


def batch(inputs: dict[str, np.ndarray], kind: str) -> torch.Tensor:
    """The float images [N, C, H, W] in [0, 1] of an input set."""
    if kind == "rgb":
        return torch.from_numpy(inputs["rgb"].astype(np.float32) / 255)
    grey = np.concatenate([inputs["fmnist"], pad28(inputs["digits"]), inputs["synthetic"]])
    return torch.from_numpy(grey.astype(np.float32)[:, None] / 255)


def canonical(ev) -> np.ndarray:
    """[E, 5] int64 rows (sample, t, y, x, p), sorted: the stream as a multiset, whatever order it was made in."""
    rows = torch.stack([ev.sample, ev.t, ev.y, ev.x, ev.p], 1).cpu().long().numpy()
    return rows[np.lexsort(rows.T[::-1])]


def digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def streams(inputs: dict[str, np.ndarray], device: str | torch.device = "cpu") -> dict[str, np.ndarray]:
    """Everything the fixture stores, computed by the current code."""
    out: dict[str, np.ndarray] = {}
    for name, (make, kind) in CASES.items():
        x = batch(inputs, kind).to(device)
        enc = make()
        rows = canonical(enc.events(x))
        out[f"{name}/sha256"] = np.array(digest(rows))
        out[f"{name}/counts"] = np.bincount(rows[:, 0], minlength=len(x))
        if name in EXACT:
            out[f"{name}/digit0"] = rows[rows[:, 0] == 4][:256]  # sample 4: the first scikit-learn digit (its first events)
    grey = batch(inputs, "grey").numpy()
    many = np.concatenate([grey] * 30)  # 300 images: two conversion chunks
    for name, make in CONVERT_CASES.items():
        frames = make().convert(many)
        out[f"{name}/sha256"] = np.array(digest(frames))
        out[f"{name}/sum"] = frames.reshape(len(frames), -1).sum(1, dtype=np.int64)
    return out


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    inputs = record_inputs()
    FIXTURE.parent.mkdir(exist_ok=True)
    np.savez_compressed(FIXTURE, **{f"input/{k}": v for k, v in inputs.items()}, **streams(inputs))
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes)")
