import functools

import pytest
import torch
from torch import nn

from snnexp.errors import ConfigError
from snnexp.learners.conversion import normalise, to_snn
from snnexp.learners.qcfs import QCFS, as_qcfs, as_relu, qcfs, with_qcfs
from snnexp.models import SpikingModel
from snnexp.neurons import IF


def test_forward_equals_the_definition_on_hand_computed_values():
    # lambda = 2, L = 4: h = 2 * clip(floor(2 x + 1/2) / 4, 0, 1)
    x = torch.tensor([-1.0, 0.2, 0.3, 0.76, 1.0, 1.7, 1.9, 3.0])
    # 2x + 1/2 = -1.5, 0.9, 1.1, 2.02, 2.5, 3.9, 4.3, 6.5 -> floor -2, 0, 1, 2, 2, 3, 4, 6 -> /4, clip, * 2
    expected = torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0, 1.5, 2.0, 2.0])
    assert torch.equal(qcfs(x, 2.0, 4), expected)
    assert torch.equal(qcfs(x, 2.0, 4, shift=0.0), torch.tensor([0.0, 0.0, 0.0, 0.5, 1.0, 1.5, 1.5, 2.0]))  # clip-floor


def test_gradients_pass_straight_through_the_floor():
    x = torch.tensor([-1.0, 0.2, 0.3, 0.76, 1.0, 1.7, 1.9, 3.0], requires_grad=True)
    lam = torch.tensor(2.0, requires_grad=True)
    h = qcfs(x, lam, 4)
    (dx,) = torch.autograd.grad(h.sum(), x, retain_graph=True)
    # dh/dx = 1 where 0 <= floor(x L / lambda + 1/2) / L <= 1 (both ends included), else 0
    assert torch.equal(dx, torch.tensor([0.0, 1, 1, 1, 1, 1, 1, 0]))
    dlam = torch.stack([torch.autograd.grad(h[i], lam, retain_graph=True)[0] for i in range(len(x))])
    # inside: h/lambda - x/lambda; clipped above: 1; below: 0
    expected = torch.tensor([0.0, 0 - 0.1, 0.25 - 0.15, 0.5 - 0.38, 0.5 - 0.5, 0.75 - 0.85, 1 - 0.95, 1.0])
    assert torch.allclose(dlam, expected, atol=1e-6)


def test_the_module_learns_its_threshold():
    act = QCFS(levels=4, threshold=2.0)
    assert isinstance(act.threshold, nn.Parameter)
    loss = act(torch.tensor([3.0, 5.0])).sum()  # both clipped: dh/dlambda = 1 each
    loss.backward()
    assert float(act.threshold.grad) == 2.0
    with pytest.raises(ConfigError, match=r"learner\.method\.levels"):
        QCFS(levels=0)


@pytest.mark.parametrize("levels, lam", [(8, 2.0), (4, 0.5), (1, 1.0)])
def test_if_with_half_threshold_start_reproduces_qcfs_exactly_at_T_equal_L(levels, lam):
    # constant inputs on a 1/64 grid (exact in float32), below zero, through every level and boundary, above lambda
    x = torch.arange(-64, 3 * 64 + 1, dtype=torch.float32) / 64 * lam
    neuron = IF(v_threshold=lam, v_init=lam / 2, reset="subtract")
    spikes = neuron(x.expand(levels, -1))  # [T = L, N]
    assert torch.equal(spikes.sum(0) * lam / levels, qcfs(x, lam, levels))
    floor_only = IF(v_threshold=lam, reset="subtract")(x.expand(levels, -1))  # v(0) = 0: floor, not round
    assert not torch.equal(floor_only.sum(0) * lam / levels, qcfs(x, lam, levels))


def test_the_converted_network_equals_its_qcfs_ann_at_T_equal_L_on_direct_input():
    torch.manual_seed(0)
    levels = 4
    ann = with_qcfs(nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)), levels, threshold=1.5)
    with torch.no_grad():
        ann[1].threshold.fill_(0.8)
    relu, scales = as_relu(ann)
    assert scales == {1: pytest.approx(0.8)} and isinstance(relu[1], nn.ReLU)
    source = normalise(relu, scales, output=False)
    reference = as_qcfs(source, levels)
    x = torch.rand(64, 6)
    with torch.no_grad():
        assert torch.allclose(reference(x), ann(x), atol=1e-5)  # normalising keeps the function
        snn = SpikingModel(list(to_snn(source, functools.partial(IF, reset="subtract", v_init=0.5), "membrane")),
                           step_mode="s", readout="membrane")
        out = snn(x.expand(levels, *x.shape)).mean(0)  # the output layer integrates: mean current = logits
    assert torch.allclose(out, ann(x), atol=1e-5)


def test_qcfs_goes_into_residual_blocks_and_comes_back_out_with_its_thresholds():
    from snnexp.network import Residual

    block = Residual([nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4)], [], "add", step_mode="s")
    ann = with_qcfs(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), block, nn.ReLU(), nn.Linear(4, 2)), 4, threshold=2.0)
    assert isinstance(ann[1], QCFS) and isinstance(ann[2].body[1], QCFS) and isinstance(ann[3], QCFS)
    with torch.no_grad():
        ann[2].body[1].threshold.fill_(0.5)
    relu, scales = as_relu(ann)
    assert scales == {1: 2.0, "2.body.1": 0.5, 3: 2.0}
    assert not any(isinstance(m, QCFS) for m in relu.modules()) and isinstance(relu[2].body[1], nn.ReLU)
    back = as_qcfs(relu, 4)
    assert [m.levels for m in back.modules() if isinstance(m, QCFS)] == [4, 4, 4]
