"""Every bad input: the key or file named with what to do, and, where the input can be checked up front, no
training. What can be checked up front is checked in-process (`refusal`: compose and build, where run.py
refuses); the command line's side (exit code 2, one message, no traceback, no checkpoint) once per kind of
refusal: snnexp's own check and Hydra's, before training, and a refusal after it."""
import os
import stat

import pytest
import torch

from snnexp.errors import ConfigError
from snnexp.experiment import build
from tests.conftest import QUICK, refusal, run_cli
from tests.helpers import compose_cfg, options

NO_CUDA = not torch.cuda.is_available()

# (what the user types, what the message must say): all caught before training
BEFORE_TRAINING = [
    (["neuron.tau=abc"], "neuron.tau='abc' is invalid: must be a number"),
    (["+neuron.taux=3"], "neuron.taux is not an option of neuron"),
    (["+trainer.max_epocs=4"], "did you mean max_epochs"),
    (["learner.optimizer.lr=-1"], "learner.optimizer (Adam: lr=-1"),
    (["learner=ann2snn", "encoding=saccade"], "encoding=saccade has no effect: learner=ann2snn encodes its input"),
    (["learner=ann2snn", "neuron=plif"], "neuron=plif has no effect: learner=ann2snn converts to its own neuron"),
    (["learner=stdp", "+trainer.gradient_clip_val=1.0"], "trainer.gradient_clip_val=1.0 is invalid: learner=stdp"),
    (["learner=hybrid", "+trainer.accumulate_grad_batches=2"], "trainer.accumulate_grad_batches=2 is invalid"),
    (["deploy=gpu", "+deploy.samples=3"], "deploy.samples is not an option of deploy"),
    # non-finite values, ranges, keys no part reads, and Hydra's own refusals: exit 2 like the rest
    (["neuron.v_threshold=inf"], "neuron.v_threshold=inf is invalid: must be a finite number"),
    (["neuron.tau=inf"], "neuron.tau=inf is invalid: must be a finite number"),
    (["seed=-1"], "seed=-1 is invalid: must be an integer from 0 to 4294967295"),
    (["+sed=1"], "+sed=1 has no effect: no part of snnexp reads a top-level 'sed'; did you mean seed?"),
    (["foo=1"], "Could not override 'foo'"),
    (["learner.tau=2"], "Could not override 'learner.tau'"),
    (["model=nope"], "Could not find 'model/nope'"),
    (["T=100000"], "T=100000 and dataset.batch_size=64 need about"),  # the memory estimate, not 17 s of work
    # Loihi: what training would produce, refused before it
    (["deploy=loihi", "learner=ann2snn"], "learner.input=poisson"),
    (["deploy=loihi", "encoding=direct"], "encoding=poisson"),
    (["deploy=loihi", "model=csnn"], "model.pool=avg"),
    (["deploy=loihi", "model=csnn", "model.pool=avg", "model.pool_first=false"], "model.pool_first=true"),
    (["deploy=loihi", "neuron=lif", "neuron.v_reset=-0.5"], "set neuron.v_reset=0"),
    (["deploy=loihi", "learner=ann2snn", "learner/method=qcfs", "learner.input=poisson", "model.readout=membrane"],
     "set model.readout=spikes"),  # a converted network's non-spiking output layer
]
if NO_CUDA:
    BEFORE_TRAINING.append((["experiment=rueckauer_2017_quick", "deploy=gpu"], "deploy=gpu needs a CUDA GPU"))


def _command_line(args: list[str]) -> list[str]:
    no_lava = ["deploy.run_lava=false"] if "deploy=loihi" in args else []  # the refusal comes before Lava anyway
    return QUICK + ["logger=none", *no_lava, *args]


@pytest.mark.parametrize("args, message", BEFORE_TRAINING, ids=[" ".join(a) for a, _ in BEFORE_TRAINING])
def test_refused_before_training(args, message):
    """Composing and building, what run.py does before it trains, refuses it with the message."""
    assert message in refusal(_command_line(args))


# One of each kind as typed: a value snnexp's check refuses, a key no part reads, and Hydra's refusal of a key.
KINDS = {"neuron.tau=abc", "+sed=1", "foo=1"}
ON_THE_COMMAND_LINE = [(args, message) for args, message in BEFORE_TRAINING if " ".join(args) in KINDS]
assert len(ON_THE_COMMAND_LINE) == len(KINDS), "a kind's case left BEFORE_TRAINING: choose another"


@pytest.mark.e2e
@pytest.mark.parametrize("args, message", ON_THE_COMMAND_LINE, ids=[" ".join(a) for a, _ in ON_THE_COMMAND_LINE])
def test_refused_on_the_command_line_with_exit_2_and_no_training(args, message, tmp_path):
    proc = run_cli(_command_line(args), run_dir=tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert message in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "checkpoints").exists(), "stopped only after training"


@pytest.mark.skipif(not NO_CUDA, reason="checks the refusal on a machine without CUDA")
@pytest.mark.parametrize("choice", [f"experiment={p}" for p in options("experiment")]
                         + [f"learner={lr}" for lr in options("learner")])
def test_every_preset_and_learner_with_deploy_gpu_stops_at_the_cuda_check(choice):
    """Every preset and learner composes with deploy=gpu (their deploy keys are ones GPUTarget takes) and
    stops at the CUDA check, before anything is built."""
    with pytest.raises(ConfigError, match="deploy=gpu needs a CUDA GPU"):
        build(compose_cfg([choice, "deploy=gpu"]))


def test_two_synapse_layers_in_a_row_are_refused_before_training():
    """No config builds this model: the target's check itself, on a learner whose model has it."""
    from snnexp.deploy.loihi import LoihiTarget
    from snnexp.learners.bptt import BPTT
    from snnexp.models.base import SpikingModel
    from snnexp.neurons import CUBA

    parts = build(compose_cfg(["deploy=loihi", "deploy.run_lava=false", "deploy.num_threads=1"]))
    n = parts.datamodule.in_shape[0] * parts.datamodule.in_shape[1] * parts.datamodule.in_shape[2]
    model = SpikingModel([torch.nn.Flatten(), torch.nn.Linear(n, 16, bias=False), torch.nn.Linear(16, 10, bias=False),
                          CUBA()], step_mode="m", readout="spikes")
    learner = BPTT(model, parts.encoder, 10, optimizer=torch.optim.Adam)
    with pytest.raises(ConfigError, match=r"net\.1 and net\.2 are two synapse layers in a row"):
        LoihiTarget(run_lava=False).check_learner(learner, parts.datamodule)


@pytest.mark.e2e
def test_a_lava_run_past_its_timeout_names_the_key(tmp_path):
    """After training (the run must happen to time out): exit 2 naming deploy.timeout_s, no traceback."""
    venv = tmp_path / "slow-lava"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text("#!/bin/sh\nexec sleep 30\n")  # a 'Lava' that never answers
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    proc = run_cli(QUICK + ["logger=none", "deploy=loihi", "deploy.samples=4", "deploy.timeout_s=0.5",
                            f"deploy.lava_venv={venv}"], run_dir=tmp_path / "run", check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "deploy.timeout_s=0.5 is too short" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "run" / "loihi" / "net.h5").is_file()  # what the run made before is kept
    assert os.path.getsize(tmp_path / "run" / "results.json") > 0
