"""The one reference resolver (SPEC §2): its order, ambiguity and "did you mean"."""

from __future__ import annotations

import pytest

from conftest import run_jvs
from jvs.errors import JvsError
from jvs.repo import Repo
from jvs.resolve import latest_with_tag, resolve
from jvs.snapshot import create_snapshot


def snap(repo_root, note="", tags=(), content=None):
    main = repo_root / "main"
    (main / "f.txt").write_text(content if content is not None else f"{note}{tags}\n")
    return create_snapshot(Repo(repo_root), "main", note=note, tags=list(tags)) \
        .descriptor.snapshot_id


@pytest.fixture
def history_repo(repo):
    ids = {
        "base": snap(repo, "Initial setup with dataset", ["baseline"]),
        "exp1a": snap(repo, "Exp1: ResNet50 architecture", ["exp1", "model"]),
        "exp1b": snap(repo, "Exp1: ResNet50 with fix", ["exp1", "model"]),
        "seed": snap(repo, "Experiment with seed 42", ["deterministic"]),
        "dup1": snap(repo, "nightly run", []),
        "dup2": snap(repo, "nightly run", []),
    }
    return repo, ids


def test_order_head_id_tag_prefix_note(history_repo):
    root, ids = history_repo
    r = Repo(root)
    assert resolve(r, "HEAD", "main").snapshot_id == ids["dup2"]
    assert resolve(r, "HEAD~1", "main").snapshot_id == ids["dup1"]
    assert resolve(r, "HEAD~5", "main").snapshot_id == ids["base"]
    assert resolve(r, ids["seed"]).snapshot_id == ids["seed"]
    # a tag names the newest snapshot carrying it
    assert resolve(r, "exp1").snapshot_id == ids["exp1b"]
    assert latest_with_tag(r, "model").snapshot_id == ids["exp1b"]
    # the short form (8-hex suffix), a prefix of it, and a prefix of the full ID
    short = ids["seed"].rpartition("-")[2]
    assert resolve(r, short).snapshot_id == ids["seed"]
    assert resolve(r, ids["seed"][:-2]).snapshot_id == ids["seed"]
    # exact note, then a unique note prefix; identical notes: the newest
    assert resolve(r, "Experiment with seed 42").snapshot_id == ids["seed"]
    assert resolve(r, "Initial").snapshot_id == ids["base"]
    assert resolve(r, "nightly run").snapshot_id == ids["dup2"]
    assert resolve(r, "night").snapshot_id == ids["dup2"]


def test_tag_beats_note_prefix(repo):
    a = snap(repo, "stable-ish note")
    b = snap(repo, "other", ["stable"])
    assert resolve(Repo(repo), "stable").snapshot_id == b
    assert resolve(Repo(repo), "stable-ish").snapshot_id == a


def test_ambiguous_lists_candidates(history_repo):
    root, ids = history_repo
    with pytest.raises(JvsError) as exc:
        resolve(Repo(root), "Exp1: ResNet50")
    assert exc.value.code == "E_AMBIGUOUS"
    for key in ("exp1a", "exp1b"):
        assert ids[key].rpartition("-")[2] in exc.value.message
    # the timestamp digits are shared by every snapshot: an ambiguous ID prefix
    with pytest.raises(JvsError) as exc:
        resolve(Repo(root), ids["base"][:5])
    assert exc.value.code == "E_AMBIGUOUS"


def test_not_found_suggests_close_tags_and_notes(history_repo):
    root, _ = history_repo
    res = run_jvs("restore", "baselin", cwd=root / "main", check=False)
    assert res.returncode == 1
    assert "E_NOT_FOUND" in res.stderr and "baseline" in res.stderr
    res = run_jvs("restore", "--latest-tag", "stabel", cwd=root / "main", check=False)
    assert res.returncode == 1 and "E_NOT_FOUND" in res.stderr


def test_head_beyond_lineage_and_without_snapshots(repo):
    with pytest.raises(JvsError) as exc:
        resolve(Repo(repo), "HEAD", "main")
    assert exc.value.code == "E_NOT_FOUND"
    snap(repo, "only")
    with pytest.raises(JvsError) as exc:
        resolve(Repo(repo), "HEAD~3", "main")
    assert exc.value.code == "E_NOT_FOUND"
    with pytest.raises(JvsError):
        resolve(Repo(repo), "HEAD")  # no worktree given


def test_short_hex_words_are_not_taken_for_ids(repo):
    """A ref shorter than 4 characters never matches an ID prefix: 'abc' is a note."""
    sid = snap(repo, "abc notes")
    assert resolve(Repo(repo), "abc").snapshot_id == sid


@pytest.mark.parametrize("walk", [32, 0])  # by descriptor files, or by the catalog
def test_head_n_walks_the_lineage_either_way(history_repo, monkeypatch, walk):
    import jvs.resolve

    monkeypatch.setattr(jvs.resolve, "_MAX_FILE_WALK", walk)
    root, ids = history_repo
    r = Repo(root)
    assert resolve(r, "HEAD~2", "main").snapshot_id == ids["seed"]
    assert resolve(r, "HEAD~5", "main").snapshot_id == ids["base"]
    with pytest.raises(JvsError) as exc:
        resolve(r, "HEAD~6", "main")
    assert exc.value.code == "E_NOT_FOUND" and "only 5 snapshot(s) deep" in exc.value.message
    (root / ".jvs" / "descriptors" / f"{ids['exp1b']}.json").unlink()  # a broken lineage
    with pytest.raises(JvsError) as exc:
        resolve(r, "HEAD~4", "main")
    assert exc.value.code == "E_LINEAGE_BROKEN" and ids["exp1b"] in exc.value.message


