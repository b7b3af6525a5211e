"""The Python API: compose/build/run/load give what the CLI gives, and load rebuilds the trained network."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import snnexp
from snnexp.context import job_config
from snnexp.version import RUN_FORMAT
from tests.conftest import QUICK, ROOT, run_cli
from tests.helpers import compose_cfg

NO_LOGGER = ["logger=none"]


def test_compose_gives_the_clis_config_and_records_the_composition():
    overrides = ["neuron=plif", "learner.loss=mse", "T=4"]
    cfg = snnexp.compose(overrides)
    cli = compose_cfg(overrides)  # Hydra's own composition, as run.py gets it
    assert OmegaConf.to_container(job_config(cfg)) == OmegaConf.to_container(cli)
    assert list(cfg.hydra.overrides.task) == overrides
    assert cfg.hydra.runtime.choices.neuron == "plif" and cfg.hydra.runtime.choices.dataset == "digits"
    assert OmegaConf.to_container(cfg.hydra.run, resolve=False)["dir"].startswith("outputs/runs/${now:")
    assert snnexp.compose(run_dir="/x/y").hydra.run.dir == "/x/y"


def test_compose_refuses_what_the_cli_refuses():
    with pytest.raises(snnexp.ConfigError, match="Could not find 'neuron/hodgkin_huxley'") as e:
        snnexp.compose(["neuron=hodgkin_huxley"])
    assert "plif" in str(e.value) and "alif" in str(e.value)  # the available options
    with pytest.raises(snnexp.ConfigError, match="Key 'foo' is not in struct"):
        snnexp.compose(["trainer.foo=1"])
    with pytest.raises(snnexp.ConfigError, match="Error parsing override"):
        snnexp.compose(["neuron.tau=="])
    with pytest.raises(TypeError, match="list of strings"):
        snnexp.compose("neuron=plif")


def test_build_gives_untrained_parts_that_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parts = snnexp.build(snnexp.compose(["model=mlp", "T=3"]))
    assert isinstance(parts, snnexp.Parts) and parts.learner.model is parts.model
    x = torch.rand(5, *parts.datamodule.in_shape)  # [N, 1, 8, 8]
    x_seq = parts.encoder(x, generator=torch.Generator().manual_seed(0))
    assert x_seq.shape == (3, 5, 1, 8, 8)
    assert parts.model(x_seq).shape == (3, 5, 10)
    assert list(tmp_path.iterdir()) == []  # building writes nothing


@pytest.mark.e2e
def test_api_run_equals_cli_run(tmp_path):
    """Same overrides: the same files in the run dir, the same config, choices, overrides and results."""
    args = QUICK + NO_LOGGER + ["neuron=plif", "seed=3"]
    api = snnexp.run(args, run_dir=tmp_path / "api")
    run_cli(args, run_dir=tmp_path / "cli")
    cli = json.loads((tmp_path / "cli" / "results.json").read_text())

    def files(d):
        return {str(p.relative_to(d)) for p in d.rglob("*") if p.is_file() and p.name != "run.log"}

    assert files(tmp_path / "api") == files(tmp_path / "cli")
    assert (tmp_path / "api/.hydra/config.yaml").read_text() == (tmp_path / "cli/.hydra/config.yaml").read_text()
    assert OmegaConf.load(tmp_path / "api/.hydra/overrides.yaml") == OmegaConf.load(tmp_path / "cli/.hydra/overrides.yaml")
    for key in ("choices", "overrides", "snnexp", "test/acc", "test/loss", "val/acc", "train/loss", "test/synops"):
        assert api[key] == cli[key], key
    assert api["snnexp"] == {"version": snnexp.__version__, "format": RUN_FORMAT}
    ckpt = torch.load(tmp_path / "api/checkpoints/last.ckpt", weights_only=True)
    assert ckpt["snnexp"] == api["snnexp"]


@pytest.mark.e2e
def test_load_recomputes_the_test_accuracy_exactly(tmp_path, monkeypatch):
    """A run dir chosen like the CLI's; the loaded model on the learner's test spikes gives results.json's test/acc."""
    monkeypatch.chdir(tmp_path)
    # trained for 2 full epochs (~0.9), tested on the whole test set
    quick = [o for o in QUICK if not o.startswith(("trainer.limit_test_batches", "trainer.limit_train_batches"))]
    results = snnexp.run(quick + NO_LOGGER + ["trainer.max_epochs=2"])
    run_dir = Path(results["run_dir"])
    assert re.fullmatch(r"outputs/runs/\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d-\d{6}", str(run_dir.relative_to(tmp_path)))

    loaded = snnexp.load(run_dir)
    assert not loaded.model.training and loaded.model is loaded.learner.model
    assert loaded.cfg == OmegaConf.load(run_dir / ".hydra/config.yaml")
    generator = loaded.learner.generator("test")  # re-seeded, as at the start of the test epoch
    correct = total = loss_sum = 0
    with torch.no_grad():
        for x, y in loaded.datamodule.test_dataloader():
            out = loaded.model(loaded.encoder(x, generator=generator)).mean(0)  # [T, N, 10] -> [N, 10]
            correct += int((out.argmax(-1) == y).sum())
            loss_sum += float(loaded.learner.loss(out, y)) * len(y)
            total += len(y)
    assert total == 360  # digits' held-out 20 %
    acc = (torch.tensor(correct, dtype=torch.float32) / total).item()  # as torchmetrics computes it
    assert acc == results["test/acc"]
    assert 0.5 < acc < 1.0  # trained (chance is 0.1): an untrained or other network misses it
    # The loss sees every output, not just the argmax: other input spikes (another generator) miss it.
    assert loss_sum / total == pytest.approx(results["test/loss"], rel=1e-6)


