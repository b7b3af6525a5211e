#!/usr/bin/env bash
# The runs behind docs/results/ann2snn_low_latency/ (issue 15): csnn on Fashion-MNIST, 20 ANN epochs, one
# run at a time, one torch thread. Then: python scripts/ann2snn_low_latency.py (the table).
#   bash scripts/ann2snn_low_latency.sh [name ...]     # default: every run below, in order
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-outputs/ann2snn_low_latency}
COMMON=(learner=ann2snn dataset=fashion_mnist model=csnn trainer.max_epochs=20 "learner.T_list=[1,2,4,8,16,32,64,128,256]"
        deploy.num_threads=1 logger=none trainer.enable_progress_bar=false)
declare -A RUNS=(
  [qcfs_L8]="learner/method=qcfs learner.method.levels=8"
  [calibrate_light]="learner/method=calibrate learner.method.mode=light"
  [qcfs_L8_membrane]="learner/method=qcfs learner.method.levels=8 model.readout=membrane"
  [rate_membrane]="learner/method=rate model.readout=membrane"
  [calibrate_advanced]="learner/method=calibrate learner.method.mode=advanced"
)
ORDER=(qcfs_L8 calibrate_light qcfs_L8_membrane rate_membrane calibrate_advanced)
for name in "${@:-${ORDER[@]}}"; do
  # shellcheck disable=SC2086
  echo "$PY run.py ${COMMON[*]} ${RUNS[$name]} hydra.run.dir=$OUT/$name"
  $PY run.py "${COMMON[@]}" ${RUNS[$name]} "hydra.run.dir=$OUT/$name" > "$OUT/$name.log" 2>&1 || echo "$name failed"
done
