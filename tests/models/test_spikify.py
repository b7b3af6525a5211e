import functools
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnexp.models import CSNN, MLP, SpikingModel, run_steps, spikify
from snnexp.neurons import IF, LIF

IF_SUB = functools.partial(IF, reset="subtract")


def _param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_spikify_replaces_activations_and_keeps_everything_else():
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(36, 16), nn.LeakyReLU(0.1), nn.Dropout(0.2), nn.Linear(16, 8), nn.Tanh(),
                        nn.Linear(8, 3))
    snn = spikify(ann, IF_SUB)
    assert _param_count(snn) == _param_count(ann)
    assert len(snn) == len(ann)
    for a, s in zip(ann, snn):
        if isinstance(a, (nn.ReLU, nn.LeakyReLU, nn.Tanh)):
            assert isinstance(s, IF) and s.reset_mode == "subtract"
        else:
            assert type(s) is type(a) and s is not a
            assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), s.state_dict().values()))
    assert isinstance(ann[2], nn.ReLU)  # the original is untouched


def test_spikify_reaches_nested_modules_and_gives_a_shared_activation_one_neuron_per_place():
    relu = nn.ReLU()
    ann = nn.Sequential(nn.Linear(4, 4), relu, nn.Sequential(nn.Linear(4, 4), relu), nn.Linear(4, 2))
    snn = spikify(ann, IF_SUB)
    assert isinstance(snn[1], IF) and isinstance(snn[2][1], IF) and snn[1] is not snn[2][1]


def test_spikify_turns_a_relu_backbone_into_the_spiking_one():
    torch.manual_seed(0)
    ann = CSNN(nn.ReLU, in_shape=(1, 8, 8), num_classes=10, channels=(4, 4), hidden=(16,), step_mode="s")
    snn = spikify(ann, IF_SUB)
    ref = CSNN(IF_SUB, in_shape=(1, 8, 8), num_classes=10, channels=(4, 4), hidden=(16,), step_mode="s")
    assert [type(m) for m in snn.net] == [type(m) for m in ref.net]
    assert _param_count(snn) == _param_count(ann)
    assert all(m.step_mode == "s" for m in snn.spiking_layers().values())  # the model's own mode
    x_seq = torch.rand(6, 3, 1, 8, 8)
    ref.load_state_dict(snn.state_dict())
    assert torch.equal(snn(x_seq), ref(x_seq))


def test_run_steps_runs_a_spikified_model_like_a_spiking_model():
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3), nn.ReLU())
    snn = spikify(ann, IF_SUB)
    x_seq = torch.rand(10, 2, 1, 4, 4) * 2
    out = run_steps(snn, x_seq)
    assert out.shape == (10, 2, 3) and set(out.unique().tolist()) <= {0.0, 1.0}
    wrapped = SpikingModel(list(snn), step_mode="m", readout="spikes")
    assert torch.equal(wrapped(x_seq), out)
    assert torch.equal(run_steps(snn, x_seq), out)  # fresh state each run


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.act = nn.Linear(4, 4), nn.Linear(4, 2), nn.ReLU()

    def forward(self, x):
        x = self.act(self.fc1(x))
        return torch.sigmoid(F.relu(self.fc2(x))).tanh()


class Reused(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.relu = nn.Linear(4, 4), nn.Linear(4, 2), nn.ReLU()

    def forward(self, x):
        return self.relu(self.fc2(self.relu(self.fc1(x))))


def test_functional_activations_are_reported_by_name_not_skipped():
    with pytest.raises(ValueError) as info:
        spikify(nn.Sequential(Functional()), IF_SUB)
    message = str(info.value)
    for call in ("torch.sigmoid(", "F.relu(", ".tanh()"):
        assert call in message, call
    assert "Functional.forward line" in message and "self.act(" not in message
    with pytest.warns(UserWarning, match="F.relu"):
        snn = spikify(Functional(), IF_SUB, on_functional="warn")
    assert isinstance(snn.act, IF)


def test_an_activation_module_called_twice_is_reported():
    with pytest.raises(ValueError, match=r"self.relu is called 2 times"):
        spikify(Reused(), IF_SUB)


def test_project_models_have_nothing_to_report():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for model in (MLP(LIF, in_shape=(1, 4, 4), num_classes=3), CSNN(nn.ReLU, in_shape=(1, 8, 8), num_classes=3)):
            spikify(model, IF_SUB)