@pytest.mark.e2e
def test_load_takes_a_learner_whose_checkpoint_holds_configs(tmp_path):
    """STDP keeps its rule's DictConfig among its hyperparameters: still loads (weights_only, OmegaConf allowed)."""
    results = snnexp.run(QUICK + NO_LOGGER + ["learner=stdp", "model=wta"], run_dir=tmp_path)
    loaded = snnexp.load(tmp_path)
    x, y = next(iter(loaded.datamodule.test_dataloader()))  # the one test batch of QUICK
    with torch.no_grad():
        out = loaded.learner(x, "test")  # [N, classes] from the learner's own readout (assigned labels)
    acc = (out.argmax(-1) == y).sum().float() / len(y)
    assert acc.item() == results["test/acc"]


@pytest.mark.e2e
def test_load_reads_a_run_saved_before_the_datamodules_were_renamed(finished_run_copy):
    """A run dir whose config names snnexp.data.digits.Digits (before issue 26) loads as DigitsData."""
    run_dir = finished_run_copy  # QUICK + NO_LOGGER
    config = run_dir / ".hydra/config.yaml"
    saved = OmegaConf.load(config)
    assert saved.dataset._target_ == "snnexp.data.digits.DigitsData"
    saved.dataset._target_ = "snnexp.data.digits.Digits"
    OmegaConf.save(saved, config)
    loaded = snnexp.load(run_dir)
    assert type(loaded.datamodule).__name__ == "DigitsData"
    assert loaded.cfg.dataset._target_ == "snnexp.data.digits.DigitsData"
    ckpt = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)
    for name, value in loaded.learner.state_dict().items():
        assert torch.equal(value, ckpt["state_dict"][name]), name


