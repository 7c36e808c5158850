#!/usr/bin/env bash
# Example 4 of seeds/001: CI pre/post snapshots (the GitHub Actions and Jenkins jobs, as
# the shell steps they run). Two builds: one passes, one fails and is investigated.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
mkdir workspace

ci_job() {   # ci_job SHA SHOULD_PASS
    local sha=$1 pass=$2
    # - name: Create Test Snapshot
    cd "$WORK/workspace"
    jvs init ci-workspace 2>/dev/null || true
    cd ci-workspace/main
    jvs snapshot "Pre-test snapshot"
    # - name: Run Tests
    echo "build $sha" > build.log
    if [[ "$pass" == yes ]]; then echo "ok" > test-report.txt; true; else
        echo "FAIL: TestNullPointer" > test-report.txt; false; fi \
    && {  # - name: Snapshot on Success (if: success())
        jvs snapshot "Tests passed - $sha" --tag ci --tag passed; } \
    || {  # - name: Snapshot on Failure (if: failure())
        jvs snapshot "Tests failed - $sha" --tag ci --tag failed; }
}

step "GitHub Actions: two pushes"
ci_job 1a2b3c yes
ci_job 4d5e6f no
cd "$WORK/workspace/ci-workspace/main"
jvs history --tag ci
check test "$(jvs history --tag passed --json | grep -c '"snapshot_id"')" -eq 1
check test "$(jvs history --tag failed --json | grep -c '"snapshot_id"')" -eq 1

step "Jenkins: pre-build and post snapshots"
BUILD_NUMBER=17
cd "$WORK/workspace"
jvs init jenkins-build || true                              # exists after the first build
cd jenkins-build/main
jvs snapshot "Pre-build: ${BUILD_NUMBER}"
echo "binary" > app.bin                                     # make build && make test
jvs snapshot "Build ${BUILD_NUMBER} passed" --tag jenkins --tag passed
jvs history

step "Debug the failed build in its own worktree"
cd "$WORK/workspace/ci-workspace/main"
jvs worktree fork failed debug-4d5e6f
cd ../worktrees/debug-4d5e6f
check grep -q FAIL test-report.txt
cd ../../main
jvs restore --latest-tag passed
check grep -q ok test-report.txt
jvs diff passed failed
