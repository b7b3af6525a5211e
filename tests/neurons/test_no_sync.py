"""Nothing in the per-time-step loop reads a tensor back to the host (on CUDA that would stall on the device).

On the CPU a host read cannot be seen as a stall, so the test counts the Python calls that
would be one (`.item()`, `float()`, `int()`, `bool()`, `.tolist()`) during a training step
and an evaluation step. On CUDA the device itself checks: `set_sync_debug_mode("error")`
makes any synchronizing call raise.
"""
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F

from snnexp.models import CSNN
from snnexp.neurons import IF, LIF, PLIF

HOST_READS = ("item", "tolist", "__float__", "__int__", "__bool__", "__index__")


@contextmanager
def counting_host_reads():
    """Yield a list that records every host read of a tensor made inside the block."""
    calls: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        for name in HOST_READS:
            original = getattr(torch.Tensor, name)

            def counted(self, *args, _original=original, _name=name, **kwargs):
                calls.append(_name)
                return _original(self, *args, **kwargs)
            mp.setattr(torch.Tensor, name, counted)
        yield calls


def small_csnn(neuron, step_mode):
    model = CSNN(neuron, in_shape=(1, 8, 8), num_classes=3, channels=(4, 4), pool_first=False, step_mode=step_mode)
    with torch.no_grad():
        model.net[-2].weight.mul_(4)  # the readout's Linear: make the output layer fire too
    return model


def test_the_counter_sees_a_host_read():
    with counting_host_reads() as calls:
        float(torch.ones(()))
        bool(torch.ones(()) > 0)
        torch.ones(2)[0].item()
    assert calls == ["__float__", "__bool__", "item"]


@pytest.mark.parametrize("step_mode", ["s", "m"])
@pytest.mark.parametrize("neuron", [LIF, PLIF, IF, lambda: PLIF(learn_threshold=True, reset="hard")],
                         ids=["lif", "plif", "if", "plif-learnt-threshold"])
def test_training_and_eval_steps_read_nothing_back(neuron, step_mode):
    torch.manual_seed(0)
    model = small_csnn(neuron, step_mode)
    x = (torch.rand(4, 5, 1, 8, 8) < 0.5).float()  # [T, N, C, H, W] spikes
    y = torch.randint(0, 3, (5,))
    with counting_host_reads() as calls:
        out = model(x)
        F.cross_entropy(out.mean(0), y).backward()
        model.eval()
        with torch.no_grad():
            model(x)
    assert out.sum() > 0  # the network fired, so the fused path did its work
    assert calls == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("neuron", [LIF, PLIF], ids=["lif", "plif"])
def test_cuda_training_and_eval_steps_never_synchronize(neuron):
    torch.manual_seed(0)
    model = small_csnn(neuron, "s").cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = (torch.rand(4, 5, 1, 8, 8, device="cuda") < 0.5).float()
    y = torch.randint(0, 3, (5,), device="cuda")

    def train_step():
        opt.zero_grad()
        F.cross_entropy(model(x).mean(0), y).backward()
        opt.step()

    train_step()  # warm-up: Triton compiles, cuDNN chooses its algorithms, constants reach the device
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        train_step()
        model.eval()
        with torch.no_grad():
            out = model(x)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.shape == (4, 5, 3)
