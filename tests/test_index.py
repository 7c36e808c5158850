"""The descriptor index (.jvs/index.sqlite): a cache that is never trusted over the
descriptors. New, collected, corrupt or missing: the listing is always what the
descriptors say."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys

from conftest import ROOT, run_jvs

sys.path.insert(0, str(ROOT / "tools"))


def listed(main):
    return [s["snapshot_id"] for s in
            run_jvs("history", "--all", "--json", cwd=main).json["snapshots"]]


def test_index_follows_new_and_removed_descriptors(repo):
    main = repo / "main"
    a = run_jvs("snapshot", "a", "--json", cwd=main).json["snapshot_id"]
    assert listed(main) == [a]
    index = repo / ".jvs" / "index.sqlite"
    assert index.exists()
    (main / "f").write_text("x")
    b = run_jvs("snapshot", "b", "--json", cwd=main).json["snapshot_id"]
    assert listed(main) == [b, a]
    # A descriptor that vanishes (another host's gc) vanishes from the listing at once.
    moved = repo / "away.json"
    shutil.move(repo / ".jvs" / "descriptors" / f"{a}.json", moved)
    assert listed(main) == [b]
    shutil.move(moved, repo / ".jvs" / "descriptors" / f"{a}.json")
    assert listed(main) == [b, a]
    rows = {r[0] for r in sqlite3.connect(index).execute("SELECT id FROM snapshots")}
    assert rows == {a, b}


def test_missing_corrupt_or_foreign_index_is_rebuilt(repo):
    main = repo / "main"
    a = run_jvs("snapshot", "a", "--json", cwd=main).json["snapshot_id"]
    index = repo / ".jvs" / "index.sqlite"
    for damage in (b"", b"\x00" * 4096, b"SQLite format 3\x00" + b"\xff" * 200):
        index.write_bytes(damage)
        assert listed(main) == [a]
    index.unlink()
    assert listed(main) == [a]
    conn = sqlite3.connect(index)
    conn.execute("UPDATE meta SET value='999' WHERE key='version'")
    conn.commit()
    conn.close()
    assert listed(main) == [a]


def test_resolution_uses_fresh_data(repo):
    main = repo / "main"
    a = run_jvs("snapshot", "first one", "--tag", "t", "--json", cwd=main).json["snapshot_id"]
    assert run_jvs("verify", "t", cwd=main).stdout.split()[0] == a
    (main / "f").write_text("x")
    b = run_jvs("snapshot", "second", "--tag", "t", "--json", cwd=main).json["snapshot_id"]
    assert run_jvs("verify", "t", cwd=main).stdout.split()[0] == b
    assert run_jvs("verify", "first", cwd=main).stdout.split()[0] == a


def test_many_snapshots_written_directly(repo):
    """The benchmark's fast population writes valid descriptors: they list, resolve,
    verify and plan like any others."""
    import bench_scale

    main = repo / "main"
    ids = bench_scale.populate(repo, 300, branch=40)
    assert len(listed(main)) == 300
    hist = run_jvs("history", "--json", cwd=main).json
    assert hist["head_snapshot_id"] == ids[-1]
    assert run_jvs("verify", "t200", cwd=main).stdout.startswith(
        next(s for s in hist["snapshots"] if "t200" in s["tags"])["snapshot_id"])
    plan = run_jvs("gc", "plan", "--keep-last", "5", "--json", cwd=main).json
    # All but the 5 newest of each worktree (main, the removed branch) and main's 3 tagged
    # (t0, t100, t200): retention applies along the lineage (issue 15).
    assert len(plan["candidates"]) == 300 - 5 - 5 - 3
    assert json.loads(run_jvs("verify", "--all", "--json", cwd=main).stdout)["ok"] is True


def test_parallel_readers_agree_while_the_index_is_built(repo):
    import subprocess

    main = repo / "main"
    import bench_scale

    bench_scale.populate(repo, 400, branch=0)
    procs = [subprocess.Popen([sys.executable, "-m", "jvs", "history", "--all", "--json"],
                              cwd=main, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert all(len(o["snapshots"]) == 400 for o in outputs)
    assert len({json.dumps(o) for o in outputs}) == 1


def test_only_exact_descriptor_names_count_as_published(tmp_path):
    """The freshness check of the index lists the descriptor directory: names that only
    contain an ID (a temp file, a name with a line break before an ID) are not IDs."""
    from jvs.index import published_ids
    from jvs.repo import Repo

    run_jvs("init", "r", cwd=tmp_path)
    repo = Repo(tmp_path / "r")
    d = repo.descriptors_dir
    d.mkdir(parents=True, exist_ok=True)
    for name in ("1795432765224-01fef24a.json", "junk\n1795432765225-01fef24b.json",
                 "1795432765226-01fef24c.json.tmp", "x1795432765227-01fef24d.json",
                 "1795432765228-01fef24e.json\nmore"):
        (d / name).write_text("{}")
    assert published_ids(repo) == {"1795432765224-01fef24a"}


def test_a_descriptor_that_spells_out_kind_snapshot_keeps_its_checksum(tmp_path):
    """Ours omit "kind" for an ordinary snapshot; a file that has "kind": "snapshot" (as
    another writer may) is still listed with a valid checksum, from the index as well."""
    import jvs
    from jvs.canonical import canonical_json, sha256_hex
    from jvs.catalog import load_descriptors

    repo = jvs.init(tmp_path, "proj")
    (repo.path / "a.txt").write_text("a")
    sid = repo.snapshot("one").descriptor.snapshot_id
    path = repo.repo.descriptor_path(sid)
    obj = json.loads(path.read_text())
    assert "kind" not in obj
    obj["kind"] = "snapshot"
    body = {**obj, "descriptor_checksum": "", "integrity_state": ""}
    obj["descriptor_checksum"] = sha256_hex(canonical_json(body))
    path.write_text(json.dumps(obj, indent=2))
    (repo.repo.jvs_dir / "index.sqlite").unlink(missing_ok=True)
    for _ in range(2):  # built from the files, then read back from the index
        [desc] = load_descriptors(repo.repo)
        assert desc.kind == "snapshot" and desc.checksum_valid()
    assert repo.verify(all=True).ok
