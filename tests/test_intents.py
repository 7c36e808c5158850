"""Intent records: what an operation in flight leaves for doctor and the next command."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import jvs
from jvs.intents import (
    RestoreIntent,
    SnapshotIntent,
    drop_intent,
    intent_is_live,
    intents_of,
    list_intents,
    update_intent,
    write_intent,
)


@pytest.fixture
def repo(tmp_path):
    return jvs.init(tmp_path, "proj").repo


def test_an_intent_round_trips_and_is_dropped(repo):
    record = SnapshotIntent("1796302044192-46206ebf", "main", parent_id=None)
    intent = write_intent(repo, record)
    [listed] = list_intents(repo)
    assert listed.record == record and listed.operation == "snapshot"
    assert listed.pid == os.getpid() and listed.host == os.uname().nodename
    assert listed.started_at.endswith("Z") and intent_is_live(listed)
    assert "snapshot (pid" in listed.describe()
    drop_intent(intent)
    assert list_intents(repo) == []


def test_update_moves_a_record_to_its_next_phase(repo):
    first = RestoreIntent("main", "1796302044192-46206ebf", "prepare", paths=("a",))
    intent = write_intent(repo, first)
    later = update_intent(intent, RestoreIntent("main", first.target_id, "swap",
                                                paths=("a",)))
    [listed] = intents_of(repo, RestoreIntent, worktree="main")
    assert listed.record.phase == "swap" and listed.record.paths == ("a",)
    assert listed.started_at == intent.started_at  # the envelope is kept
    assert intents_of(repo, RestoreIntent, worktree="other") == []
    assert intents_of(repo, SnapshotIntent) == []
    drop_intent(later)


def test_an_unreadable_intent_is_listed_with_its_problem(repo):
    repo.intents_dir.mkdir(parents=True, exist_ok=True)
    (repo.intents_dir / "snapshot-x.json").write_text("{not json")
    (repo.intents_dir / "mystery-y.json").write_text('{"operation": "teleport"}')
    (repo.intents_dir / ".snapshot-z.json.1234.part").write_text("half")  # a temp file
    found = {i.path.name: i for i in list_intents(repo)}
    assert set(found) == {"snapshot-x.json", "mystery-y.json"}
    assert found["snapshot-x.json"].record is None
    assert "unreadable" in found["snapshot-x.json"].problem
    assert "unknown operation 'teleport'" in found["mystery-y.json"].problem
    assert not intent_is_live(found["snapshot-x.json"])


def test_an_intent_of_a_dead_process_is_not_live(repo):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    intent = write_intent(repo, SnapshotIntent("1796302044192-46206ebf", "main"))
    envelope = {**intent.raw, "pid": int(dead.stdout)}
    from jvs import fsio

    fsio.write_json_atomic(intent.path, envelope)
    [listed] = list_intents(repo)
    assert not intent_is_live(listed)
    # Another host's intent: its process cannot be seen, so it counts as live.
    fsio.write_json_atomic(intent.path, {**envelope, "host": "some-other-host"})
    [listed] = list_intents(repo)
    assert intent_is_live(listed)
