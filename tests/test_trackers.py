"""logger=tensorboard and logger=mlflow: the metrics each library's own reader gets back equal results.json."""
import math

import mlflow
import pytest
from tensorboard.backend.event_processing import event_accumulator

from snnexp.api import run
from tests.conftest import QUICK
from tests.helpers import compose_cfg

pytestmark = pytest.mark.e2e

KEYS = ("test/acc", "test/loss", "val/acc", "val/loss")


def assert_same(logged: dict[str, float], results: dict) -> None:
    for key in KEYS:
        assert math.isclose(logged[key], results[key], rel_tol=1e-6), (key, logged[key], results[key])


def test_tensorboard_event_files_hold_the_run_metrics(tmp_path):
    results = run(compose_cfg(QUICK + ["logger=tensorboard"], run_dir=tmp_path))
    assert (tmp_path / "tensorboard").is_dir()
    acc = event_accumulator.EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    logged = {key: acc.Scalars(key)[-1].value for key in KEYS}
    assert_same(logged, results)


def test_mlflow_store_holds_the_run_metrics(tmp_path):
    results = run(compose_cfg(QUICK + ["logger=mlflow"], run_dir=tmp_path))
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "snnexp"]
    (mlflow_run,) = client.search_runs([experiment.experiment_id])
    assert mlflow_run.info.status == "FINISHED"
    assert mlflow_run.data.params["seed"] == "0"  # the config as hyper-parameters
    logged = {key: client.get_metric_history(mlflow_run.info.run_id, key)[-1].value for key in KEYS}
    assert_same(logged, results)
