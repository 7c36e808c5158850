"""jvs verify (SPEC §9): every layer of a snapshot tampered with is caught, named, and
fails the command, JSON or not; a repository written by the Go implementation verifies."""

from __future__ import annotations

import json
import os
import sys

import pytest

from conftest import ROOT, run_jvs

sys.path.insert(0, str(ROOT))


def snapshot(main, note="s", *tags):
    args = ["snapshot", note]
    for t in tags:
        args += ["--tag", t]
    return run_jvs(*args, "--json", cwd=main).json["snapshot_id"]


@pytest.fixture
def snap(repo):
    main = repo / "main"
    (main / "data").mkdir()
    (main / "data" / "a.txt").write_text("alpha\n")
    (main / "data" / "b.txt").write_text("beta\n")
    os.symlink("a.txt", main / "data" / "link")
    sid = snapshot(main, "first", "base")
    return repo, main, sid


def verify_json(main, *args):
    result = run_jvs("verify", *args, "--json", cwd=main, check=False)
    return result, json.loads(result.stdout)


def test_clean_snapshot_is_ok(snap):
    repo, main, sid = snap
    out = run_jvs("verify", cwd=main)
    assert out.stdout.strip() == f"{sid}  OK"
    result, data = verify_json(main, "base")
    assert result.returncode == 0
    s = data["snapshots"][0]
    assert (s["checksum_valid"], s["payload_hash_valid"], s["tamper_detected"],
            s["severity"]) == (True, True, False, "ok")
    all_out = run_jvs("verify", "--all", cwd=main)
    assert f"{sid}  OK" in all_out.stdout and "audit log  OK" in all_out.stdout


def _payload(repo, sid):
    return repo / ".jvs" / "snapshots" / sid


@pytest.mark.parametrize("tamper, path, change", [
    ("content", "data/a.txt", "modified"),
    ("mode", "data/b.txt", "mode"),
    ("added", "data/new.txt", "added"),
    ("removed", "data/b.txt", "removed"),
    ("symlink", "data/link", "modified"),
])
def test_payload_tamper_is_named(snap, tamper, path, change):
    repo, main, sid = snap
    payload = _payload(repo, sid)
    target = payload / path
    if tamper == "content":
        target.write_text("ALPHA\n")
    elif tamper == "mode":
        target.chmod(0o600)
    elif tamper == "added":
        target.write_text("sneaked in\n")
    elif tamper == "removed":
        target.unlink()
    else:
        target.unlink()
        os.symlink("b.txt", target)
    human = run_jvs("verify", sid, cwd=main, check=False)
    assert human.returncode == 1
    assert f"{sid}  TAMPERED" in human.stdout
    assert path in human.stdout and "E_PAYLOAD_HASH_MISMATCH" in human.stderr
    result, data = verify_json(main, sid)
    assert result.returncode == 1
    s = data["snapshots"][0]
    assert s["checksum_valid"] is True and s["payload_hash_valid"] is False
    assert s["tamper_detected"] is True and s["severity"] == "critical"
    assert {"path": path, "change": change} in [
        {"path": c["path"], "change": c["change"]} for c in s["changes"]]


@pytest.mark.parametrize("field, value", [("note", "rewritten history"),
                                          ("tags", ["release"]),
                                          ("parent_id", "0000000000001-deadbeef")])
def test_descriptor_tamper_fails_checksum(snap, field, value):
    repo, main, sid = snap
    path = repo / ".jvs" / "descriptors" / f"{sid}.json"
    obj = json.loads(path.read_text())
    obj[field] = value
    path.write_text(json.dumps(obj, indent=2))
    result, data = verify_json(main, sid)
    assert result.returncode == 1
    s = data["snapshots"][0]
    assert s["checksum_valid"] is False and s["tamper_detected"] is True
    assert s["severity"] == "critical"
    assert data["error"]["code"] == "E_DESCRIPTOR_CORRUPT"
    assert "TAMPERED" in run_jvs("verify", "--all", cwd=main, check=False).stdout


def test_corrupt_descriptor_json_is_tampered_not_a_crash(snap):
    repo, main, sid = snap
    (repo / ".jvs" / "descriptors" / f"{sid}.json").write_text("{ not json")
    result = run_jvs("verify", sid, cwd=main, check=False)
    assert result.returncode == 1 and f"{sid}  TAMPERED" in result.stdout


def test_manifest_tamper_with_intact_payload_is_a_warning(snap):
    repo, main, sid = snap
    manifest = repo / ".jvs" / "manifests" / sid
    from jvs.integrity import decode_manifest, encode_manifest

    records = decode_manifest(manifest.read_bytes())
    manifest.write_bytes(encode_manifest(records.replace(b"mode=0644", b"mode=0600", 1)))
    result, data = verify_json(main, sid)
    s = data["snapshots"][0]
    assert result.returncode == 1
    assert s["payload_hash_valid"] is True and s["manifest_valid"] is False
    assert s["tamper_detected"] is True and s["severity"] == "warning"


