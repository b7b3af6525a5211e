#!/usr/bin/env bash
# The GPU check in one command, for a CUDA machine (written for one H200; at most ~8 minutes):
#   make gpu-wheels                       # here, with internet to PyPI: wheels/ (ignored by git)
#   bash scripts/device_check.sh [OUT]    # there, from the repository root with wheels/ beside it
# It installs what the machine lacks from wheels/gpu (pip --no-index --no-deps --target), then
#   1. runs the CUDA tests (kernels against the reference loop, no host syncs, deploy=gpu end to end);
#   2. the Open Neuromorphic layer benchmark: Linear + LIF, batch 16, T = 500, 4,096 / 8,192 /
#      16,384 neurons, forward + backward, snnexp against SpikingJelly (each backend that runs:
#      torch, cuda, triton) and snnTorch, with the spikes checked equal once;
#   3. csnn training samples/s of the Fang et al. 2021 network at batch 16 and 128, fp32 and
#      bf16-mixed, fused against snnexp's per-step PyTorch reference;
#   4. the backbone presets (ResNet-19 TET, VGG-16 QCFS, Spikformer, SEW DVS Gesture, SHD RSNN): the full
#      preset for 40 s where its data lies in $SNNEXP_DATA, else its _quick variant, on deploy=gpu;
#   5. learner.memory (issue 25): max_memory_allocated and step time of one csnn BPTT step on event-sized
#      input [T, 32, 2, 34, 34], T = 32, 128, 512, modes full, checkpoint, online, tbptt (bench_memory.py);
#   6. experiment=fang_2021 on the full Fashion-MNIST for the time that is left (trainer.max_time),
#      testing after every epoch.
# Every figure is one JSON line in OUT/figures.jsonl (default OUT: outputs/device); logs beside it.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-outputs/device}
BUDGET_S=${BUDGET_S:-470}   # the whole script, seconds
LAYER_ARGS=${LAYER_ARGS:-}  # e.g. "--sizes 64 --T 20 --repeats 3" for a smoke run on a CPU
CSNN_ARGS=${CSNN_ARGS:-}    # e.g. "--batches 4 --steps 2 --warmup 1"
mkdir -p "$OUT"
FIG="$OUT/figures.jsonl"
START=$(date +%s)
left() { echo $(( BUDGET_S - ($(date +%s) - START) )); }
note() { echo "{\"figure\": \"$1\", $2}" | tee -a "$FIG"; }

