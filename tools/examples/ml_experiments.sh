#!/usr/bin/env bash
# Example 1 of seeds/001 (and case study 1 of seeds/000): ML experiment tracking.
# Snapshot before each experiment, roll back failed runs, fork to investigate, tag the
# good ones and get back to the latest stable one.
set -euo pipefail
source "$(dirname "$0")/_common.sh"

step "Setup"
jvs init ml-experiments
cd ml-experiments/main
mkdir -p dataset
for i in $(seq 1 20); do head -c 4096 /dev/urandom > "dataset/shard-$i.bin"; done
printf 'arch = "resnet18"\nlr = 0.01\n' > train.py          # python setup_environment.py
jvs snapshot "Initial setup with dataset" --tag baseline
jvs history

step "Daily experiment loop"
sed -i 's/resnet18/resnet50/' train.py                     # vim train.py
jvs snapshot "Exp1: ResNet50 architecture" --tag exp1 --tag model
echo "epoch 1..100" > train.log                            # python train.py --epochs 100
echo "garbage" > dataset/shard-3.bin                       # the run went wrong
jvs restore exp1                                            # roll back instantly
check grep -q resnet50 train.py
check test "$(head -c 7 dataset/shard-3.bin)" != "garbage"
printf 'arch = "resnet50"\nlr = 0.01\nfix = true\n' > train.py   # fix the issue
jvs snapshot "Exp1: ResNet50 with fix" --tag exp1 --tag model
sed -i 's/lr = 0.01/lr = 0.001/' train.py                  # change learning rate
jvs snapshot "Exp2: LR 0.001" --tag exp2 --tag hyperparam
echo "lr 0.001 run" > train.log                             # python train.py --lr 0.001
jvs history --tag exp
check test "$(jvs history --tag 'exp*' --json | grep -c '"snapshot_id"')" -eq 3

step "Recovering failed runs"
jvs restore exp1                                            # newest snapshot tagged exp1
check grep -q "fix = true" train.py
jvs worktree fork investigation
cd ../worktrees/investigation
check grep -q "fix = true" train.py
echo "debug notes" > DEBUG.md                               # debug in isolation
jvs snapshot "Investigation notes"
cd ../../main
check test ! -e DEBUG.md

step "Tagging strategy"
jvs restore HEAD                                            # back to the latest (Exp2)
jvs snapshot "v1.0 candidate" --tag stable --tag v1.0
jvs history --tag stable
echo "oops" > train.py
jvs restore --latest-tag stable
check grep -q "lr = 0.001" train.py
jvs history --all
