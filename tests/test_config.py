"""jvs config: show, get, set, unset over .jvs/config.json, checked, locked and audited."""

from __future__ import annotations

import json

from conftest import run_jvs


def test_show_lists_every_key_with_defaults(main_wt):
    data = run_jvs("config", "show", "--json", cwd=main_wt).json["config"]
    assert data["engine"] == "auto"
    assert data["default_tags"] == []
    assert data["payload_hash_algo"] == "xxh3-128"
    assert data["gc.keep_last"] == 10  # the gc default when no retention is configured
    assert data["gc.keep_tagged"] is True
    assert data["gc.rescue_days"] == 7
    human = run_jvs("config", "show", cwd=main_wt).stdout
    assert "gc.keep_daily" in human and "payload_hash_algo" in human


def test_set_get_round_trip_and_file_contents(repo, main_wt):
    run_jvs("config", "set", "engine", "copy", cwd=main_wt)
    run_jvs("config", "set", "gc.keep_daily", "7", cwd=main_wt)
    run_jvs("config", "set", "gc.keep_tagged", "false", cwd=main_wt)
    run_jvs("config", "set", "gc.rescue_days", "2.5", cwd=main_wt)
    assert run_jvs("config", "get", "engine", cwd=main_wt).stdout.strip() == "copy"
    assert run_jvs("config", "get", "gc.keep_daily", cwd=main_wt).stdout.strip() == "7"
    # Configured retention replaces the default keep_last 10 as a whole (as gc plan reads it).
    assert run_jvs("config", "get", "gc.keep_last", cwd=main_wt).stdout.strip() == "0"
    got = run_jvs("config", "get", "gc.keep_tagged", "--json", cwd=main_wt).json
    assert got == {"key": "gc.keep_tagged", "value": False, "configured": True}
    on_disk = json.loads((repo / ".jvs" / "config.json").read_text())
    assert on_disk["engine"] == "copy"
    assert on_disk["gc"] == {"keep_daily": 7, "keep_tagged": False, "rescue_days": 2.5}
    plan = run_jvs("gc", "plan", cwd=main_wt).stdout
    assert "keep-daily 7" in plan and "keep-tagged no" in plan and "after 2.5 days" in plan
    run_jvs("config", "unset", "gc.keep_daily", cwd=main_wt)
    assert "keep_daily" not in json.loads((repo / ".jvs" / "config.json").read_text())["gc"]
    run_jvs("config", "set", "engine", "auto", cwd=main_wt)
    assert json.loads((repo / ".jvs" / "config.json").read_text())["engine"] is None


def test_default_tags_apply_to_new_snapshots(main_wt):
    run_jvs("config", "set", "default_tags", "nightly, ml,nightly", cwd=main_wt)
    assert run_jvs("config", "get", "default_tags", cwd=main_wt).stdout.strip() == "nightly,ml"
    (main_wt / "f.txt").write_text("x")
    snap = run_jvs("snapshot", "first", "--tag", "extra", "--json", cwd=main_wt).json
    assert snap["tags"] == ["extra", "nightly", "ml"]
    run_jvs("config", "set", "default_tags", "", cwd=main_wt)
    assert run_jvs("config", "get", "default_tags", "--json", cwd=main_wt).json["value"] == []


def test_bad_tags_keys_and_values_are_refused_and_leave_config_alone(repo, main_wt):
    before = (repo / ".jvs" / "config.json").read_bytes()
    bad_tag = run_jvs("config", "set", "default_tags", "ok,HEAD", cwd=main_wt, check=False)
    assert bad_tag.returncode == 1 and "E_NAME_INVALID" in bad_tag.stderr
    unknown = run_jvs("config", "set", "engin", "copy", cwd=main_wt, check=False)
    assert unknown.returncode == 1 and "E_USAGE" in unknown.stderr
    assert "did you mean 'engine'" in unknown.stderr
    for key, value in [("engine", "zfs"), ("gc.keep_last", "-1"), ("gc.keep_last", "many"),
                       ("gc.keep_tagged", "maybe"), ("payload_hash_algo", "md5"),
                       ("gc.rescue_days", "soon")]:
        r = run_jvs("config", "set", key, value, cwd=main_wt, check=False)
        assert r.returncode == 1, (key, value, r.stderr)
        assert "jvs: E_USAGE:" in r.stderr, (key, value, r.stderr)
    r = run_jvs("config", "get", "nope", "--json", cwd=main_wt, check=False)
    assert r.returncode == 1 and r.json["error"]["code"] == "E_USAGE"
    assert (repo / ".jvs" / "config.json").read_bytes() == before