PYTHON=${PYTHON:-python}     # the interpreter with torch (the GPU machine's own)
SITE=${SITE:-/tmp/snnexp-site}
if ! "$PYTHON" -c "import hydra, omegaconf, tonic, nir, snntorch, spikingjelly" 2>/dev/null; then
  "$PYTHON" -m pip install --quiet --no-index --no-deps --target "$SITE" wheels/gpu/*.whl || exit 1
  export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="${PYTHONPATH:-$PWD}"
export SNNEXP_DATA=${SNNEXP_DATA:-$PWD/wheels/data}   # Fashion-MNIST IDX files carried beside the tree
export WANDB_MODE=disabled
"$PYTHON" - <<'EOF' | tee -a "$FIG"
import json, torch
print(json.dumps({"figure": "machine", "torch": torch.__version__, "cuda": torch.version.cuda,
                  "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))
EOF

# 1. CUDA tests (kernels == reference loop in spikes, membrane and gradients; no syncs; deploy=gpu)
timeout 150 "$PYTHON" -m pytest -q -p no:cacheprovider -m cuda tests > "$OUT/cuda_tests.log" 2>&1
note cuda_tests "\"exit\": $?, \"summary\": \"$(tail -1 "$OUT/cuda_tests.log" | tr -d '"')\""

# 2. one LIF layer, every implementation in its own process (SpikingJelly reads its backend at import)
for impl in snnexp snnexp_loop snntorch; do
  timeout 90 "$PYTHON" scripts/bench_gpu.py layer $LAYER_ARGS --impl $impl --out "$FIG" --spikes "$OUT/spikes/$impl-{n}.pt" \
    > "$OUT/layer_$impl.log" 2>&1 || note layer "\"impl\": \"$impl\", \"error\": \"exit $? (see layer_$impl.log)\""
done
for backend in torch cuda triton; do
  SJ_LIF_CUDA_IMPLEMENTATION=$backend timeout 90 "$PYTHON" scripts/bench_gpu.py layer $LAYER_ARGS --impl spikingjelly --out "$FIG" \
    --spikes "$OUT/spikes/spikingjelly_$backend-{n}.pt" > "$OUT/layer_sj_$backend.log" 2>&1 \
    || note layer "\"impl\": \"spikingjelly\", \"backend\": \"$backend\", \"error\": \"exit $? (see layer_sj_$backend.log)\""
done
"$PYTHON" - "$OUT/spikes" <<'EOF' | tee -a "$FIG"
import json, sys, torch
from pathlib import Path
files = sorted(Path(sys.argv[1]).glob("*.pt"))
by_n = {}
for f in files:
    impl, n = f.stem.rsplit("-", 1)
    by_n.setdefault(n, {})[impl] = torch.load(f)
for n, spikes in sorted(by_n.items()):
    ref = spikes.get("snnexp")
    print(json.dumps({"figure": "layer_spikes_equal", "neurons": int(n), "rate": float(ref.float().mean()) if ref is not None else None,
                      **{impl: bool(ref is not None and torch.equal(ref, s)) for impl, s in spikes.items() if impl != "snnexp"}}))
EOF

# 3. csnn training throughput (Fang et al. 2021 network), fused against the per-step reference
timeout 150 "$PYTHON" scripts/bench_gpu.py csnn --batches 16,128 --precisions 32,bf16-mixed $CSNN_ARGS --out "$FIG" > "$OUT/csnn.log" 2>&1 \
  || note csnn_train "\"error\": \"exit $? (see csnn.log)\""

# 4. the backbone presets (issue 23), while 3 minutes are left: each full preset for 40 s where its data was carried (samples/s
#    and accuracy so far at the paper's settings), else its _quick variant (Fashion-MNIST or the fixture)
"$PYTHON" scripts/write_event_fixtures.py "$OUT/fixtures" > /dev/null 2>&1
for preset in cifar10_resnet19_tet:cifar-10 cifar10_vgg16_qcfs:cifar-10 cifar10_spikformer:cifar-10 \
              dvs_gesture_sew_resnet:DVSGesture shd_rsnn:SHD; do
  name=${preset%%:*}; data=${preset##*:}
  [ "$(left)" -gt 180 ] || { note preset "\"preset\": \"$name\", \"error\": \"no time left ($(left) s)\""; continue; }
  if [ -d "$SNNEXP_DATA/$data" ]; then
    args=(experiment=$name "dataset.root=$SNNEXP_DATA" +trainer.max_time=00:00:00:40)
  else
    name=${name}_quick; args=(experiment=$name)
    [ "$name" = shd_rsnn_quick ] && args+=("dataset.root=$OUT/fixtures/shd_order")
  fi
  timeout 60 "$PYTHON" run.py "${args[@]}" deploy=gpu logger=none trainer.enable_progress_bar=false \
    hydra.run.dir="$OUT/$name" > "$OUT/$name.log" 2>&1
  "$PYTHON" - "$OUT/$name/results.json" "$name" <<'EOF' | tee -a "$FIG"
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except (OSError, ValueError) as e:
    r = {"error": f"no results.json: {e}"}
keys = ["status", "test/acc", "snn/test/acc/T8", "train/epochs", "train/samples_per_s", "wall_s", "error"]
print(json.dumps({"figure": "preset", "preset": sys.argv[2], **{k: r.get(k) for k in keys if k in r}}))
EOF
done

# 5. learner.memory on CUDA: peak allocated memory and step time against T, a fresh process per point
timeout 150 "$PYTHON" scripts/bench_memory.py --model csnn --Ts ${MEMORY_TS:-32,128,512} --modes full,checkpoint,online,tbptt \
  --device cuda --repeats 3 --timeout 40 --out "$FIG" --plot "$OUT/memory_csnn.png" > "$OUT/memory.log" 2>&1 \
  || note memory "\"error\": \"exit $? (see memory.log)\""

# 6. Fang et al. 2021, full Fashion-MNIST, for the time left (minus a margin for testing and start-up)
REMAIN=$(( $(left) - 60 ))
if [ "$REMAIN" -gt 60 ]; then
  MAXT=$(printf "00:00:%02d:%02d" $((REMAIN / 60)) $((REMAIN % 60)))
  timeout $(( REMAIN + 50 )) "$PYTHON" run.py experiment=fang_2021 deploy=gpu logger=none trainer.enable_progress_bar=false \
    dataset.num_workers=4 +trainer.max_time=$MAXT hydra.run.dir="$OUT/fang_2021" > "$OUT/fang_2021.log" 2>&1
  "$PYTHON" - "$OUT/fang_2021/results.json" <<'EOF' | tee -a "$FIG"
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except (OSError, ValueError) as e:
    r = {"error": f"no results.json: {e}"}
keys = ["test/acc", "test/acc_max", "test/acc_at_best_val", "train/epochs", "train/samples_per_s", "wall_s", "error"]
print(json.dumps({"figure": "fang_2021_full_data", **{k: r.get(k) for k in keys if k in r}}))
EOF
else
  note fang_2021_full_data "\"error\": \"no time left ($(left) s)\""
fi
note done "\"wall_s\": $(( $(date +%s) - START ))"
