"""Shell completion: the scripts load in a real shell and offer commands, options, config
keys, worktree names, tags and snapshot IDs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_jvs

BIN = str(Path(sys.executable).parent)


def complete(words: str, cwd: Path, cword: int | None = None) -> list[str]:
    """Ask jvs for candidates through click's bash protocol, as the bash script does."""
    parts = words.split(" ")
    env = {"_JVS_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(parts) - 1 if cword is None else cword)}
    r = run_jvs(env=env, cwd=cwd)
    return [line.split(",", 1)[1] for line in r.stdout.splitlines() if line.startswith("plain,")]


def bash_complete(words: list[str], cwd: Path) -> list[str]:
    """Source the generated script in bash and call its completion function."""
    import shlex

    quoted = " ".join(shlex.quote(w) for w in words)
    script = (
        'source <(jvs completion bash)\n'
        f'COMP_WORDS=({quoted})\n'
        f'COMP_CWORD={len(words) - 1}\n'
        '_jvs_completion jvs\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}
    proc = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line]


@pytest.fixture
def populated(main_wt):
    (main_wt / "a.txt").write_text("1")
    first = run_jvs("snapshot", "Initial setup", "--tag", "baseline", "--json",
                    cwd=main_wt).json["snapshot_id"]
    (main_wt / "a.txt").write_text("2")
    second = run_jvs("snapshot", "Exp1", "--tag", "exp1", "--json", cwd=main_wt).json["snapshot_id"]
    run_jvs("worktree", "fork", "baseline", "bugfix", cwd=main_wt)
    return main_wt, first, second


def test_commands_and_options(main_wt):
    names = complete("jvs ", main_wt)
    for cmd in ("init", "snapshot", "history", "restore", "config", "completion", "gc"):
        assert cmd in names
    assert "--json" in complete("jvs history --", main_wt)
    assert complete("jvs conf", main_wt) == ["config"]
    assert set(complete("jvs config ", main_wt)) >= {"show", "get", "set", "unset"}


def test_config_keys_and_values(main_wt):
    assert complete("jvs config set gc.keep_d", main_wt) == ["gc.keep_daily", "gc.keep_days"]
    assert complete("jvs config set engine ", main_wt) == [
        "auto", "juicefs-clone", "reflink-copy", "copy"]
    assert complete("jvs completion ", main_wt) == ["bash", "zsh", "fish"]


def test_snapshot_refs_tags_and_worktrees(populated):
    wt, first, second = populated
    refs = complete("jvs restore ", wt)
    assert refs[0] == "HEAD"
    assert {"baseline", "exp1", first[-8:], second[-8:]} <= set(refs)
    assert complete("jvs restore exp", wt) == ["exp1"]
    assert complete(f"jvs verify {first[:13]}", wt) == [first]
    assert complete("jvs diff baseline ", wt)[0] == "HEAD"
    assert set(complete("jvs worktree remove ", wt)) == {"main", "bugfix"}
    assert complete("jvs worktree path bu", wt) == ["bugfix"]
    assert complete("jvs config set default_tags exp1,ba", wt) == ["exp1,baseline"]
    assert complete("jvs config set default_tags ", wt) == ["exp1", "baseline"]
    assert "baseline" in complete("jvs gc pin ", wt)
    assert "exp1" in complete("jvs history --tag ", wt)


def test_candidates_respect_C_and_are_empty_outside_a_repo(populated, tmp_path):
    wt, _, _ = populated
    assert complete(f"jvs -C {wt} restore base", tmp_path) == ["baseline"]
    assert complete("jvs restore ", tmp_path) == []


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_script_loads_and_completes(populated):
    wt, _, _ = populated
    assert bash_complete(["jvs", "conf"], wt) == ["config"]
    assert bash_complete(["jvs", "restore", "base"], wt) == ["baseline"]
    assert bash_complete(["jvs", "worktree", "path", "bu"], wt) == ["bugfix"]


def test_zsh_and_fish_scripts_are_generated(main_wt):
    zsh = run_jvs("completion", "zsh", cwd=main_wt).stdout
    assert "#compdef jvs" in zsh and "_JVS_COMPLETE=zsh_complete" in zsh
    fish = run_jvs("completion", "fish", cwd=main_wt).stdout
    assert "complete --no-files --command jvs" in fish
    r = run_jvs("completion", "tcsh", cwd=main_wt, check=False)
    assert r.returncode == 2


def test_second_fork_argument_is_a_new_name_and_options_complete(populated):
    wt, _, _ = populated
    assert "baseline" in complete("jvs worktree fork ", wt)
    assert complete("jvs worktree fork baseline ", wt) == []
    assert complete("jvs snapshot --tag ex", wt) == ["exp1"]
    assert complete("jvs restore --latest-tag ba", wt) == ["baseline"]
    r = run_jvs(env={"_JVS_COMPLETE": "bash_complete", "COMP_WORDS": "jvs snapshot --paths a",
                     "COMP_CWORD": "3"}, cwd=wt)
    assert r.stdout.splitlines() == ["file,a"]  # the shell completes file names


def test_zsh_protocol_carries_notes_as_descriptions(populated):
    wt, first, _ = populated
    r = run_jvs(env={"_JVS_COMPLETE": "zsh_complete", "COMP_WORDS": f"jvs restore {first[-8:]}",
                     "COMP_CWORD": "2"}, cwd=wt)
    assert r.stdout.splitlines() == ["plain", first[-8:], "Initial setup"]


def test_a_broken_repository_gives_no_candidates_and_no_traceback(populated):
    wt, _, _ = populated
    (wt.parent / ".jvs" / "format_version").write_text("99\n")
    r = run_jvs(env={"_JVS_COMPLETE": "bash_complete", "COMP_WORDS": "jvs restore ",
                     "COMP_CWORD": "2"}, cwd=wt)
    assert r.stdout.strip() == "" and "Traceback" not in r.stderr


def test_show_and_tag_complete_references_and_tags(populated):
    wt, first, second = populated
    assert {"HEAD", "latest", "baseline", "exp1", second[-8:]} <= set(complete("jvs show ", wt))
    assert complete("jvs tag ", wt) == ["add", "list", "remove"]
    assert "exp1" in complete("jvs tag add ", wt)
    assert complete("jvs tag remove exp1 ", wt) == ["exp1"]
    assert complete("jvs tag remove baseline ", wt) == ["baseline"]
    assert complete("jvs note base", wt) == ["baseline"]