def test_changing_hash_algo_affects_only_new_snapshots(main_wt):
    (main_wt / "data.bin").write_bytes(b"payload" * 100)
    first = run_jvs("snapshot", "before", "--json", cwd=main_wt).json["snapshot_id"]
    r = run_jvs("config", "set", "payload_hash_algo", "sha256", cwd=main_wt)
    assert "existing snapshots keep xxh3-128" in r.stderr
    (main_wt / "data.bin").write_bytes(b"changed" * 100)
    second = run_jvs("snapshot", "after", "--json", cwd=main_wt).json["snapshot_id"]
    repo_root = main_wt.parent
    algo = {sid: json.loads((repo_root / ".jvs" / "descriptors" / f"{sid}.json").read_text())
            ["payload_hash_algo"] for sid in (first, second)}
    assert algo == {first: "xxh3-128", second: "sha256"}
    run_jvs("verify", "--all", cwd=main_wt)
    run_jvs("restore", first, cwd=main_wt)
    assert (main_wt / "data.bin").read_bytes() == b"payload" * 100


def test_set_is_audited_with_old_and_new_value(repo, main_wt):
    run_jvs("config", "set", "gc.keep_last", "3", cwd=main_wt)
    record = json.loads((repo / ".jvs" / "audit" / "audit.jsonl").read_text().splitlines()[-1])
    assert record["operation"] == "config_set"
    assert record["target"] == "gc.keep_last"
    assert record["details"] == {"old": "10", "new": "3"}
    run_jvs("verify", "--all", cwd=main_wt)  # the audit chain is intact


def test_set_waits_for_the_repository_lock(repo, main_wt):
    import fcntl
    import os

    fd = os.open(repo / ".jvs" / "locks" / "repo.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        r = run_jvs("config", "set", "engine", "copy", cwd=main_wt, check=False,
                    env={"JVS_LOCK_TIMEOUT": "0.2"})
        assert r.returncode == 1 and "E_BUSY" in r.stderr
    finally:
        os.close(fd)
    assert run_jvs("config", "get", "engine", cwd=main_wt).stdout.strip() == "auto"


def test_config_works_from_repo_root_and_with_C(repo, tmp_path):
    run_jvs("config", "set", "engine", "copy", cwd=repo)
    assert run_jvs("-C", str(repo / "main"), "config", "get", "engine",
                   cwd=tmp_path).stdout.strip() == "copy"
    outside = run_jvs("config", "show", cwd=tmp_path, check=False)
    assert outside.returncode == 1 and "E_NOT_A_REPO" in outside.stderr


def test_the_go_implementations_key_names_work(repo, main_wt):
    run_jvs("config", "set", "default_engine", "copy", cwd=main_wt)
    assert run_jvs("config", "get", "engine", cwd=main_wt).stdout.strip() == "copy"
    assert run_jvs("config", "get", "default_engine", cwd=main_wt).stdout.strip() == "copy"
    run_jvs("config", "set", "default_tags", "[nightly, ml]", cwd=main_wt)  # Go's YAML list
    assert run_jvs("config", "get", "default_tags", cwd=main_wt).stdout.strip() == "nightly,ml"
    run_jvs("config", "unset", "default_engine", cwd=main_wt)
    assert run_jvs("config", "get", "engine", cwd=main_wt).stdout.strip() == "auto"
    res = run_jvs("config", "set", "output_format", "json", cwd=main_wt, check=False)
    assert res.returncode == 1 and "E_USAGE" in res.stderr and "--json" in res.stderr


def test_info_with_an_invalid_engine_in_the_environment_is_a_usage_error(main_wt):
    res = run_jvs("info", "--json", cwd=main_wt, env={"JVS_SNAPSHOT_ENGINE": "zfs"},
                  check=False)
    assert res.returncode == 1 and res.json["error"]["code"] == "E_USAGE"
    assert "JVS_SNAPSHOT_ENGINE='zfs'" in res.json["error"]["message"]
    res = run_jvs("snapshot", "x", cwd=main_wt, env={"JVS_SNAPSHOT_ENGINE": "zfs"},
                  check=False)
    assert res.returncode == 1 and "E_USAGE" in res.stderr
    assert "Engine: copy" in run_jvs("info", cwd=main_wt,
                                     env={"JVS_SNAPSHOT_ENGINE": "copy"}).stdout