@pytest.mark.e2e
def test_load_refuses_what_it_cannot_load(finished_run_copy, tmp_path):
    with pytest.raises(snnexp.ConfigError, match="no such run dir"):
        snnexp.load(tmp_path / "nowhere")
    with pytest.raises(snnexp.ConfigError, match=r"\.hydra/config\.yaml does not exist"):
        snnexp.load(tmp_path)
    run_dir = finished_run_copy  # QUICK + NO_LOGGER
    ckpt_path = run_dir / "checkpoints/last.ckpt"
    ckpt = torch.load(ckpt_path, weights_only=True)

    ckpt["snnexp"] = {"version": "0.0.1", "format": RUN_FORMAT - 1}
    torch.save(ckpt, ckpt_path)
    with pytest.raises(snnexp.ConfigError, match=r"written by snnexp 0\.0\.1 \(run format 0\)"):
        snnexp.load(run_dir)
    del ckpt["snnexp"]
    torch.save(ckpt, ckpt_path)
    with pytest.raises(snnexp.ConfigError, match="no snnexp version stamp"):
        snnexp.load(run_dir)
    ckpt["snnexp"] = {"version": snnexp.__version__, "format": RUN_FORMAT}
    ckpt["state_dict"]["model.extra"] = torch.zeros(1)  # a network the config does not build
    torch.save(ckpt, ckpt_path)
    with pytest.raises(snnexp.ConfigError, match="does not fit the network"):
        snnexp.load(run_dir)
    ckpt_path.unlink()
    with pytest.raises(snnexp.ConfigError, match="checkpoints/last.ckpt does not exist"):
        snnexp.load(run_dir)


@pytest.mark.e2e
def test_resume_an_api_run_keeps_its_groups(tmp_path):
    """resume= works on an API run; the resumed run records (and loads as) the old run's groups."""
    first = snnexp.run(QUICK + NO_LOGGER + ["neuron=plif"], run_dir=tmp_path / "first")
    second = snnexp.run([f"resume={tmp_path / 'first'}", "trainer.max_epochs=2"], run_dir=tmp_path / "second")
    assert second["train/epochs"] == 2 and second["resumed_from"] == first["checkpoint"]
    assert second["choices"]["neuron"] == "plif"
    loaded = snnexp.load(tmp_path / "second")
    assert loaded.cfg.neuron._target_.endswith(".PLIF") and loaded.cfg.trainer.max_epochs == 2


@pytest.mark.e2e
def test_docs_api_example_runs_after_a_plain_import(tmp_path):
    """The docs' Python API block (docs/howto/api.md), as a user runs it: its own process, another folder."""
    page = (ROOT / "docs" / "howto" / "api.md").read_text()
    block = re.search(r"<!-- api-example.*?-->\n```python\n(.*?)```\n<!-- /api-example -->", page, re.S)
    assert block, "docs/howto/api.md lost its API example"
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", block.group(1)], cwd=tmp_path, capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "CSNN (1, 8, 8)" in proc.stdout and "first test batch:" in proc.stdout
    runs = list((tmp_path / "outputs" / "runs").glob("*/*/results.json"))
    assert len(runs) == 1


@pytest.mark.e2e
def test_load_of_an_ann2snn_run_gives_its_converted_network(tmp_path):
    """The checkpoint holds the trained ANN; load converts it again, so the SNN's test accuracy comes back."""
    quick = [o for o in QUICK if not o.startswith("trainer.limit_test_batches")]
    results = snnexp.run(quick + NO_LOGGER + ["learner=ann2snn", "learner.T_list=[32]", "learner.norm_samples=128",
                                             "trainer.limit_train_batches=10"], run_dir=tmp_path)
    loaded = snnexp.load(tmp_path)
    assert any(type(m).__name__ == "IF" for m in loaded.model.modules())  # the converted SNN, not the ANN's model
    generator = loaded.learner.generator("test")
    correct = total = 0
    with torch.no_grad():
        for x, y in loaded.datamodule.test_dataloader():
            pred = loaded.model(loaded.encoder(x, generator=generator)).sum(0).argmax(-1)
            correct += int((pred == y).sum())
            total += len(y)
    assert correct / total == pytest.approx(results["test/acc"], abs=1e-6) and results["test/acc"] > 0.5


@pytest.mark.e2e
def test_run_gives_back_the_thread_count_and_environment(tmp_path):
    from snnexp.context import RUN_DIR_ENV

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        snnexp.run(QUICK + ["logger=none", "deploy.num_threads=2"], run_dir=tmp_path / "run")
        assert torch.get_num_threads() == 1
        assert RUN_DIR_ENV not in os.environ
    finally:
        torch.set_num_threads(before)