def test_payload_tamper_without_trusted_manifest_still_fails(snap):
    repo, main, sid = snap
    (repo / ".jvs" / "manifests" / sid).unlink()
    (_payload(repo, sid) / "data" / "a.txt").write_text("changed\n")
    result, data = verify_json(main, sid)
    assert result.returncode == 1
    assert data["snapshots"][0]["payload_hash_valid"] is False
    assert "no trusted manifest" in data["snapshots"][0]["problems"][0]


@pytest.mark.parametrize("damage", ["edit", "truncate"])
def test_audit_tamper_fails_verify_all(snap, damage):
    repo, main, sid = snap
    log = repo / ".jvs" / "audit" / "audit.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    if damage == "edit":
        lines[0] = lines[0].replace(b'"operation":"init"', b'"operation":"nope"')
        log.write_bytes(b"".join(lines))
    else:
        log.write_bytes(b"".join(lines)[:-20])
    result = run_jvs("verify", "--all", cwd=main, check=False)
    assert result.returncode == 1
    assert "audit log  BROKEN" in result.stdout and "E_AUDIT_CHAIN_BROKEN" in result.stderr
    data = json.loads(run_jvs("verify", "--all", "--json", cwd=main, check=False).stdout)
    assert data["audit_chain_valid"] is False


def test_verify_resolves_references(snap):
    repo, main, sid = snap
    (main / "c.txt").write_text("c\n")
    second = snapshot(main, "second note")
    assert run_jvs("verify", "HEAD~1", cwd=main).stdout.split()[0] == sid
    assert run_jvs("verify", "second", cwd=main).stdout.split()[0] == second
    assert run_jvs("verify", sid[-8:], cwd=main).stdout.split()[0] == sid
    missing = run_jvs("verify", "no-such-thing", cwd=main, check=False)
    assert missing.returncode == 1 and "E_NOT_FOUND" in missing.stderr


def write_go_snapshot(repo, files: dict[str, bytes], *, note="from go", tags=()):
    """A snapshot as the Go implementation writes it: sha256 records, no
    payload_hash_algo field, a root .READY marker, checksum via jvs.canonical."""
    from jvs.canonical import canonical_json, sha256_hex
    from jvs.ids import new_snapshot_id, rfc3339_utc
    from jvs.integrity import compute_payload

    sid = new_snapshot_id()
    payload = repo / ".jvs" / "snapshots" / sid
    payload.mkdir()
    for rel, data in files.items():
        (payload / rel).parent.mkdir(parents=True, exist_ok=True)
        (payload / rel).write_bytes(data)
    manifest, digest = compute_payload(payload, "sha256")
    (payload / ".READY").write_text("")
    (repo / ".jvs" / "manifests" / sid).write_bytes(manifest)
    desc = {"snapshot_id": sid, "worktree_name": "main", "created_at": rfc3339_utc(),
            "engine": "copy", "payload_root_hash": digest, "descriptor_checksum": "",
            "integrity_state": ""}
    if note:
        desc["note"] = note
    if tags:
        desc["tags"] = list(tags)
    desc["descriptor_checksum"] = sha256_hex(canonical_json(desc))
    desc["integrity_state"] = "verified"
    (repo / ".jvs" / "descriptors" / f"{sid}.json").write_text(json.dumps(desc, indent=2))
    config = repo / ".jvs" / "worktrees" / "main" / "config.json"
    wt = json.loads(config.read_text())
    wt.update(head_snapshot_id=sid, latest_snapshot_id=sid)
    wt.setdefault("base_snapshot_id", sid)
    config.write_text(json.dumps(wt, indent=2))
    return sid


def test_go_written_snapshot_lists_and_verifies(repo):
    main = repo / "main"
    sid = write_go_snapshot(repo, {"model/weights.bin": b"\x00" * 1000, "README": b"go\n"},
                            tags=("gotag",))
    listed = run_jvs("history", "--all", "--json", cwd=main).json["snapshots"]
    assert [s["snapshot_id"] for s in listed] == [sid]
    assert run_jvs("verify", "gotag", cwd=main).stdout.strip() == f"{sid}  OK"
    assert f"{sid}  OK" in run_jvs("verify", "--all", cwd=main).stdout
    run_jvs("doctor", "--strict", cwd=main)
    (repo / ".jvs" / "snapshots" / sid / "README").write_text("changed\n")
    bad = run_jvs("verify", sid, cwd=main, check=False)
    assert bad.returncode == 1 and "README" in bad.stdout


def test_go_written_snapshot_restores(repo):
    main = repo / "main"
    sid = write_go_snapshot(repo, {"x/y.txt": b"from go\n"}, tags=("gotag",))
    run_jvs("restore", "gotag", "--discard-unsaved", cwd=main)
    assert (main / "x" / "y.txt").read_bytes() == b"from go\n"
    assert not (main / ".READY").exists()
    run_jvs("verify", sid, cwd=main)


def test_go_written_snapshot_forks(repo):
    main = repo / "main"
    write_go_snapshot(repo, {"x/y.txt": b"from go\n"}, tags=("gotag",))
    run_jvs("fork", "gotag", "side", cwd=main)
    side = repo / "worktrees" / "side"
    assert (side / "x" / "y.txt").read_bytes() == b"from go\n"
    assert not (side / ".READY").exists()
