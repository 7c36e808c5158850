#!/usr/bin/env bash
# The ETL workflow of seeds/002: a snapshot after every stage, tagged with the day, and
# partial snapshots (--paths) that save and restore one stage's output only.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
TODAY=$(date +%Y-%m-%d)

jvs init etl-pipeline
cd etl-pipeline/main
mkdir -p raw processed features
echo "schema v1" > schema.txt
jvs snapshot "Empty pipeline" --tag baseline

ingest_raw() {
    jvs restore baseline
    for i in 1 2 3; do echo "row $i,$RANDOM" > "raw/part-$i.csv"; done   # python ingest_raw.py
    jvs snapshot "Raw ingestion $TODAY" --tag raw --tag "$TODAY"
}
transform_data() {
    for f in raw/*.csv; do tr ',' ';' < "$f" > "processed/$(basename "$f")"; done
    jvs snapshot "Transformed $TODAY" --tag processed --tag "$TODAY"
}
build_features() {
    cat processed/*.csv | wc -l > features/count.txt
    jvs snapshot "Features $TODAY" --tag features --tag "$TODAY"
}
train_model() {
    echo "model trained on $(cat features/count.txt) rows" > model.pkl
    jvs snapshot "Model trained on $TODAY" --tag model --tag "$TODAY"
}

step "Full pipeline"
ingest_raw && transform_data && build_features && train_model
jvs history --tag "$TODAY"
check test "$(jvs history --tag "$TODAY" --json | grep -c '"snapshot_id"')" -eq 4

step "Partial snapshots: save only the features stage"
echo "v2 features" > features/extra.txt
jvs snapshot "Features v2 only" --tag features-v2 --paths features
check jvs history --tag features-v2 --json | grep -q '"features"'
echo "broken" > features/count.txt
echo "unrelated change" > schema.txt
jvs snapshot "Later work"
jvs restore features-v2                                    # overlay: only features/ replaced
check test "$(cat features/extra.txt)" = "v2 features"
check test "$(cat features/count.txt)" = "3"
check test "$(cat schema.txt)" = "unrelated change"        # outside the partial paths: kept
check grep -q "model trained" model.pkl

step "Back to the raw stage of today, then compare"
jvs restore raw
check test ! -e model.pkl
jvs diff raw model --stat
jvs verify --all
