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
    for loss in ("ce", "mse", "tet"):
        learner = _learner(loss)
        opt = learner.configure_optimizers()
        x = torch.zeros(30, 1, 4, 4)
        y = torch.arange(30) % 3
        for i in range(30):  # three classes light up three different rows
            x[i, 0, y[i]] = 1.0
        losses = []
        for _ in range(40):
            opt.zero_grad()
            out_seq = learner.model(learner.encoder(x, generator=learner.generator("train")))
            value = learner.sequence_loss(out_seq, y)
            value.backward()
            opt.step()
            losses.append(value.item())
        assert losses[-1] < 0.7 * losses[0], loss
        assert (learner(x, "test").argmax(1) == y).float().mean() > 0.9


def test_tet_is_the_per_step_cross_entropy_plus_a_pull_towards_the_means():
    """Deng et al. 2022: (1 - lambda) mean_t CE(O_t, y) + lambda MSE(O, means); worked by hand for T = 2."""
    learner = BPTT(MLP(LIF, in_shape=(2,), num_classes=2), Poisson(T=2), num_classes=2, loss="tet", tet_lambda=0.5,
                   tet_means=1.0, optimizer=lambda params: torch.optim.Adam(params))
    out_seq = torch.tensor([[[2.0, 0.0]], [[0.0, 0.0]]])  # [T=2, N=1, K=2]
    ce = (torch.log1p(torch.exp(torch.tensor(-2.0))) + torch.log(torch.tensor(2.0))) / 2  # steps 0 and 1, label 0
    mse = ((2 - 1) ** 2 + 1 + 1 + 1) / 4
    torch.testing.assert_close(learner.sequence_loss(out_seq, torch.tensor([0])), 0.5 * ce + 0.5 * mse)


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
