import torch

from snnexp.encoding import Poisson
from snnexp.learners import BPTT
from snnexp.models import MLP
from snnexp.neurons import LIF


def _learner(loss="ce"):
    torch.manual_seed(0)
    model = MLP(LIF, in_shape=(1, 4, 4), num_classes=3, hidden=(32,))
    return BPTT(model, Poisson(T=6), num_classes=3, loss=loss,
                optimizer=lambda params: torch.optim.Adam(params, lr=0.01))


def test_training_steps_reduce_the_loss():
    for loss in ("ce", "mse"):
        learner = _learner(loss)
        opt = learner.configure_optimizers()
        x = torch.zeros(30, 1, 4, 4)
        y = torch.arange(30) % 3
        for i in range(30):  # three classes light up three different rows
            x[i, 0, y[i]] = 1.0
        losses = []
        for _ in range(40):
            opt.zero_grad()
            out = learner(x, "train")
            value = learner.loss(out, y)
            value.backward()
            opt.step()
            losses.append(value.item())
        assert losses[-1] < 0.7 * losses[0], loss
        assert (learner(x, "test").argmax(1) == y).float().mean() > 0.9


def test_evaluation_encoding_is_reseeded_each_epoch_training_is_not():
    learner = _learner()
    x = torch.rand(4, 1, 4, 4)
    learner.on_validation_epoch_start()
    a = learner(x, "val")
    learner.on_validation_epoch_end()
    learner.on_validation_epoch_start()
    b = learner(x, "val")
    learner.on_validation_epoch_end()
    assert torch.equal(a, b)
    assert not torch.equal(learner.encoder(x, learner.generator("train")), learner.encoder(x, learner.generator("train")))
