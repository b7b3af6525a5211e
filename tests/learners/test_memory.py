"""learner.memory: checkpoint gives full BPTT's gradients; tbptt and online carry the state and
truncate the gradient as documented; every backbone bptt trains takes every mode, or is refused."""
from __future__ import annotations

import re

import pytest
import torch

from snnexp.encoding import Direct
from snnexp.errors import ConfigError
from snnexp.learners import BPTT
from snnexp.learners.memory import run_checkpointed, train_windows
from snnexp.models import MLP
from snnexp.models.csnn import CSNN
from snnexp.models.resnet import ResNet
from snnexp.models.rsnn import RSNN
from snnexp.models.sew_resnet import SEWResNet
from snnexp.models.spikformer import Spikformer
from snnexp.models.vgg import VGG
from snnexp.neurons import LIF
from snnexp.neurons.alif import ALIF
from snnexp.neurons.plif import PLIF
from snnexp.neurons.surrogate import ATan

IMAGE = (2, 8, 8)
# tiny versions of every backbone bptt trains (the residual ones NCHW: torch 2.13 corrupts the heap in the
# backward of a strided 1x1 channels-last conv from few channels, docs/notes.md)
BACKBONES = {
    "csnn": lambda mode: CSNN(LIF, IMAGE, 3, channels=(4, 4), step_mode=mode, batch_norm=mode == "s"),
    "csnn_plif": lambda mode: CSNN(PLIF, IMAGE, 3, channels=(4,), pool_first=False, step_mode=mode,
                                   batch_norm=mode == "s"),
    "mlp_alif": lambda mode: MLP(ALIF, IMAGE, 3, hidden=(16,), step_mode=mode),
    "rsnn": lambda mode: RSNN(LIF, IMAGE, 3, hidden=(16, 8), step_mode=mode),
    "resnet": lambda mode: ResNet(LIF, IMAGE, 3, depth=None, blocks=[1, 1], channels=[4, 8], step_mode=mode,
                                 channels_last=False),
    "sew_resnet": lambda mode: SEWResNet(LIF, IMAGE, 3, depth=None, blocks=[1, 1], channels=[4, 8], step_mode=mode,
                                 channels_last=False),
    "vgg": lambda mode: VGG(LIF, IMAGE, 3, depth=11, width=1 / 16, hidden=[8], step_mode=mode),
    "spikformer": lambda mode: Spikformer(LIF, IMAGE, 3, depth=1, dim=8, heads=2, step_mode=mode),
}
HAS_BN = {"resnet", "sew_resnet", "vgg", "spikformer"}  # BatchNorm in "m" too (csnn: in "s" only)


def _inputs(T=7, N=3):
    gen = torch.Generator().manual_seed(1)
    return (torch.rand(T, N, *IMAGE, generator=gen) < 0.4).float(), torch.tensor([0, 1, 2])


def _grads(name, mode, run):
    torch.manual_seed(0)
    model = BACKBONES[name](mode)
    x_seq, y = _inputs()
    out = run(model, x_seq)
    torch.nn.functional.cross_entropy(out.mean(0) * 4, y).backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, \
        [b.clone() for b in model.buffers()]


CASES = [(n, "s") for n in BACKBONES] + [(n, "m") for n in BACKBONES if n not in HAS_BN]


@pytest.mark.parametrize("name,mode", CASES)
def test_checkpoint_gives_full_bptt_gradients(name, mode):
    out, grads, buffers = _grads(name, mode, lambda m, x: m(x))
    out_c, grads_c, buffers_c = _grads(name, mode, lambda m, x: run_checkpointed(m, x, 3))  # 7 steps: 3 + 3 + 1
    assert torch.equal(out, out_c)
    assert grads.keys() == grads_c.keys() and len(grads) > 0
    for key in grads:  # to rounding: each segment's backward adds its terms to .grad (full BPTT sums them first)
        torch.testing.assert_close(grads_c[key], grads[key], rtol=1e-5, atol=1e-7, msg=key)
    for a, b in zip(buffers, buffers_c):  # BatchNorm's running statistics: updated once, not again in the backward
        assert torch.equal(a, b)


def test_checkpoint_with_the_torch_path_equals_the_fused_kernel(monkeypatch):
    _, fused, _ = _grads("csnn", "s", lambda m, x: run_checkpointed(m, x, 2))
    monkeypatch.setenv("SNNEXP_FUSED", "torch")
    _, reference, _ = _grads("csnn", "s", lambda m, x: m(x))
    for key in fused:
        torch.testing.assert_close(fused[key], reference[key], msg=key)


