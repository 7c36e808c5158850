"""The audit log (SPEC §9): one hash-chained JSON line per mutating operation; any edit,
removal or truncation breaks the chain and is reported by verify --all and doctor."""

from __future__ import annotations

import json

import pytest

from conftest import run_jvs

FIELDS = {"event_id", "timestamp", "operation", "actor", "target", "reason", "prev_hash",
          "record_hash"}


def records(repo):
    return [json.loads(line) for line in
            (repo / ".jvs" / "audit" / "audit.jsonl").read_text().splitlines() if line]


def test_every_mutation_is_recorded_and_chained(repo):
    main = repo / "main"
    (main / "a").write_text("a")
    sid = run_jvs("snapshot", "one", "--json", cwd=main).json["snapshot_id"]
    run_jvs("gc", "pin", sid, "--reason", "keep", cwd=main)
    run_jvs("gc", "unpin", sid, cwd=main)
    recs = records(repo)
    assert [r["operation"] for r in recs] == ["init", "snapshot", "gc pin", "gc unpin"]
    prev = ""
    from jvs.audit import record_hash

    for r in recs:
        assert FIELDS <= r.keys()
        assert r["prev_hash"] == prev and r["record_hash"] == record_hash(r)
        assert "@" in r["actor"]
        prev = r["record_hash"]
    assert recs[1]["target"] == sid


def test_readers_do_not_write_the_log(repo):
    main = repo / "main"
    run_jvs("snapshot", "one", cwd=main)
    before = (repo / ".jvs" / "audit" / "audit.jsonl").read_bytes()
    for args in (["verify", "--all"], ["doctor", "--strict"], ["history"],
                 ["gc", "plan"], ["gc", "pins"]):
        run_jvs(*args, cwd=main)
    assert (repo / ".jvs" / "audit" / "audit.jsonl").read_bytes() == before


@pytest.mark.parametrize("damage", ["edit_field", "remove_record", "reorder", "truncate",
                                    "garbage_line"])
def test_damage_breaks_the_chain(repo, damage):
    main = repo / "main"
    for i in range(3):
        (main / "a").write_text(str(i))
        run_jvs("snapshot", f"s{i}", cwd=main)
    log = repo / ".jvs" / "audit" / "audit.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    if damage == "edit_field":
        rec = json.loads(lines[2])
        rec["reason"] = "something else"
        lines[2] = json.dumps(rec, separators=(",", ":")).encode() + b"\n"
    elif damage == "remove_record":
        del lines[2]
    elif damage == "reorder":
        lines[1], lines[2] = lines[2], lines[1]
    elif damage == "truncate":
        lines[-1] = lines[-1][:30]
    else:
        lines.insert(2, b"not json at all\n")
    log.write_bytes(b"".join(lines))
    result = run_jvs("verify", "--all", "--json", cwd=main, check=False)
    assert result.returncode == 1
    assert result.json["audit_chain_valid"] is False
    assert result.json["error"]["code"] == "E_AUDIT_CHAIN_BROKEN"
    strict = run_jvs("doctor", "--strict", cwd=main, check=False)
    assert strict.returncode == 1 and "E_AUDIT_CHAIN_BROKEN" in strict.stdout
    # Appending after damage still works (it reads only the tail), and repair re-chains.
    (main / "a").write_text("after")
    run_jvs("snapshot", "after damage", cwd=main)
    run_jvs("doctor", "--repair", "audit_repair", cwd=main)
    run_jvs("verify", "--all", cwd=main)
    assert records(repo)[-1]["operation"] == "doctor"
