"""``jvs`` with no arguments: a short guide that starts from where the user is."""

from __future__ import annotations

from conftest import run_jvs


def test_guide_outside_a_repository(tmp_path):
    r = run_jvs(cwd=tmp_path)
    assert "not inside a jvs repository" in r.stdout
    assert "jvs init myproject" in r.stdout
    assert len(r.stdout.splitlines()) < 15  # short, unlike --help


def test_guide_in_a_worktree_and_at_the_root(repo, main_wt):
    inside = run_jvs(cwd=main_wt).stdout
    assert f"Worktree 'main' of {repo}" in inside and "jvs status" in inside
    at_root = run_jvs(cwd=repo).stdout
    assert "at its root" in at_root and str(main_wt) in at_root
    assert f"Worktree 'main' of {repo}" in run_jvs("-C", str(main_wt), cwd=repo.parent).stdout


def test_guide_survives_a_broken_repository(repo, main_wt):
    (repo / ".jvs" / "format_version").write_text("99\n")
    r = run_jvs(cwd=main_wt)
    assert r.returncode == 0 and "jvs --help" in r.stdout
