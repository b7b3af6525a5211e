"""Will the run's activations fit? An estimate before training, instead of an allocator error after it.

BPTT keeps every time step's activations until the backward: about T x batch x (the outputs of
every layer for one sample and step) x 4 bytes. For the default csnn on 28x28 images that is
20.5 MB per step at batch 64, as measured (issue 25's table: 203/705/2,588 MB at T = 8/32/128).
The layer outputs are counted by one forward pass of a single sample and step. The input
sequence [T, N, ...] is materialised by every learner. The estimate is checked against the memory
the process may still take: MemAvailable, the cgroup's limit (containers, SLURM) and `ulimit -v`.
"""
from __future__ import annotations

import resource
from pathlib import Path

import torch

from snnexp.errors import ConfigError

BYTES = 4  # float32


def activation_bytes_per_step(model: torch.nn.Module, in_shape: tuple[int, ...]) -> int:
    """Bytes of every leaf layer's output for one sample and one time step (one forward, no grad)."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    hooks = [m.register_forward_hook(count) for m in leaves]
    was_training = model.training
    try:
        model.eval()  # BN's running statistics stay as they are
        with torch.no_grad():
            device = next(model.parameters(), torch.empty(0)).device
            model(torch.zeros(1, 1, *in_shape, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return total * BYTES


def available_bytes() -> int | None:
    """What this process may still allocate: the least of MemAvailable, the cgroup's room and ulimit -v."""
    limits = []
    meminfo = _read("/proc/meminfo")
    for line in (meminfo or "").splitlines():
        if line.startswith("MemAvailable:"):
            limits.append(int(line.split()[1]) * 1024)
    cg_max, cg_now = _read("/sys/fs/cgroup/memory.max"), _read("/sys/fs/cgroup/memory.current")
    if cg_max and cg_now and cg_max.strip().isdigit():
        limits.append(int(cg_max) - int(cg_now))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        status = _read("/proc/self/status") or ""
        vm = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmSize:")), 0)
        limits.append(soft - vm)
    return min(limits) if limits else None


def check_fits(model: torch.nn.Module, in_shape: tuple[int, ...], T: int, batch_size: int, steps_kept: int,
               learner: str, advice: str = "") -> int:
    """The estimated bytes of one training step's activations; ConfigError naming T and the batch
    size when they exceed what this process may still allocate."""
    per_step = activation_bytes_per_step(model, in_shape)
    inputs = T * batch_size * _numel(in_shape) * BYTES
    need = inputs + steps_kept * batch_size * per_step
    room = available_bytes()
    if room is not None and need > room:
        kept = (f"{learner} keeps the activations of {steps_kept} steps for the backward "
                f"({per_step * batch_size / 2**20:,.1f} MB per step at this batch size), " if steps_kept else "")
        raise ConfigError(
            f"T={T} and dataset.batch_size={batch_size} need about {need / 2**30:,.1f} GB for one training step "
            f"({kept}the input {inputs / 2**30:,.2f} GB), more than the {max(room, 0) / 2**30:,.1f} GB this process "
            f"may still allocate: lower T or dataset.batch_size{advice}")
    return need


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None
