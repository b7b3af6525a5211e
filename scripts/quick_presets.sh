#!/usr/bin/env bash
# Run every quick paper preset on this machine and write its table to docs/results/<preset>/.
#   bash scripts/quick_presets.sh            (about 15 minutes on a 2-core CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
run() {  # name, overrides...
  local name=$1; shift
  local sweep=outputs/presets/$name
  echo "== $(date +%T) python run.py -m $* logger=none"
  $PY run.py -m "$@" logger=none trainer.enable_progress_bar=false hydra.sweep.dir=$sweep > $sweep.log 2>&1 || echo "   (some jobs failed: see $sweep.log)"
  mkdir -p docs/results/$name
  $PY scripts/table.py $sweep --out docs/results/$name --title "$name (quick variant, $(nproc) CPU cores)" \
      --metrics "${METRICS:-test/acc,train/samples_per_s,wall_s}" > /dev/null
  { echo "# $name"; echo; echo "Command: \`python run.py -m $* logger=none\`"; echo;
    echo "Machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -m), no GPU; $(date -u +%F)."; echo;
    cat docs/results/$name/table.md; } > docs/results/$name/README.md
}
mkdir -p outputs/presets
run seed_wta_quick experiment=seed_wta_quick seed=0,1 deploy.num_threads=1
run diehl_cook_2015_quick experiment=diehl_cook_2015_quick deploy.num_threads=1
METRICS="test/acc,ann/test/acc,snn/test/acc/T8,snn/test/acc/T32,snn/test/acc/T128,snn/test/acc/T256,wall_s" \
  run rueckauer_2017_quick experiment=rueckauer_2017_quick
run fang_2021_quick experiment=fang_2021_quick neuron=lif,plif deploy.num_threads=1
