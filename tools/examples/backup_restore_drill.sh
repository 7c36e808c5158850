#!/usr/bin/env bash
# Example 3 of seeds/001 (case study 3 of seeds/000): daily backups, retention with gc,
# a copy of the repository on "another machine", and a disaster-recovery drill.
set -euo pipefail
source "$(dirname "$0")/_common.sh"

step "Regular backups"
mkdir -p production/workspace && cd production/workspace
jvs init critical-app
cd critical-app/main
mkdir -p conf data
echo "port=8080" > conf/app.conf
for day in 1 2 3 4 5; do                                   # cron: 0 2 * * *
    echo "ledger day $day" > "data/ledger-$day.txt"
    jvs snapshot "Daily backup day-$day" --tag daily
done
jvs snapshot "Weekly backup" --tag weekly --tag backup     # cron: 0 2 * * 0
# Untagged hourly snapshots of a scratch copy that is later thrown away: once its
# worktree is gone, nothing protects them but retention (heads, latests and their
# ancestors never go).
jvs worktree fork scratch
for hour in 1 2 3; do
    echo "hour $hour" > ../worktrees/scratch/hourly.txt
    jvs -C ../worktrees/scratch snapshot "Hourly $hour"
done
jvs worktree remove scratch

step "Weekly full verification"
jvs verify --all && jvs doctor --strict

step "Snapshot retention with gc"
jvs gc plan --keep-daily 7 --keep-tagged                   # review: nothing young goes
PLAN_ID=$(jvs gc plan --keep-daily 7 --keep-tagged | grep "Plan ID:" | cut -d: -f2)
jvs gc run --plan-id "$PLAN_ID"
# A month later (JVS_GC_NOW moves gc's clock), keep the last 2 and everything tagged.
export JVS_GC_NOW=$(( $(date +%s) + 30 * 86400 ))
jvs gc plan --keep-last 2 --keep-tagged
PLAN_ID=$(jvs gc plan --keep-last 2 --keep-tagged | grep "Plan ID:" | cut -d: -f2)
jvs gc run --plan-id "$PLAN_ID"
unset JVS_GC_NOW
check jvs history --tag daily --json | grep -q "day-1"        # tagged: kept
check test "$(jvs history --all --grep Hourly --json | grep -c '"snapshot_id"')" -lt 3
jvs verify --all

step "Cross-machine backup (metadata and payloads under .jvs/, runtime state left out)"
cd ../..
mkdir -p ../../backup/location/critical-app
tar -C critical-app --exclude='.jvs/intents/*' --exclude='.jvs/index.sqlite' -cf - .jvs \
    | tar -C ../../backup/location/critical-app -xf -
mkdir -p ../../new/location/critical-app
tar -C ../../backup/location/critical-app -cf - .jvs | tar -C ../../new/location/critical-app -xf -
cd ../../new/location/critical-app
mkdir main                  # a fresh, empty folder for the main worktree on this machine
jvs doctor --strict --repair-runtime
jvs verify --all
cd main
jvs restore --latest-tag backup --discard-unsaved          # the worktree comes back
check grep -q "ledger day 5" data/ledger-5.txt
cd "$WORK/production/workspace/critical-app"

step "Disaster recovery: the main worktree is corrupted, .jvs/ is intact"
echo "CORRUPTED" > main/conf/app.conf
rm -f main/data/ledger-2.txt
jvs doctor --strict                                        # the repository itself is fine
jvs -C main history
GOOD=$(jvs -C main history --tag backup --json | grep -m1 '"snapshot_id"' | cut -d'"' -f4)
cd main
jvs restore "$GOOD" --discard-unsaved
jvs verify "$GOOD"
check test "$(cat conf/app.conf)" = "port=8080"
check test -e data/ledger-2.txt

step "Tampering inside .jvs/ is detected"
SID=$(jvs history --json | grep -m1 '"snapshot_id"' | cut -d'"' -f4)
echo "tampered" >> "../.jvs/snapshots/$SID/conf/app.conf"
if jvs verify --all; then echo "tampering went unnoticed" >&2; exit 1; fi
jvs verify "$SID" --json > "$WORK/verify.json" || echo "verify exited $? (tampered)"
check grep -q '"tamper_detected": true' "$WORK/verify.json"