@pytest.mark.parametrize("name,mode", [("rsnn", "m"), ("rsnn", "s"), ("csnn", "s")])
def test_windows_carry_the_state_and_a_window_of_all_steps_is_full_bptt(name, mode):
    out, grads, _ = _grads(name, mode, lambda m, x: m(x))
    torch.manual_seed(0)
    model = BACKBONES[name](mode)
    x_seq, y = _inputs()
    loss = lambda o: torch.nn.functional.cross_entropy(o.mean(0) * 4, y)  # noqa: E731
    for k in (2, 7):
        model.zero_grad()
        out_w, _ = train_windows(model, x_seq, k, loss, lambda value: value.backward())
        assert torch.equal(out_w, out)  # the carried (detached) state continues the same forward
    for key, g in grads.items():  # k = T: one window, full BPTT
        assert torch.equal(dict(model.named_parameters())[key].grad, g), key


def test_online_is_sltt_the_gradient_through_each_steps_layers_only():
    """One Linear -> LIF layer, per-step loss (tet without regulariser): by hand, the membrane detached each step."""
    torch.manual_seed(0)
    model = MLP(LIF, (4,), 2, hidden=(), step_mode="m")
    linear, lif = model.net[1], model.net[2]
    x_seq = torch.rand(5, 3, 4) * 2
    y = torch.tensor([0, 1, 1])
    step_loss = lambda o: torch.nn.functional.cross_entropy(o.flatten(0, 1) * 3, y.repeat(o.shape[0]))  # noqa: E731
    train_windows(model, x_seq, 1, step_loss, lambda value: value.backward())
    online = linear.weight.grad.clone()
    linear.weight.grad = None
    v, total = torch.zeros(3, 2), 0
    for x_t in x_seq:  # h = v + (Wx - v)/tau; s = H(h - 1) with ATan's surrogate; v = h - s
        h = v.detach() + (linear(x_t) - v.detach()) / 2.0
        s = ATan()(h - 1.0)
        total = total + step_loss(s[None]) / len(x_seq)
        v = h - s
    total.backward()
    torch.testing.assert_close(online, linear.weight.grad)
    linear.weight.grad = None
    step_loss(model(x_seq)).backward()  # full BPTT's gradient of the same loss differs (the temporal path)
    assert not torch.allclose(online, linear.weight.grad, atol=1e-4)


@pytest.mark.parametrize("memory", ["full", "checkpoint", "tbptt", "online"])
@pytest.mark.parametrize("name", list(BACKBONES))
def test_every_backbone_trains_in_every_mode_or_is_refused_by_name(name, memory):
    torch.manual_seed(0)
    model = BACKBONES[name]("m")  # each backbone's default step mode is m (csnn: built without BatchNorm in m)
    make = lambda: BPTT(model, Direct(T=4), num_classes=3, memory=memory, memory_steps=2,  # noqa: E731
                        optimizer=lambda p: torch.optim.SGD(p, lr=0.1))
    if memory == "checkpoint" and name in HAS_BN:
        with pytest.raises(ConfigError, match=r"learner.memory='checkpoint'.*model.step_mode=s"):
            make()
        return
    learner = make()
    x_seq, y = _inputs(T=4)
    out_seq, loss = learner.train_forward(x_seq, y, lambda value: value.backward())
    if not learner.windowed:
        loss.backward()
    assert out_seq.shape == (4, 3, 3) and torch.isfinite(loss)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_unknown_mode_and_bad_k_are_refused():
    model = MLP(LIF, (4,), 2, hidden=(4,))
    for kwargs, key in (({"memory": "chunked"}, "learner.memory"), ({"memory": "tbptt", "memory_steps": 0},
                                                                     "learner.memory_steps")):
        with pytest.raises(ConfigError, match=key):
            BPTT(model, Direct(T=4), num_classes=2, optimizer=lambda p: torch.optim.SGD(p, lr=0.1), **kwargs)


@pytest.mark.parametrize("learner,memory", [("bptt", "checkpoint"), ("bptt", "online"), ("hybrid", "tbptt"),
                                            ("hybrid", "checkpoint")])
@pytest.mark.e2e
def test_runs_end_to_end(learner, memory, tmp_path):
    from snnexp.experiment import run
    from tests.conftest import QUICK
    from tests.helpers import compose_cfg

    results = run(compose_cfg(QUICK + [f"learner={learner}", f"learner.memory={memory}", "logger=none"],
                              run_dir=tmp_path))
    assert 0 <= results["test/acc"] <= 1 and results["train/loss"] > 0


def test_refusals_come_before_training_and_name_the_key(tmp_path):
    """experiment.build (everything before training) refuses them, with the key."""
    from snnexp.experiment import build
    from tests.conftest import QUICK
    from tests.helpers import compose_cfg

    for args, says in ((["model=resnet", "learner.memory=checkpoint"], "learner.memory='checkpoint' is invalid"),
                       (["learner.memory=online", "learner.memory_steps=3"], "learner.memory_steps"),
                       (["learner.memory=tbptt", "trainer.gradient_clip_val=1.0"], "trainer.gradient_clip_val")):
        with pytest.raises(ConfigError, match=re.escape(says)):
            build(compose_cfg(QUICK + args + ["logger=none"], run_dir=tmp_path), overrides=args)
