#!/usr/bin/env bash
# The backbones' quick table (issue 23's acceptance runs): every paper backbone at width 0.25, T = 4, on
# 5,000 Fashion-MNIST training images for 2 epochs, tested on 2,000, on 1 thread, then scripts/table.py:
#   bash scripts/backbones_quick.sh [OUT] [MODEL ...]   (default outputs/backbones_quick; ~25 min on 2 cores)
# One run per model (model.width exists in these groups only, so no -m sweep from csnn's config).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-outputs/backbones_quick}
shift || true
PY=${PYTHON:-.venv/bin/python}
for model in ${@:-vgg resnet sew_resnet spikformer}; do
  OMP_NUM_THREADS=1 $PY run.py model=$model model.width=0.25 T=4 dataset=fashion_mnist dataset.limit_train=5000 \
    dataset.limit_test=2000 trainer.max_epochs=2 deploy.num_threads=1 logger=none trainer.enable_progress_bar=false \
    hydra.run.dir="$OUT/$model" > "$OUT.$model.log" 2>&1 || echo "$model failed: $OUT.$model.log"
done
$PY scripts/table.py "$OUT" --metrics test/acc,test/rate/mean,test/synops,train/samples_per_s,wall_s
