"""Neuron tests: the fused implementations under test, each with the device it runs on here.

"torch" is the pure torch path; "cpp" the C++ CPU kernel (built here when a compiler exists);
"triton" the Triton kernels, on CUDA when there is a GPU and otherwise under Triton's
interpreter (TRITON_INTERPRET=1) on CPU tensors. A missing compiler or triton skips that backend.
"""
from __future__ import annotations

import importlib.util
import os
import shutil

import pytest
import torch

BACKENDS = ["torch", "cpp", "triton"]
HAS_CUDA = torch.cuda.is_available()
if importlib.util.find_spec("triton") is not None and not HAS_CUDA:
    # must be set before triton_kernels is imported: triton.jit picks the interpreter at decoration
    os.environ.setdefault("TRITON_INTERPRET", "1")


def fire_of(backend: str):
    """The backend's `fire(x, v0, a, b, c, th, spec, has_time)`, or skip when it cannot run here."""
    if backend == "torch":
        from snnexp.neurons.fused import torch_fire

        return torch_fire.fire
    if backend == "cpp":
        if os.environ.get("CXX") is None and shutil.which("g++") is None and shutil.which("c++") is None:
            pytest.skip("no C++ compiler: the CPU kernel cannot be built (the torch path runs instead)")
        from snnexp.neurons.fused import cpu_fire
        from snnexp.neurons.fused.build import build_and_load

        build_and_load()  # a compiler is here, so a failed build is a failure
        return cpu_fire.fire
    if importlib.util.find_spec("triton") is None:
        pytest.skip("triton is not installed (pip install -e '.[gpu]')")
    from snnexp.neurons.fused import triton_fire

    return triton_fire.fire


def device_of(backend: str) -> str:
    return "cuda" if backend == "triton" and HAS_CUDA else "cpu"


@pytest.fixture
def use_backend(monkeypatch):
    """Make every neuron module run the given backend: `use_backend("cpp")` -> its device."""
    from snnexp.neurons.fused import dispatch

    def choose(backend: str) -> str:
        fire = fire_of(backend)
        monkeypatch.setattr(dispatch, "backend_for", lambda x, spec: fire)
        return device_of(backend)
    return choose


def pytest_collection_modifyitems(items):
    """Without a GPU the Triton kernels run under the interpreter, ~100x slower than the other backends:
    the `backend=triton` matrix is in the slow tier there (make test runs it; make test-fast does not).
    The fast tier keeps Triton's half-precision test, so a kernel that no longer runs still shows."""
    if HAS_CUDA:
        return
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "triton":
            item.add_marker(pytest.mark.slow)
