"""Each surrogate: Heaviside forward, the derivative of its primitive backward."""
import pytest
import torch

from snnexp.errors import ConfigError
from snnexp.neurons.surrogate import ATan, FastSigmoid, Rectangle, Sigmoid, Triangle

ALL = [ATan, Sigmoid, FastSigmoid, Triangle, Rectangle]


@pytest.mark.parametrize("cls", ALL)
def test_forward_is_heaviside(cls):
    x = torch.tensor([-1.0, -1e-6, 0.0, 1e-6, 2.0])
    assert cls()(x).tolist() == [0, 0, 1, 1, 1]


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_backward_is_derivative_of_primitive(cls, alpha):
    sur = cls(alpha)
    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    x = x[(x.abs() - 0.5 / alpha).abs() > 1e-3]  # away from the rectangle's jumps
    x1 = x.clone().requires_grad_()
    sur(x1).sum().backward()
    x2 = x.clone().requires_grad_()
    sur.primitive(x2).sum().backward()
    assert torch.allclose(x1.grad, x2.grad, atol=1e-9)


@pytest.mark.parametrize("cls", ALL)
def test_primitive_is_a_smooth_step(cls):
    sur = cls()
    assert float(sur.primitive(torch.tensor(-50.0))) == pytest.approx(0, abs=0.02)
    assert float(sur.primitive(torch.tensor(50.0))) == pytest.approx(1, abs=0.02)
    assert float(sur.primitive(torch.tensor(0.0))) == pytest.approx(0.5)


def test_known_values():
    assert float(ATan(2.0).grad(torch.tensor(0.0))) == pytest.approx(1.0)  # alpha/2
    assert float(Sigmoid(4.0).grad(torch.tensor(0.0))) == pytest.approx(1.0)  # alpha/4
    assert float(FastSigmoid(25.0).grad(torch.tensor(0.04))) == pytest.approx(12.5 / 4)  # alpha/2/(1+1)^2
    assert float(Triangle(1.0).grad(torch.tensor(0.25))) == pytest.approx(0.75)
    assert float(Rectangle(1.0).grad(torch.tensor(0.49))) == 1.0 and float(Rectangle(1.0).grad(torch.tensor(0.51))) == 0


def test_alpha_must_be_positive():
    with pytest.raises(ConfigError, match="neuron.surrogate.alpha"):
        ATan(0.0)
