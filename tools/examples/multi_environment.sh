#!/usr/bin/env bash
# Example 6 of seeds/001 (case study 5 of seeds/000): dev, staging and production as
# worktrees of one repository; promotion by restore and copy; rollback by tag.
set -euo pipefail
source "$(dirname "$0")/_common.sh"

step "Setup"
jvs init platform-envs
cd platform-envs/main
mkdir -p config
echo "db: dev-db" > config/database.yaml                   # cp -r /envs/dev/* .
jvs snapshot "Development environment v1" --tag dev --tag v1.0
jvs worktree fork staging
cd ../worktrees/staging
echo "db: staging-db" > config/database.yaml
jvs snapshot "Staging environment v1" --tag staging --tag v1.0
jvs worktree fork production
cd ../production
echo "db: prod-db" > config/database.yaml
jvs snapshot "Production environment v1" --tag production --tag v1.0 --tag stable

step "Environment promotion"
cd ../staging
jvs restore staging                                         # ensure clean staging state
echo "pool: 20" >> config/database.yaml
jvs snapshot "Staging v1.1: Database update" --tag staging
cd ../production
jvs restore stable
cp -r ../staging/* .
jvs snapshot "Production v1.1: Database update" --tag production --tag stable
check grep -q "pool: 20" config/database.yaml

step "Rollback strategy"
echo "pool: broken" > config/database.yaml                  # production issue
jvs restore --latest-tag stable
check grep -q "pool: 20" config/database.yaml
jvs worktree fork investigation
cd ../investigation
jvs restore production                                      # the current problematic state
cd ../production
echo "pool: 25" >> config/database.yaml
jvs snapshot "Production v1.1.1: Hotfix" --tag production --tag stable
jvs history --all --tag production
jvs verify --all
