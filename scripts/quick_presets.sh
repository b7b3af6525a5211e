#!/usr/bin/env bash
# Every paper preset's QUICK variant (minutes each on a 2-core CPU), each writing
# docs/results/<preset>_quick/ through scripts/reproduce.py --quick.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
$PY scripts/write_event_fixtures.py   # outputs/fixtures: shd_rsnn_quick's SHD-format order task
for preset in seed_wta diehl_cook_2015 rueckauer_2017 fang_2021 cifar10_resnet19_tet cifar10_vgg16_qcfs \
              cifar10_spikformer dvs_gesture_sew_resnet shd_rsnn; do
  $PY scripts/reproduce.py "$preset" deploy.num_threads=1 --quick
done
