#!/usr/bin/env bash
# Every paper preset's QUICK variant (minutes each on a 2-core CPU), each writing
# docs/results/<preset>_quick/ through scripts/reproduce.py --quick.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
for preset in seed_wta diehl_cook_2015 rueckauer_2017 fang_2021; do
  $PY scripts/reproduce.py "$preset" --quick deploy.num_threads=1
done
