import torch

from snnexp.neurons import IF


def test_if_spike_times_constant_input():
    # v accumulates 0.4 per step: 0.4, 0.8, 1.2 (spike, soft -> 0.2), 0.6, 1.0 (spike, -> 0.0)
    s, state = IF().run(torch.full((5, 1), 0.4))
    assert s.flatten().tolist() == [0, 0, 1, 0, 1]
    assert abs(state.v.item()) < 1e-6


def test_if_rate_times_threshold_approaches_relu():
    # reset by subtraction: rate * threshold -> max(x, 0) for constant x in [0, threshold]
    x = torch.tensor([-0.5, 0.0, 0.13, 0.5, 0.77, 1.0])
    T = 1000
    s, _ = IF(v_threshold=1.0).run(x.expand(T, -1))
    assert torch.allclose(s.mean(0), x.clamp(min=0), atol=1.0 / T + 1e-6)


def test_if_hard_reset():
    s, state = IF(reset="hard").run(torch.full((3, 1), 0.7))
    assert s.flatten().tolist() == [0, 1, 0] and abs(state.v.item() - 0.7) < 1e-6
