#!/usr/bin/env bash
# Example 5 of seeds/001 (case study 4 of seeds/000): an agent run loop that starts every
# run from the same clean state, snapshots each result, and reproduces a run exactly.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
RUNS=${RUNS:-5}

step "Initialize agent workspace"
jvs init agent-sandbox
cd agent-sandbox/main
mkdir -p code output
cat > code/agent.sh <<'AGENT'
#!/usr/bin/env bash
# A stand-in agent: modifies files and writes its outcome.
seed=$1
echo "scratch $seed $RANDOM" > "scratch-$seed.txt"
echo "state touched by run $seed" >> code/state.txt
echo "outcome-$((seed * 7 % 5))" > output/result.txt
AGENT
chmod +x code/agent.sh
echo "initial" > code/state.txt
jvs snapshot "Initial agent environment" --tag agent-env

step "Agent execution loop"
for RUN in $(seq 1 "$RUNS"); do
    jvs restore agent-env                                  # clean state every time
    check test "$(cat code/state.txt)" = "initial"
    ./code/agent.sh "$RUN"                                 # python agent.py --experiment $RUN
    RESULT=$(cat output/result.txt)
    jvs snapshot "Agent run $RUN: $RESULT" --tag "run-$RUN" --tag agent
    jvs history --tag "run-$RUN" --format json > "$WORK/run-$RUN.json"
    check grep -q "\"run-$RUN\"" "$WORK/run-$RUN.json"
done
check test "$(jvs history --all --tag agent --json | grep -c '"snapshot_id"')" -eq "$RUNS"

step "Deterministic experiments"
jvs restore agent-env
jvs snapshot "baseline for seed runs" --tag baseline
jvs restore baseline
echo "seed=42 result=0.913" > results.txt                 # python experiment.py --seed 42
jvs snapshot "Experiment with seed 42" --tag deterministic
rm results.txt
jvs restore agent-env
jvs restore "Experiment with seed 42"                      # later: exact reproduction
check test "$(cat results.txt)" = "seed=42 result=0.913"

step "Parallel agents, one worktree each (seeds/002)"
for AGENT in agent1 agent2 agent3; do
    jvs worktree fork baseline "$AGENT"
done
for AGENT in agent1 agent2 agent3; do
    (cd "../worktrees/$AGENT"
     ./code/agent.sh "${AGENT#agent}"
     jvs snapshot "$AGENT done" --tag "$AGENT") &
done
wait
jvs worktree list
for AGENT in agent1 agent2 agent3; do
    check test "$(jvs history --tag "$AGENT" --all --json | grep -c '"snapshot_id"')" -eq 1
done
jvs verify --all
