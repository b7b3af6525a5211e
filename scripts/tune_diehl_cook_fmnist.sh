#!/usr/bin/env bash
# How diehl_cook_2015_fmnist's settings are chosen: short runs on a subset of Fashion-MNIST's training
# images, scored on the validation split held out of them (learner.record_samples: neurons labelled from
# 3,000 training images, accuracy on 3,000 validation images), never on the test set. On 1 thread:
#   bash scripts/tune_diehl_cook_fmnist.sh optuna OUT_DIR [N_NEURONS] [TRAIN_IMAGES] [TRIALS]
#       an Optuna (TPE) study over hparams_search=diehl_cook_optuna's ranges; prints the best settings
#   bash scripts/tune_diehl_cook_fmnist.sh named OUT_DIR [N_NEURONS] [TRAIN_IMAGES]
#       the named settings below, one line each: val_acc, neurons that ever won, images/s
set -euo pipefail
mode=$1; out=$2; n=${3:-400}; train=${4:-10000}; trials=${5:-16}
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
export OMP_NUM_THREADS=1
common=(experiment=diehl_cook_2015_fmnist model.n_neurons=$n dataset.val_fraction=0.1 dataset.limit_train=$train
        dataset.limit_test=100 learner.label_samples=100 learner.record_every=null learner.record_samples=3000
        deploy.num_threads=1 logger=none trainer.enable_progress_bar=false)
mkdir -p "$out"
if [[ $mode == optuna ]]; then
  (cd "$root" && PYTHONPATH=$root "$python" run.py -m "${common[@]}" hparams_search=diehl_cook_optuna \
     hydra.sweeper.n_trials=$trials hydra.sweep.dir="$out" > "$out/study.log" 2>&1)
  "$python" - "$out" <<'PY'
import json, pathlib, sys, yaml
out = pathlib.Path(sys.argv[1])
for trial in sorted((p for p in out.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)):
    r = json.loads((trial / "results.json").read_text())
    over = yaml.safe_load((trial / ".hydra" / "overrides.yaml").read_text())
    tuned = " ".join(o for o in over if o.split("=")[0] in {"model.exc.theta_plus", "model.exc.tau_theta",
                     "model.inhibition", "learner.norm", "encoding.max_rate", "learner.stdp.lr_post"})
    print(f"trial {trial.name}: val_acc {r['stdp/val_acc']:.4f} winners_ever {r['stdp/winners_ever']} {tuned}")
best = yaml.safe_load((out / "optimization_results.yaml").read_text())
print("best:", best["best_value"], " ".join(f"{k}={v:.4g}" for k, v in best["best_params"].items()))
PY
  exit
fi
paper=(T=350 encoding.max_rate=0.06375 learner.norm=78.4 model.inhibition=120 model.exc.theta_plus=0.05
       model.exc.tau_theta=1e7 learner.min_spikes=null)
# the best runs of BindsNET's Fashion-MNIST sweep: 2x rate for 250 ms, norm 100, inhibition 250, theta_plus 0.5
# forgotten over 1e6 steps, up to 3 re-presentations with the input doubled
bindsnet=(T=250 encoding.max_rate=0.1275 learner.norm=100 model.inhibition=250 model.exc.theta_plus=0.5
          model.exc.tau_theta=1e6 learner.min_spikes=5 learner.rate_boost=0.1275 learner.max_boosts=3)
declare -A settings=(
  [paper]="${paper[*]}"
  [bindsnet]="${bindsnet[*]}"
  [bindsnet_theta_small]="${bindsnet[*]} model.exc.theta_plus=0.05 model.exc.tau_theta=1e7"
  [bindsnet_norm125]="${bindsnet[*]} learner.norm=125"
  [paper_batch10]="${paper[*]} dataset.batch_size=10"
  [paper_theta]="${paper[*]} model.exc.theta_plus=0.5 model.exc.tau_theta=1e6"
  [paper_T250_x2]="${paper[*]} T=250 encoding.max_rate=0.1275"
  [paper_norm100]="${paper[*]} learner.norm=100"
)
for name in ${SETTINGS:-paper bindsnet bindsnet_theta_small bindsnet_norm125 paper_batch10 paper_theta paper_T250_x2 paper_norm100}; do
  dir=$out/n${n}_${name}
  (cd "$root" && PYTHONPATH=$root "$python" run.py "${common[@]}" ${settings[$name]} hydra.run.dir="$dir" > "$dir.log" 2>&1) \
    || { echo "$name failed, see $dir.log" >&2; continue; }
  "$python" -c "import json, sys; r = json.load(open(sys.argv[1])); \
print(sys.argv[2], 'val_acc %.4f winners_ever %d train/samples_per_s %.1f' % (r['stdp/val_acc'], r['stdp/winners_ever'], \
r['train/samples_per_s']))" "$dir/results.json" "$name"
done
