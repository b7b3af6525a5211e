#!/usr/bin/env bash
# STDP training speed beside an older checkout, interleaved run by run (the machine's speed drifts):
#   bash scripts/bench_stdp.sh OLD_CHECKOUT [PAIRS=3]
# Each run is `run.py experiment=diehl_cook_2015_quick deploy.num_threads=1 logger=none` (Diehl & Cook,
# ALIF's per-step loop, 5,000 digits); prints each run's test/acc and train/samples_per_s.
set -euo pipefail
old=$(cd "$1" && pwd); pairs=${2:-3}
new=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$new/.venv/bin/python}
out=$(mktemp -d)
echo "# run.py experiment=diehl_cook_2015_quick deploy.num_threads=1 logger=none: $old (old) and $new (new), interleaved"
for i in $(seq "$pairs"); do
  for tree in "$old" "$new"; do
    dir=$out/$(basename "$tree")_$i
    (cd "$tree" && PYTHONPATH=$tree "$python" run.py experiment=diehl_cook_2015_quick deploy.num_threads=1 logger=none \
      hydra.run.dir="$dir" > "$dir.log" 2>&1)
    "$python" -c "import json, sys; r = json.load(open(sys.argv[1])); print(sys.argv[2], sys.argv[3], \
'test/acc %.4f train/samples_per_s %.0f' % (r['test/acc'], r['train/samples_per_s']))" "$dir/results.json" "$tree" "$i"
  done
done
