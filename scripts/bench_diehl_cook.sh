#!/usr/bin/env bash
# Diehl & Cook's training speed on 1 thread at 1,600 and 6,400 neurons, beside an older checkout,
# interleaved run by run (scripts/bench_runs.sh); the full preset's input (T = 350, 63.75 Hz), every
# image shown once, a short training set:
#   bash scripts/bench_diehl_cook.sh OLD_CHECKOUT [PAIRS]
# e.g. git archive c61ea8e | tar -x -C /tmp/old && PYTHON=.venv/bin/python bash scripts/bench_diehl_cook.sh /tmp/old 2
# Every image shown once is learner.min_spikes=null; a checkout from before the STDP keys moved to the learner
# takes model.min_spikes=null instead: OLD_ARGS=model.min_spikes=null bash scripts/bench_diehl_cook.sh ...
set -euo pipefail
old=$1; pairs=${2:-2}; here=$(cd "$(dirname "$0")" && pwd)
export OMP_NUM_THREADS=1
export OLD_ARGS=${OLD_ARGS:-learner.min_spikes=null} NEW_ARGS=learner.min_spikes=null
common=(experiment=diehl_cook_2015 dataset=fashion_mnist deploy.num_threads=1 logger=none trainer.enable_progress_bar=false
        dataset.limit_test=200 learner.label_samples=200)
bash "$here/bench_runs.sh" "$old" "$pairs" "${common[@]}" model.n_neurons=1600 dataset.limit_train=1000
bash "$here/bench_runs.sh" "$old" "$pairs" "${common[@]}" model.n_neurons=6400 dataset.limit_train=500
