#!/usr/bin/env bash
# A run's training speed beside an older checkout, interleaved run by run (the machine's speed drifts):
#   bash scripts/bench_runs.sh OLD_CHECKOUT PAIRS [run.py overrides...]
# e.g. bash scripts/bench_runs.sh /tmp/old 3 experiment=diehl_cook_2015_quick deploy.num_threads=1 logger=none
# Prints each run's test/acc and train/samples_per_s (from its results.json). A key that lives in a different
# place in the two checkouts goes in OLD_ARGS / NEW_ARGS (space-separated), given to that side only.
set -euo pipefail
old=$(cd "$1" && pwd); pairs=$2; shift 2
new=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$new/.venv/bin/python}
out=$(mktemp -d)
echo "# run.py $*: $old (old) and $new (new), interleaved"
for i in $(seq "$pairs"); do
  for side in old new; do
    tree=${!side}; dir=$out/${side}_$i  # by side: the two checkouts may share a folder name
    extra=OLD_ARGS; [[ $side == new ]] && extra=NEW_ARGS
    # shellcheck disable=SC2086  # the extra overrides are words
    (cd "$tree" && PYTHONPATH=$tree "$python" run.py "$@" ${!extra:-} hydra.run.dir="$dir" > "$dir.log" 2>&1) \
      || { echo "run failed, see $dir.log" >&2; exit 1; }
    "$python" -c "import json, sys; r = json.load(open(sys.argv[1])); print(sys.argv[2], sys.argv[3], \
'test/acc %.4f train/samples_per_s %.1f' % (r['test/acc'], r['train/samples_per_s']))" "$dir/results.json" "$tree" "$i"
  done
done
