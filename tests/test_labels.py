"""Labelling published snapshots (jvs/labels.py): ``tag add|remove|list`` and ``note``
rewrite the descriptor with a new checksum, atomically, audited; verify, the index,
history and the resolver follow."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import ROOT, run_jvs, take_snapshot
from jvs import index
from jvs.descriptor import read_descriptor
from jvs.repo import Repo


def _descriptor_file(repo, sid) -> dict:
    return json.loads((repo / ".jvs" / "descriptors" / f"{sid}.json").read_text())


def _audit(repo) -> list[dict]:
    lines = (repo / ".jvs" / "audit" / "audit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture
def two(repo):
    main = repo / "main"
    (main / "a.txt").write_text("a\n")
    first = take_snapshot(main, "first state", "one")
    (main / "b.txt").write_text("b\n")
    second = take_snapshot(main, "second state")
    return repo, first, second


def test_tag_add_rewrites_the_descriptor_and_everything_follows(two):
    repo, first, second = two
    main = repo / "main"
    run_jvs("history", cwd=main)  # the index now holds both snapshots untagged
    old_checksum = _descriptor_file(repo, second)["descriptor_checksum"]
    res = run_jvs("tag", "add", "HEAD", "stable", "v1.0", "--json", cwd=main)
    assert res.json["added_tags"] == ["stable", "v1.0"] and res.json["changed"]
    on_disk = _descriptor_file(repo, second)
    assert on_disk["tags"] == ["stable", "v1.0"]
    assert on_disk["descriptor_checksum"] != old_checksum
    assert read_descriptor(Repo(repo), second, verify=True).tags == ("stable", "v1.0")
    assert f"{second}  OK" in run_jvs("verify", "--all", cwd=main).stdout
    listed = {d["snapshot_id"]: d for d in run_jvs("history", "--json", cwd=main)
              .json["snapshots"]}
    assert listed[second]["tags"] == ["stable", "v1.0"]  # the index followed
    assert run_jvs("show", "stable", "--json", cwd=main).json["descriptor"]["snapshot_id"] \
        == second
    assert "Repository is healthy." in run_jvs("doctor", "--strict", cwd=main).stdout
    record = _audit(repo)[-1]
    assert record["operation"] == "tag" and record["target"] == second
    assert record["details"]["tags"] == ["stable", "v1.0"]
    # tagging again changes nothing and writes no record
    records = len(_audit(repo))
    again = run_jvs("tag", "add", "HEAD", "stable", "--json", cwd=main).json
    assert not again["changed"] and len(_audit(repo)) == records
    # a tag moves to the newest snapshot carrying it
    run_jvs("tag", "add", first, "stable", cwd=main)
    tags = {t["tag"]: t for t in run_jvs("tag", "list", "--json", cwd=main).json["tags"]}
    assert tags["stable"]["snapshot_id"] == second and tags["stable"]["count"] == 2
    assert tags["one"]["snapshot_ids"] == [first]
    assert "stable  " in run_jvs("tag", "list", cwd=main).stdout


def test_tag_remove_is_all_or_nothing(two):
    repo, first, _ = two
    main = repo / "main"
    run_jvs("tag", "add", first, "keep", cwd=main)
    res = run_jvs("tag", "remove", first, "keep", "absent", cwd=main, check=False)
    assert res.returncode == 1 and "E_NOT_FOUND" in res.stderr and "'absent'" in res.stderr
    assert _descriptor_file(repo, first)["tags"] == ["one", "keep"]
    run_jvs("tag", "remove", first, "keep", "one", cwd=main)
    assert "tags" not in _descriptor_file(repo, first)  # omitted when empty, as when written
    assert _audit(repo)[-1]["operation"] == "untag"
    res = run_jvs("restore", "one", cwd=main, check=False)
    assert res.returncode == 1 and "E_NOT_FOUND" in res.stderr


def test_tag_add_refuses_a_tag_that_shadows_a_snapshot(two):
    repo, first, second = two
    short = first.rpartition("-")[2]
    res = run_jvs("tag", "add", second, short, "--json", cwd=repo / "main", check=False)
    assert res.returncode == 1 and res.json["error"]["code"] == "E_USAGE"
    assert f"would shadow snapshot {short}" in res.json["error"]["message"]
    assert "tags" not in _descriptor_file(repo, second)


def test_note_replaces_the_note_and_reads_stdin(two):
    repo, first, _ = two
    main = repo / "main"
    run_jvs("note", "HEAD^", "first state (baseline for exp2)", cwd=main)
    assert _descriptor_file(repo, first)["note"] == "first state (baseline for exp2)"
    assert run_jvs("show", "baseline for", cwd=main, check=False).returncode == 1  # no prefix
    assert run_jvs("show", "first state (b", "--json", cwd=main).json["descriptor"][
        "snapshot_id"] == first
    record = _audit(repo)[-1]
    assert record["operation"] == "note" and record["details"]["previous_note"] == "first state"
    run_jvs("note", first, "-", cwd=main, input="from stdin\n")
    assert _descriptor_file(repo, first)["note"] == "from stdin"
    run_jvs("note", first, "", cwd=main)
    assert "note" not in _descriptor_file(repo, first)
    assert f"{first}  OK" in run_jvs("verify", first, cwd=main).stdout


def test_a_tampered_descriptor_is_not_resealed(two):
    repo, first, _ = two
    path = repo / ".jvs" / "descriptors" / f"{first}.json"
    data = json.loads(path.read_text())
    data["worktree_name"] = "elsewhere"
    path.write_text(json.dumps(data, indent=2))
    res = run_jvs("tag", "add", first, "golden", cwd=repo / "main", check=False)
    assert res.returncode == 1 and "E_DESCRIPTOR_CORRUPT" in res.stderr
    assert json.loads(path.read_text()) == data


def test_a_go_written_descriptor_stays_one(tmp_path):
    subprocess.run(["tar", "xzf", str(ROOT / "tests" / "fixtures" / "go-jvs-repo.tar.gz"),
                    "-C", str(tmp_path)], check=True)
    repo = tmp_path / "project"
    main = repo / "main"
    sid = run_jvs("show", "baseline", "--json", cwd=main).json["descriptor"]["snapshot_id"]
    before = _descriptor_file(repo, sid)
    run_jvs("tag", "add", "baseline", "golden", cwd=main)
    after = _descriptor_file(repo, sid)
    assert "payload_hash_algo" not in after  # still read as Go-written (root .READY is a marker)
    assert list(after) == list(before) and after["tags"] == ["baseline", "golden"]
    assert {k: v for k, v in after.items() if k not in ("tags", "descriptor_checksum")} == \
        {k: v for k, v in before.items() if k not in ("tags", "descriptor_checksum")}
    assert f"{sid}  OK" in run_jvs("verify", sid, cwd=main).stdout
    run_jvs("restore", "golden", "--discard-unsaved", cwd=main)
    assert not (main / ".READY").exists()


def test_a_refresh_that_read_before_a_relabel_does_not_store_what_it_read(two):
    """A reader lists descriptors without the lock; a relabel in between must win."""
    repo, first, _ = two
    r = Repo(repo)
    index.rebuild_index(r)
    stale_data = r.descriptor_path(first).read_bytes()
    _, generation = index._query_at_generation(index.index_path(r), index._SELECT)
    run_jvs("tag", "add", first, "golden", cwd=repo / "main")
    stale_row = index._row_of(first, stale_data)
    assert not index._store(index.index_path(r), [stale_row], (), rebuild=False,
                            generation=generation, check=True)
    assert [d.tags for d in index.load_descriptors(r) if d.snapshot_id == first] == \
        [("one", "golden")]
    assert index.index_discrepancies(r) == []


def test_the_python_api_labels_and_shows(two):
    import jvs

    repo, first, second = two
    r = jvs.open(repo / "main")
    assert r.add_tags("HEAD^", "golden").added_tags == ("golden",)
    assert r.resolve("golden").snapshot_id == first
    assert [t.tag for t in r.tags()] == ["golden", "one"]
    assert r.set_note("golden", "renamed").after.note == "renamed"
    assert r.remove_tags(first, "golden").removed_tags == ("golden",)
    shown = r.show("HEAD")
    assert shown.descriptor.snapshot_id == second and shown.heads_of == ("main",)
    assert [c.relpath for c in shown.changes.items] == ["b.txt"]
    assert shown.contents.files == 2


def test_snapshot_m_is_the_note(repo):
    main = repo / "main"
    (main / "x").write_text("x\n")
    sid = run_jvs("snapshot", "-m", "from -m", "--json", cwd=main).json["snapshot_id"]
    assert _descriptor_file(repo, sid)["note"] == "from -m"
    res = run_jvs("snapshot", "both", "-m", "twice", cwd=main, check=False)
    assert res.returncode == 2 and "not both" in res.stderr


def test_show_describes_a_snapshot(two):
    repo, first, second = two
    main = repo / "main"
    out = run_jvs("show", "HEAD", cwd=main).stdout
    assert f"snapshot {second}" in out and "HEAD of main" in out
    assert "+ b.txt" in out and "2 file(s)" in out and "second state" in out
    data = run_jvs("show", "one", "--json", cwd=main).json
    assert data["parent_state"] == "none" and data["changes"] is None
    assert data["contents"] == {"files": 1, "dirs": 0, "symlinks": 0, "bytes": 2}
    data = run_jvs("show", "HEAD", "--json", cwd=main).json
    assert data["summary"]["added"] == 1 and data["head_of"] == ["main"]
    assert data["descriptor"]["parent_id"] == first
    res = run_jvs("show", "nope", "--json", cwd=main, check=False)
    assert res.returncode == 1 and res.json["error"]["code"] == "E_NOT_FOUND"


def test_an_index_of_another_version_is_rebuilt_after_a_relabel(two):
    """A relabel leaves a generation in the index; a version change must not make every
    later refresh refuse to store."""
    import sqlite3

    repo, first, _ = two
    r = Repo(repo)
    index.rebuild_index(r)
    run_jvs("tag", "add", first, "golden", cwd=repo / "main")
    conn = sqlite3.connect(index.index_path(r), isolation_level=None)
    conn.execute("UPDATE meta SET value='0' WHERE key='version'")
    conn.close()
    assert len(index.load_descriptors(r)) == 2
    assert len(index._query(index.index_path(r), index._SELECT)) == 2  # stored again
