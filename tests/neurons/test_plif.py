import math

import torch

from snnexp.neurons import LIF, PLIF


def test_plif_starts_as_lif_with_init_tau():
    torch.manual_seed(0)
    x = torch.rand(10, 4, 6) * 2
    assert torch.equal(PLIF(init_tau=3.0)(x), LIF(tau=3.0)(x))
    assert math.isclose(PLIF(init_tau=3.0).tau.item(), 3.0, rel_tol=1e-6)


def test_plif_tau_gets_a_gradient_and_changes_in_training():
    torch.manual_seed(0)
    plif = PLIF(init_tau=2.0)
    x = torch.rand(8, 16, 10) * 1.5
    target = torch.full((16, 10), 0.8)  # ask for more firing than tau=2 gives
    opt = torch.optim.SGD(plif.parameters(), lr=1.0)
    tau0 = plif.tau.item()
    for _ in range(5):
        opt.zero_grad()
        loss = (plif(x).mean(0) - target).square().mean()
        loss.backward()
        assert plif.w.grad is not None and plif.w.grad.abs() > 0
        opt.step()
    assert plif.tau.item() != tau0
    assert plif.tau.item() > 1.0  # the sigmoid keeps it above one step
