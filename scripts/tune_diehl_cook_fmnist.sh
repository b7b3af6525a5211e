#!/usr/bin/env bash
# How diehl_cook_2015_fmnist's settings were chosen: short runs on a subset of Fashion-MNIST's training
# images, scored on the validation split held out of them (learner.record_*: labels from 3,000 training
# images, accuracy on 3,000 validation images), never on the test set. Runs one after another on 1 thread:
#   bash scripts/tune_diehl_cook_fmnist.sh OUT_DIR [N_NEURONS] [TRAIN_IMAGES]
# Prints one line per setting: its val_acc, neurons that ever won, images/s.
set -euo pipefail
out=$1; n=${2:-400}; train=${3:-10000}
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
export OMP_NUM_THREADS=1
common=(experiment=diehl_cook_2015_fmnist model.n_neurons=$n dataset.val_fraction=0.1 dataset.limit_train=$train
        dataset.limit_test=100 learner.label_samples=100 learner.record_samples=3000 deploy.num_threads=1 logger=none
        trainer.enable_progress_bar=false)
paper=(T=350 encoding.max_rate=0.06375 model.norm=78.4 model.inhibition=120 model.exc.theta_plus=0.05
       model.exc.tau_theta=1e7 model.min_spikes=null)
declare -A settings=(
  [paper]="${paper[*]}"
  [preset]=""
  [theta_small]="model.exc.theta_plus=0.05 model.exc.tau_theta=1e7"
  [norm125]="model.norm=125"
  [no_boost]="model.min_spikes=null"
  [batch10]="dataset.batch_size=10"
  [paper_batch10]="${paper[*]} dataset.batch_size=10"
  [paper_theta]="${paper[*]} model.exc.theta_plus=0.5 model.exc.tau_theta=1e6"
  [paper_norm100]="${paper[*]} model.norm=100"
  [paper_inh250]="${paper[*]} model.inhibition=250"

  [paper_T250_x2]="${paper[*]} T=250 encoding.max_rate=0.1275"
)
for name in ${SETTINGS:-paper preset theta_small norm125 no_boost batch10}; do
  dir=$out/n${n}_${name}
  (cd "$root" && PYTHONPATH=$root "$python" run.py "${common[@]}" ${settings[$name]} hydra.run.dir="$dir" > "$dir.log" 2>&1) \
    || { echo "$name failed, see $dir.log" >&2; continue; }
  "$python" -c "import json, sys; r = json.load(open(sys.argv[1])); p = r['stdp/progress'][-1]; \
print(sys.argv[2], 'val_acc %.4f winners_ever %d train/samples_per_s %.1f' % (p['val_acc'], p['winners_ever'], \
r['train/samples_per_s']))" "$dir/results.json" "$name"
done
