#!/usr/bin/env bash
# Every paper preset at its paper's settings as far as this 2-core CPU allows, one after another,
# each writing docs/results/<preset>/ through scripts/reproduce.py (hours; run it in the background:
#   nohup bash scripts/full_presets.sh > outputs/full_presets.log 2>&1 &
# ). MNIST is not on this machine: the MNIST presets run on Fashion-MNIST, stated in each table.
# One torch thread per run: other work shares the machine (docs/notes.md: two threads collapse then).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
T1=deploy.num_threads=1
$PY scripts/reproduce.py diehl_cook_2015 dataset=fashion_mnist $T1
$PY scripts/reproduce.py seed_wta $T1
$PY scripts/reproduce.py rueckauer_2017 dataset=fashion_mnist $T1
# Fang et al. 2021 needs 64 epochs (days here): the first epochs of its 64-epoch cosine schedule, labelled partial.
E=${FANG_EPOCHS:-4}
$PY scripts/reproduce.py fang_2021 trainer.max_epochs=$E $T1 --label "PARTIAL: the first $E of the paper's 64 epochs"
