"""The seed commands of the foundation, run through the real CLI."""

from __future__ import annotations

import json
import re

from conftest import run_jvs

ID_RE = re.compile(r"^[0-9]{13}-[0-9a-f]{8}$")


def test_version_is_printed():
    out = run_jvs("--version").stdout
    assert re.match(r"jvs \d+\.\d+\.\d+", out)


def test_seed_ml_workflow(tmp_path):
    run_jvs("init", "ml-experiments", cwd=tmp_path)
    main = tmp_path / "ml-experiments" / "main"
    (main / "dataset").mkdir()
    (main / "dataset" / "train.csv").write_text("a,b\n1,2\n")
    out = run_jvs("snapshot", "Initial setup with dataset", "--tag", "baseline", cwd=main).stdout
    assert "Created snapshot" in out
    (main / "train.py").write_text("print('resnet')\n")
    run_jvs("snapshot", "Exp1: ResNet50 architecture", "--tag", "exp1", "--tag", "model", cwd=main)
    (main / "note.txt").write_text("from a file\n")
    run_jvs("snapshot", "-F", "note.txt", cwd=main)
    run_jvs("snapshot", "-", cwd=main, input="from stdin\n")

    hist = run_jvs("history", "--json", cwd=main).json
    notes = [s["note"] for s in hist["snapshots"]]
    assert notes == ["from stdin", "from a file", "Exp1: ResNet50 architecture",
                     "Initial setup with dataset"]
    assert all(ID_RE.match(s["snapshot_id"]) for s in hist["snapshots"])
    assert hist["snapshots"][0]["is_head"] and not hist["detached"]

    tagged = run_jvs("history", "--tag", "exp", "--format", "json", cwd=main).json
    assert [s["note"] for s in tagged["snapshots"]] == ["Exp1: ResNet50 architecture"]
    grep = run_jvs("history", "--grep", "Exp", "--limit", "5", "--json", cwd=main).json
    assert len(grep["snapshots"]) == 1
    assert "Initial setup with dataset" in run_jvs("history", "--all", cwd=main).stdout

    status = run_jvs("status", "--json", cwd=main).json
    assert status["clean"] is True
    info = run_jvs("info", "--json", cwd=main).json
    assert info["snapshot_count"] == 4 and info["worktree"] == "main"
    # -C from anywhere
    other = run_jvs("-C", str(main), "history", cwd=tmp_path).stdout
    assert "Exp1" in other


def test_discovery_from_nested_directory(repo):
    nested = repo / "main" / "a" / "b" / "c"
    nested.mkdir(parents=True)
    run_jvs("snapshot", "nested", cwd=nested)
    assert json.loads(run_jvs("info", "--json", cwd=nested).stdout)["worktree"] == "main"


def test_not_a_repo_is_a_clear_error(tmp_path):
    res = run_jvs("history", cwd=tmp_path, check=False)
    assert res.returncode == 1
    assert res.stderr.startswith("jvs: E_NOT_A_REPO:")
    res = run_jvs("history", "--json", cwd=tmp_path, check=False)
    assert json.loads(res.stdout)["error"]["code"] == "E_NOT_A_REPO"


def test_init_refuses_existing_repo(tmp_path):
    run_jvs("init", "r", cwd=tmp_path)
    res = run_jvs("init", "r", cwd=tmp_path, check=False)
    assert res.returncode == 1 and "already a jvs repository" in res.stderr


def test_usage_error_exits_2(repo):
    res = run_jvs("history", "--limit", "notanumber", cwd=repo / "main", check=False)
    assert res.returncode == 2


def test_mistyped_command_suggests(repo):
    res = run_jvs("snapshto", cwd=repo / "main", check=False)
    assert res.returncode == 2 and "Did you mean 'snapshot'" in res.stderr


def test_leaving_without_teardown_keeps_output_exit_codes_and_atexit(repo):
    """jvs exits with os._exit after its own flush and atexit handlers (cli.main._leave):
    long output arrives whole, exit codes are those sys.exit gives, and the profile's
    last line (an atexit handler) is still printed."""
    main = repo / "main"
    for i in range(30):
        (main / f"f{i}.txt").write_text(str(i))
        run_jvs("snapshot", f"note {i} " + "x" * 200, cwd=main)
    listed = json.loads(run_jvs("history", "--json", cwd=main).stdout)
    assert len(listed["snapshots"]) == 30
    assert run_jvs("restore", "no-such-ref", cwd=main, check=False).returncode == 1
    assert run_jvs("no-such-command", cwd=main, check=False).returncode == 2
    profiled = run_jvs("snapshot", "last", cwd=main, env={"JVS_PROFILE_STEPS": "1"})
    assert profiled.stderr.rstrip().endswith("exit")
