"""Which fused implementation a tensor gets, and what a machine without a compiler gets."""
import logging
import shutil

import pytest
import torch

from snnexp.neurons import LIF
from snnexp.neurons.fused import cpu_fire, dispatch, torch_fire
from snnexp.neurons.surrogate import ATan

needs_compiler = pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                                    reason="no C++ compiler")


@pytest.fixture
def fresh_choice(monkeypatch):
    """Forget which kernels were found, so the test makes the choice again."""
    monkeypatch.setattr(dispatch, "_available", {})
    monkeypatch.delenv("SNNEXP_FUSED", raising=False)


@needs_compiler
def test_cpu_float_tensors_get_the_cpp_kernel(fresh_choice):
    spec = LIF().leaky_spec()
    assert dispatch.backend_for(torch.zeros(2, 3), spec) is cpu_fire.fire
    assert dispatch.backend_for(torch.zeros(2, 3, dtype=torch.float64), spec) is cpu_fire.fire
    assert dispatch.backend_for(torch.zeros(2, 3, dtype=torch.bfloat16), spec) is torch_fire.fire  # CPU autocast


def test_a_surrogate_the_kernels_do_not_know_runs_the_torch_path(fresh_choice):
    class Steeper(ATan):  # a subclass may change grad, which the kernels would not see
        def grad(self, x):
            return 2 * super().grad(x)

    assert dispatch.backend_for(torch.zeros(2, 3), LIF(surrogate=Steeper()).leaky_spec()) is torch_fire.fire


def test_snnexp_fused_torch_forces_the_reference(fresh_choice, monkeypatch):
    monkeypatch.setenv("SNNEXP_FUSED", "torch")
    assert dispatch.backend_for(torch.zeros(2, 3), LIF().leaky_spec()) is torch_fire.fire


def test_without_a_compiler_the_torch_path_runs_and_says_so(fresh_choice, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("SNNEXP_CACHE_DIR", str(tmp_path / "cache"))
    x = torch.rand(6, 2, 5) * 3
    with caplog.at_level(logging.WARNING, logger="snnexp"):
        s = LIF(tau=3.0)(x)
        LIF(tau=3.0)(x)  # the choice is made once: one log line
    lines = [r.getMessage() for r in caplog.records if "fused CPU neuron kernel unavailable" in r.getMessage()]
    assert len(lines) == 1 and "pure torch path" in lines[0]
    assert dispatch.backend_for(x, LIF().leaky_spec()) is torch_fire.fire
    reference, _ = LIF(tau=3.0).run_loop(x, LIF().initial_state(x[0]))
    assert s.sum() > 0 and torch.equal(s, reference)