def test_did_you_mean_knows_every_tag_but_only_recent_notes(history_repo, monkeypatch):
    import jvs.resolve

    monkeypatch.setattr(jvs.resolve, "_MAX_HINT_WORDS", 1)
    root, _ = history_repo
    with pytest.raises(JvsError) as exc:
        resolve(Repo(root), "baselin")  # the oldest snapshot's tag
    assert "'baseline'" in exc.value.hint
    with pytest.raises(JvsError) as exc:
        resolve(Repo(root), "Initial setup with datset")  # the oldest note: not compared
    assert "Initial setup" not in exc.value.hint
    with pytest.raises(JvsError) as exc:
        resolve(Repo(root), "nightly rnu")
    assert "'nightly run'" in exc.value.hint


def test_ancestry_suffixes_work_on_any_reference(history_repo):
    """``REF~N``, ``REF~`` and ``REF^`` after a tag, an ID, a short ID, a note or HEAD."""
    root, ids = history_repo
    r = Repo(root)
    short = ids["seed"].rpartition("-")[2]
    assert resolve(r, "exp1~1").snapshot_id == ids["exp1a"]
    assert resolve(r, "exp1^").snapshot_id == ids["exp1a"]
    assert resolve(r, "exp1~").snapshot_id == ids["exp1a"]
    assert resolve(r, "exp1^^").snapshot_id == ids["base"]
    assert resolve(r, "exp1~0").snapshot_id == ids["exp1b"]
    assert resolve(r, f"{short}~2").snapshot_id == ids["exp1a"]
    assert resolve(r, f"{ids['seed']}^").snapshot_id == ids["exp1b"]
    assert resolve(r, "Experiment with seed 42~3").snapshot_id == ids["base"]
    assert resolve(r, "HEAD^", "main").snapshot_id == ids["dup1"]
    assert resolve(r, "HEAD~2^", "main").snapshot_id == ids["exp1b"]
    with pytest.raises(JvsError) as exc:
        resolve(r, "baseline^")
    assert exc.value.code == "E_NOT_FOUND" and "only 0 snapshot(s) deep" in exc.value.message
    # the CLI takes them wherever a reference goes
    res = run_jvs("diff", "exp1^", "exp1", "--json", cwd=root / "main")
    assert res.json["from"] == ids["exp1a"] and res.json["to"] == ids["exp1b"]


def test_a_note_holding_a_tilde_still_resolves_whole(repo):
    a = snap(repo, "first")
    b = snap(repo, "v2~beta candidate")
    assert resolve(Repo(repo), "v2~beta candidate").snapshot_id == b
    assert resolve(Repo(repo), "v2~beta candidate^").snapshot_id == a


def test_latest_is_the_worktrees_newest_snapshot_even_when_detached(repo):
    first = snap(repo, "first")
    second = snap(repo, "second")
    run_jvs("restore", first, "--discard-unsaved", cwd=repo / "main")
    r = Repo(repo)
    assert resolve(r, "HEAD", "main").snapshot_id == first
    assert resolve(r, "latest", "main").snapshot_id == second
    assert resolve(r, "latest~1", "main").snapshot_id == first
    assert resolve(r, "latest").snapshot_id == second  # outside a worktree: the newest
    res = run_jvs("restore", "latest", cwd=repo / "main")
    assert f"Restored to snapshot {second}" in res.stdout


def test_single_characters_do_not_resolve_by_note_prefix(repo):
    sid = snap(repo, "experiment one")
    for ref in ("e", "ex"):
        with pytest.raises(JvsError) as exc:
            resolve(Repo(repo), ref)
        assert exc.value.code == "E_NOT_FOUND"
    assert resolve(Repo(repo), "exp").snapshot_id == sid
    only = snap(repo, "x")
    assert resolve(Repo(repo), "x").snapshot_id == only  # an exact note of one character


def test_a_tag_that_would_shadow_a_snapshot_id_is_refused(repo):
    sid = snap(repo, "first")
    short = sid.rpartition("-")[2]
    (repo / "main" / "g.txt").write_text("more\n")
    for tag in (short, short[:4], sid[:8]):
        res = run_jvs("snapshot", "again", "--tag", tag, cwd=repo / "main", check=False)
        assert res.returncode == 1, tag
        assert "E_USAGE" in res.stderr and f"would shadow snapshot {short}" in res.stderr
    assert resolve(Repo(repo), short).snapshot_id == sid
    # hex-looking tags that name no snapshot, and reserved words
    snap(repo, "ok", ["cafe1234"] if not short.startswith("cafe") else ["beef1234"])
    for tag in ("latest", "HEAD"):
        res = run_jvs("snapshot", "x", "--tag", tag, cwd=repo / "main", check=False)
        assert res.returncode == 1 and "E_NAME_INVALID" in res.stderr and "reserved" in res.stderr
