"""CUBA against hand-computed sequences and against a plain-integer copy of lava-nc's PyLifModelBitAcc."""
import random

import pytest
import torch

from snnexp.errors import ConfigError
from snnexp.neurons import CUBA
from snnexp.neurons.cuba import CUBAState, cuba_step


def lava_lif_reference(a_seq: list[int], i_decay: int, v_decay: int, vth: int, bias: int = 0) -> list[int]:
    """lava-nc 0.10 PyLifModelBitAcc.run_spk in Python integers (du = i_decay - 1, dv = v_decay, bias_exp 6)."""
    def decay(x: int, d: int) -> int:  # np.sign(p) * (|p| >> 12)
        p = x * (4096 - d)
        return (1 if p >= 0 else -1) * (abs(p) >> 12)

    u = v = 0
    spikes = []
    for a in a_seq:
        u = decay(u, i_decay) + (a << 6)
        u = u - 2 ** 24 if u > 2 ** 23 else (u + 2 ** 24 if u <= -2 ** 23 else u)
        v = max(-(2 ** 23 - 1), min(2 ** 23 - 1, decay(v, v_decay) + u + (bias << 6)))
        spikes.append(int(v > vth << 6))
        if spikes[-1]:
            v = 0
    return spikes


def fixed(i_decay: int, v_decay: int, vth: int, bias: float = 0.0) -> CUBA:
    n = CUBA(current_decay=i_decay / 4096, voltage_decay=v_decay / 4096, v_threshold=vth, fixed_point=True,
             w_scale=1.0)
    n.bias = torch.tensor(float(bias))
    return n


def test_float_trajectory_by_hand():
    # di = 1/2, dv = 1/4, theta 1, x = 0.6: u 0.6, v 0.6 | u 0.9, v 1.35 spike -> 0 | u 1.05, v 1.05 spike
    s = CUBA(current_decay=0.5, voltage_decay=0.25)(torch.full((3, 1), 0.6))
    assert s.flatten().tolist() == [0, 1, 1]


def test_fixed_point_trajectory_by_hand():
    # i_decay 2048, v_decay 1024, vth 10 (640 in state units), a = 7 (448):
    # u 448, v 448 | u 224+448 = 672, v 336+672 = 1008 > 640 spike -> 0 | u 336+448 = 784, v 784 spike
    n = fixed(2048, 1024, 10)
    s, state = n.run(torch.full((3, 1), 7.0))
    assert s.flatten().tolist() == [0, 1, 1]
    assert state.u.item() == 784 and state.v.item() == 0


def test_fixed_point_truncates_toward_zero():
    # u = -3 with half decay: -1.5 truncates to -1 (a floor would give -2)
    p = fixed(2048, 0, 10).params()
    _, state = cuba_step(torch.zeros(1), CUBAState(torch.tensor([-3.0], dtype=torch.float64),
                                                   torch.zeros(1, dtype=torch.float64)), p)
    assert state.u.item() == -1 and state.v.item() == -1


def test_fixed_point_wraps_current_and_clips_voltage():
    a = [130000, 130000, 130000, -130000, -130000, -130000, -130000]  # 64 a > 2^23: wraps
    n = fixed(1, 1, 131071)
    s, state = n.run(torch.tensor(a, dtype=torch.float32).view(-1, 1))
    assert s.flatten().tolist() == lava_lif_reference(a, 1, 1, 131071)
    assert abs(state.v.item()) <= 2 ** 23 - 1


@pytest.mark.parametrize("seed", range(4))
def test_fixed_point_is_bit_exact_with_lava_arithmetic(seed):
    rng = random.Random(seed)
    i_decay, v_decay, vth, bias = rng.randint(1, 4096), rng.randint(0, 4095), rng.randint(1, 400), rng.randint(-20, 20)
    a = [rng.randint(-300, 600) for _ in range(60)]
    s, _ = fixed(i_decay, v_decay, vth, bias).run(torch.tensor(a, dtype=torch.float32).view(-1, 1))
    assert s.flatten().int().tolist() == lava_lif_reference(a, i_decay, v_decay, vth, bias)


def test_fixed_point_trains_straight_through():
    n = CUBA(current_decay=0.5, voltage_decay=0.25, fixed_point=True, w_scale=64)
    x = (torch.rand(8, 4, 5, generator=torch.Generator().manual_seed(0)) * 2).requires_grad_()
    s = n(x)
    assert s.dtype == x.dtype and set(s.unique().tolist()) <= {0.0, 1.0}
    s.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_fixed_point_rounds_input_to_weight_units():
    # w_scale 64: an input of 0.51 is 32.64 weight units, rounded to 33; no leak, threshold 200 never reached
    a = fixed(4096, 0, 200).run(torch.full((4, 1), 33.0))[1]
    n = CUBA(current_decay=1.0, voltage_decay=0.0, v_threshold=200 / 64, fixed_point=True, w_scale=64)
    b = n.run(torch.full((4, 1), 0.51))[1]
    assert a.v.item() == b.v.item() == 4 * 33 * 64


def test_step_function_matches_module():
    x = torch.rand(6, 3, 4, generator=torch.Generator().manual_seed(1)) * 2
    for fp in (False, True):
        n = CUBA(current_decay=0.25, voltage_decay=0.1, fixed_point=fp)
        state = n.initial_state(x[0])
        steps = []
        for x_t in x:
            s, state = cuba_step(x_t, state, n.params())
            steps.append(s)
        assert torch.equal(torch.stack(steps), n(x))


@pytest.mark.parametrize("kwargs, key", [
    ({"current_decay": 0.0}, "neuron.current_decay"),
    ({"voltage_decay": 1.0}, "neuron.voltage_decay"),
    ({"reset": "subtract"}, "neuron.reset"),
    ({"fixed_point": True, "v_threshold": 3000.0, "w_scale": 64}, "neuron.v_threshold"),
])
def test_invalid_values_name_their_key(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        CUBA(**kwargs)
