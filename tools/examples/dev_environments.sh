#!/usr/bin/env bash
# Example 2 of seeds/001 (case study 2 of seeds/000): versioned development environments:
# feature worktrees, a production bug reproduced from a tagged snapshot, a hotfix.
set -euo pipefail
source "$(dirname "$0")/_common.sh"

step "Setup"
jvs init myservice
cd myservice/main
mkdir -p src
printf 'package main\nfunc handler() {}\n' > src/handler.go   # git clone ... .
jvs snapshot "Initial import" --tag v1.0
jvs doctor --strict
jvs verify --all

step "Feature branch workflow"
echo "// auth" >> src/handler.go                            # vim src/handler.go
jvs snapshot "Feature A: Add authentication" --tag feature-a --tag wip
jvs worktree fork feature-b
cd ../worktrees/feature-b
check grep -q "// auth" src/handler.go
echo "// caching" >> src/handler.go
jvs snapshot "Feature B: Add caching" --tag feature-b --tag wip
cd ../../main
jvs restore feature-a
echo "// auth tests" >> src/handler.go
jvs snapshot "Feature A: Add auth tests" --tag feature-a
check test "$(grep -c caching src/handler.go)" -eq 0

step "Production bug investigation"
jvs restore v1.0
jvs worktree fork bugfix-1234
cd ../worktrees/bugfix-1234
check test "$(grep -c auth src/handler.go)" -eq 0              # the production state
echo "// nil check" >> src/handler.go
jvs snapshot "Fix: Handle null pointer in handler" --tag bugfix --tag v1.0.1

step "Hotfix to production"
cd ../../main
jvs restore HEAD
jvs snapshot "Release candidate" --tag stable
jvs restore --latest-tag stable
jvs worktree fork hotfix-critical
cd ../worktrees/hotfix-critical
echo "// leak fixed" >> src/handler.go
jvs snapshot "Hotfix: Critical memory leak" --tag hotfix --tag stable
jvs history --tag stable
jvs worktree list
