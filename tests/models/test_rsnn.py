"""model=rsnn: recurrence carries what a feed-forward network forgets (the SHD-format order fixture)."""
from __future__ import annotations

import pytest

import snnexp
from tests.data.event_files import write_shd_order

RUN = ["dataset=shd", "model=rsnn", "T=20", "trainer.max_epochs=10", "logger=none", "deploy.num_threads=1",
       "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


@pytest.mark.e2e
@pytest.mark.slow
def test_rsnn_learns_the_order_a_feed_forward_twin_cannot(tmp_path):
    """Classes differ only in which of two bursts comes first: the recurrent network learns them; the
    same network without feedback can name the two bands but hardly their order."""
    root = write_shd_order(tmp_path / "data", n_train=400, n_test=100)
    data = [f"dataset.root={root}", f"dataset.cache_dir={tmp_path / 'cache'}"]
    acc = {rec: snnexp.run(RUN + data + [f"model.recurrent={rec}"], run_dir=tmp_path / f"rec{rec}")["test/acc"]
           for rec in ("true", "false")}
    assert acc["true"] >= 0.85 and acc["true"] > acc["false"] + 0.1, acc
