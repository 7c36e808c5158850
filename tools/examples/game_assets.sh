#!/usr/bin/env bash
# The game-studio workflow of seeds/002: a Unity project snapshotted around each piece of
# artist work, with partial snapshots of Assets/ and ProjectSettings/ only.
set -euo pipefail
source "$(dirname "$0")/_common.sh"

step "Project setup"
jvs init mygame
cd mygame/main
mkdir -p Assets/Characters ProjectSettings Library Temp
head -c 65536 /dev/urandom > Assets/Characters/hero.fbx
echo "guid: 1a2b" > Assets/Characters/hero.fbx.meta
head -c 32768 /dev/urandom > Assets/Characters/hero.psd
echo "companyName: Studio" > ProjectSettings/ProjectSettings.asset
head -c 16384 /dev/urandom > Library/ShaderCache.db         # Unity's rebuildable cache
jvs snapshot "Initial Unity project import" --tag unity --tag baseline

step "Daily workflow for artists"
jvs snapshot "Before modifying character" --tag prework
head -c 65536 /dev/urandom > Assets/Characters/hero.fbx     # ... work in Unity ...
echo "guid: 1a2b v2" > Assets/Characters/hero.fbx.meta
jvs snapshot "Updated character model v2" --tag character --tag assets
check jvs status --json | grep -q '"clean": true'

step "If work went wrong, rollback"
head -c 100 /dev/zero > Assets/Characters/hero.fbx         # a bad export
jvs restore --latest-tag prework                           # the bad export becomes a rescue
check test "$(cat Assets/Characters/hero.fbx.meta)" = "guid: 1a2b"
jvs history --all | grep rescue

step "Version Assets/ and ProjectSettings/ only"
jvs restore HEAD
echo "fresh cache" > Library/ShaderCache.db
echo "guid: 1a2b v3" > Assets/Characters/hero.fbx.meta
jvs snapshot "Assets only v3" --tag v3 --paths Assets --paths ProjectSettings
echo "guid: broken" > Assets/Characters/hero.fbx.meta
echo "newer cache" > Library/ShaderCache.db
jvs restore v3                                              # only Assets/ and ProjectSettings/
check test "$(cat Assets/Characters/hero.fbx.meta)" = "guid: 1a2b v3"
check test "$(cat Library/ShaderCache.db)" = "newer cache"
jvs diff --stat || true
jvs verify --all

step "Keep Unity's caches out of every snapshot: .jvsignore"
cd ../..
jvs init studio --template unity                            # main/.jvsignore from the template
cd studio/main
mkdir -p Assets/Characters ProjectSettings Library/ShaderCache Temp
head -c 65536 /dev/urandom > Assets/Characters/hero.fbx
echo "guid: 1a2b" > Assets/Characters/hero.fbx.meta
echo "companyName: Studio" > ProjectSettings/ProjectSettings.asset
head -c 262144 /dev/urandom > Library/ShaderCache/cache.db   # rebuilt by Unity: never versioned
echo "MyGame.sln" > MyGame.sln
out=$(jvs snapshot "Project without caches" --tag clean-import --json)
check grep -q '"Library"' <<<"$out"                         # listed under "ignored"
cp Assets/Characters/hero.fbx /tmp/hero.fbx.good.$$
echo "rebuilt" > Library/ShaderCache/cache.db               # the editor rewrites its cache
check jvs status --json | grep -q '"clean": true'           # ... which is no change at all
head -c 100 /dev/zero > Assets/Characters/hero.fbx          # a bad export
jvs restore clean-import                                    # the export is rescued, the cache stays
check test "$(cat Library/ShaderCache/cache.db)" = "rebuilt"
check cmp -s Assets/Characters/hero.fbx /tmp/hero.fbx.good.$$
rm -f /tmp/hero.fbx.good.$$
