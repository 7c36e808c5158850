"""Many hosts, one repository: jvs on a JuiceFS volume whose metadata lives in Redis.

Two JuiceFS clients of one Redis-backed volume, each in its own UTS namespace with its own
hostname, play two machines (tests/cluster.py explains the harness). Everything jvs
promises on one host must hold when both work on the same repository at once: one lock
for the cluster, a lineage that stays a chain, nothing lost, every host seeing every
snapshot, and a dead host's lock released so the others carry on.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from cluster import Cluster, Host, unavailable

pytestmark = [pytest.mark.slow, pytest.mark.juicefs]

# A cross-host visibility bound users can rely on with default JuiceFS cache timeouts
# (1 s); a correctness bound, not a speed target (tools/bench_cluster.py measures speed).
VISIBLE_WITHIN_S = 2.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with Cluster(tmp_path_factory.mktemp("cluster")) as c:
        yield c


@pytest.fixture
def repo_name(cluster, request) -> str:
    """A fresh repository on the shared volume, created by host A; its name in the volume."""
    name = request.node.name.replace("[", "-").replace("]", "")[:60]
    cluster["hostA"].jvs("init", name, cwd=cluster["hostA"].mountpoint)
    return name


def history(host: Host, repo: str, *args: str) -> list[dict]:
    out = host.jvs("history", "--all", "--json", *args, cwd=host.path(f"{repo}/main")).json
    return out["snapshots"] if isinstance(out, dict) else out


def assert_one_chain(snaps: list[dict]) -> list[dict]:
    """Every snapshot's parent is the one taken just before it: no fork, no gap."""
    ordered = sorted(snaps, key=lambda s: s["snapshot_id"])
    assert ordered, "no snapshots"
    assert ordered[0].get("parent_id") in (None, "")
    for prev, cur in zip(ordered, ordered[1:], strict=False):
        assert cur.get("parent_id") == prev["snapshot_id"], (
            f"lineage forked: {cur['snapshot_id']} has parent {cur.get('parent_id')}, "
            f"expected {prev['snapshot_id']}")
    return ordered


def eventually(check, within: float = VISIBLE_WITHIN_S) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def payload_names(host: Host, repo: str, snapshot_id: str) -> set[str]:
    return set(os.listdir(host.path(f"{repo}/.jvs/snapshots/{snapshot_id}")))


def wait_for_pause(proc: subprocess.Popen) -> str:
    """Read the paused process's stderr up to its pause announcement (progress lines may
    come first)."""
    seen = []
    for line in proc.stderr:
        if "paused at" in line:
            return line
        seen.append(line)
    raise AssertionError(f"jvs did not reach its pause point: {''.join(seen)!r}")


def test_snapshots_taken_in_turn_on_two_hosts_form_one_chain(cluster, repo_name):
    """Each host snapshots right after the other; each must see the other's head at once
    (a stale head would fork the lineage) and the last snapshot must hold every file."""
    a, b = cluster["hostA"], cluster["hostB"]
    written = set()
    for i in range(6):
        host = (a, b)[i % 2]
        name = f"{host.name}-{i}.txt"
        host.path(f"{repo_name}/main/{name}").write_text(f"round {i}\n")
        written.add(name)
        host.jvs("snapshot", f"round {i}", cwd=host.path(f"{repo_name}/main"))

    for host in (a, b):
        ordered = assert_one_chain(history(host, repo_name))
        assert len(ordered) == 6
        assert payload_names(host, repo_name, ordered[-1]["snapshot_id"]) == written
        status = host.jvs("status", "--json", cwd=host.path(f"{repo_name}/main")).json
        assert status["clean"], status


def test_snapshots_started_together_on_two_hosts_serialise(cluster, repo_name):
    """Both hosts snapshot the same worktree at the same moment, three times over: the
    cluster-wide lock lets one in after the other, the lineage stays a chain and no file
    written by either host is missing from the newest snapshot."""
    a, b = cluster["hostA"], cluster["hostB"]
    written: set[str] = set()
    succeeded = 0
    for i in range(3):
        for host in (a, b):
            host.path(f"{repo_name}/main/{host.name}-{i}.bin").write_bytes(os.urandom(4096))
            written.add(f"{host.name}-{i}.bin")
        procs = {h.name: h.start_jvs("snapshot", f"{h.name} round {i}",
                                     cwd=h.path(f"{repo_name}/main")) for h in (a, b)}
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=60)
            other = "hostB" if name == "hostA" else "hostA"
            if proc.returncode == 0:
                succeeded += 1
            else:
                assert "E_BUSY" in err and other in err, f"[{name}] {err}"

    ordered = assert_one_chain(history(b, repo_name))
    assert len(ordered) == succeeded >= 3
    assert payload_names(a, repo_name, ordered[-1]["snapshot_id"]) == written


def test_edit_on_one_host_snapshot_on_the_other(cluster, repo_name):
    """A file rewritten on A (same size, so only mtime/ctime/content differ) and
    snapshotted at once on B, whose kernel and stat cache knew the old version: the
    snapshot holds A's bytes and its hash matches them."""
    a, b = cluster["hostA"], cluster["hostB"]
    target = f"{repo_name}/main/weights.txt"
    for i in range(2):
        a.path(target).write_text(f"version {i}a\n")
        time.sleep(1.2)  # past the racily-clean window and JuiceFS's 1 s attr cache
        b.jvs("snapshot", f"seen {i}", cwd=b.path(f"{repo_name}/main"))
        a.path(target).write_text(f"version {i}b\n")
        sid = b.jvs("snapshot", f"edited {i}", "--json",
                    cwd=b.path(f"{repo_name}/main")).json["snapshot_id"]
        payload = b.path(f"{repo_name}/.jvs/snapshots/{sid}/weights.txt")
        assert payload.read_text() == f"version {i}b\n"
        b.jvs("verify", sid, cwd=b.path(f"{repo_name}/main"))


def test_restore_on_b_rescues_work_just_saved_on_a(cluster, repo_name):
    """Unsaved work written on host A (a same-size rewrite, the hardest change to see) is
    never lost by a restore run on host B a moment later: it becomes a rescue snapshot."""
    a, b = cluster["hostA"], cluster["hostB"]
    target = f"{repo_name}/main/notes.txt"
    a.path(target).write_text("draft 1\n")
    a.jvs("snapshot", "draft 1", "--tag", "d1", cwd=a.path(f"{repo_name}/main"))
    a.path(target).write_text("draft 2\n")
    time.sleep(1.2)  # past the racily-clean window and the 1 s attr cache: B caches it
    b.jvs("snapshot", "draft 2", cwd=b.path(f"{repo_name}/main"))
    a.path(target).write_text("draft 3\n")  # unsaved, on A
    out = b.jvs("restore", "d1", "--json", cwd=b.path(f"{repo_name}/main")).json
    assert out["rescue_id"], f"A's unsaved edit was not rescued: {out}"
    # A's kernel may resolve the name to the pre-restore inode (now inside the rescue)
    # for JuiceFS's entry-cache timeout (docs/cluster.md); after it, A sees the restore.
    assert eventually(lambda: a.path(target).read_text() == "draft 1\n")
    rescued = a.path(f"{repo_name}/.jvs/snapshots/{out['rescue_id']}/notes.txt")
    assert rescued.read_text() == "draft 3\n"


def test_strict_mounts_send_a_write_right_after_a_remote_restore_to_the_worktree(
        cluster, repo_name):
    """With JuiceFS's default 1 s entry cache, a process on host A that writes a file of a
    worktree just restored on host B may still reach the pre-restore inode, which restore
    moved into the rescue snapshot (docs/cluster.md measures it). Hosts that write into
    worktrees other hosts restore mount with ``--entry-cache 0 --dir-entry-cache 0``;
    with those, A's write lands in the restored worktree and every snapshot verifies."""
    strict = ("--entry-cache", "0", "--dir-entry-cache", "0")
    a = cluster.hosts.get("strictA") or cluster.add_host("strictA", mount_options=strict)
    b = cluster.hosts.get("strictB") or cluster.add_host("strictB", mount_options=strict)
    target = f"{repo_name}/main/notes.txt"
    a.path(target).write_text("draft 1\n")
    a.jvs("snapshot", "draft 1", "--tag", "d1", cwd=a.path(f"{repo_name}/main"))
    a.path(target).write_text("draft 2\n")
    out = b.jvs("restore", "d1", "--json", cwd=b.path(f"{repo_name}/main")).json
    with open(a.path(target), "a") as f:
        f.write("A keeps writing\n")
    assert b.path(target).read_text() == "draft 1\nA keeps writing\n"
    rescued = b.path(f"{repo_name}/.jvs/snapshots/{out['rescue_id']}/notes.txt")
    assert rescued.read_text() == "draft 2\n"
    b.jvs("verify", "--all", cwd=b.path(f"{repo_name}/main"))


def test_shell_on_a_inside_the_worktree_survives_restore_on_b(cluster, repo_name, tmp_path):
    """Restore keeps the worktree directory's inode, so a process on host A whose working
    directory is the worktree sees the restored files, not a deleted directory."""
    a, b = cluster["hostA"], cluster["hostB"]
    main = f"{repo_name}/main"
    a.path(f"{main}/old.txt").write_text("old\n")
    a.jvs("snapshot", "old", "--tag", "old", cwd=a.path(main))
    a.path(f"{main}/old.txt").unlink()
    a.path(f"{main}/new.txt").write_text("new\n")
    a.jvs("snapshot", "new", cwd=a.path(main))
    go = tmp_path / "go"
    os.mkfifo(go)
    shell = a.start_sh(f'read x < {go}; ls; cat old.txt', cwd=a.path(main))
    b.jvs("restore", "old", cwd=b.path(main))
    with open(go, "w") as f:
        f.write("go\n")
    out, err = shell.communicate(timeout=30)
    assert shell.returncode == 0, err
    assert out.split() == ["old.txt", "old"]


def test_busy_error_names_the_other_host_and_waiting_writer_proceeds(cluster, repo_name):
    a, b = cluster["hostA"], cluster["hostB"]
    a.path(f"{repo_name}/main/data.txt").write_text("from A\n")
    holder = a.start_jvs("snapshot", "held by A", cwd=a.path(f"{repo_name}/main"),
                         env={"JVS_TEST_PAUSE_AT": "snapshot:after_hash",
                              "JVS_TEST_PAUSE_S": "3"})
    try:
        wait_for_pause(holder)
        busy = b.jvs("snapshot", "B too early", cwd=b.path(f"{repo_name}/main"),
                     env={"JVS_LOCK_TIMEOUT": "0.2"}, check=False)
        assert busy.returncode == 1
        assert "E_BUSY" in busy.stderr
        assert f"pid {holder.pid}, hostA" in busy.stderr, busy.stderr
        # A patient writer on B simply waits for A to finish.
        b.jvs("snapshot", "B after A", cwd=b.path(f"{repo_name}/main"),
              env={"JVS_LOCK_TIMEOUT": "30"})
    finally:
        holder.communicate(timeout=30)
    assert holder.returncode == 0
    notes = [s.get("note") for s in assert_one_chain(history(a, repo_name))]
    assert notes == ["held by A", "B after A"]


def test_host_b_sees_host_a_snapshot_promptly(cluster, repo_name, tmp_path):
    a, b = cluster["hostA"], cluster["hostB"]
    a.path(f"{repo_name}/main/model.txt").write_text("weights v1\n")
    created = a.jvs("snapshot", "trained on A", "--tag", "from-a", "--json",
                    cwd=a.path(f"{repo_name}/main")).json
    snapshot_id = created["snapshot_id"]

    deadline = time.monotonic() + VISIBLE_WITHIN_S
    while True:
        ids = [s["snapshot_id"] for s in history(b, repo_name, "--tag", "from-a")]
        if snapshot_id in ids or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert ids == [snapshot_id], f"host B does not list host A's snapshot after 2 s: {ids}"
    info = b.jvs("info", "--json", cwd=b.path(f"{repo_name}/main")).json
    # B opens the repository A created, and sees A's snapshot as main's head.
    assert info["repo_id"] == a.path(f"{repo_name}/.jvs/repo_id").read_text().strip()
    assert info["worktree"] == "main" and info["head_snapshot_id"] == snapshot_id
    assert info["snapshot_count"] == 1 and info["worktrees"] == ["main"]

    diff = b.jvs("diff", "from-a", cwd=b.path(f"{repo_name}/main"), check=False)
    assert diff.returncode == 0, diff.stderr  # B resolves A's tag
    b.path(f"{repo_name}/main/model.txt").write_text("edited on B\n")
    b.jvs("snapshot", "B edit", cwd=b.path(f"{repo_name}/main"))
    b.jvs("restore", "from-a", cwd=b.path(f"{repo_name}/main"))
    assert b.path(f"{repo_name}/main/model.txt").read_text() == "weights v1\n"
    a.jvs("restore", "HEAD", cwd=a.path(f"{repo_name}/main"))
    view = tmp_path / "view-on-b"
    view.mkdir()
    b.jvs("-C", str(b.path(f"{repo_name}/main")), "mount", str(view))
    try:
        a.path(f"{repo_name}/main/late.txt").write_text("after the mount\n")
        late = a.jvs("snapshot", "after B mounted", "--json",
                     cwd=a.path(f"{repo_name}/main")).json["snapshot_id"]
        deadline = time.monotonic() + VISIBLE_WITHIN_S
        target = view / "@snapshots" / late / "late.txt"
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert target.read_text() == "after the mount\n"
        assert (view / "@snapshots" / snapshot_id / "model.txt").read_text() \
            == "weights v1\n"
    finally:
        b.jvs("umount", str(view), check=False)


def test_dead_host_lock_is_released_when_its_session_expires(cluster, repo_name):
    """Host C dies (its JuiceFS client is SIGKILLed) in the middle of a snapshot, holding
    the repository lock. JuiceFS keeps C's flock in Redis until C's session expires (5
    heartbeats) and a live client cleans it; then B's snapshot goes through. Until then B
    gets E_BUSY naming C, and the half-made snapshot never appears."""
    a, b = cluster["hostA"], cluster["hostB"]
    c = cluster.add_host("hostC")
    c.path(f"{repo_name}/main/c.txt").write_text("C was here\n")
    doomed = c.start_jvs("snapshot", "never finishes", cwd=c.path(f"{repo_name}/main"),
                         env={"JVS_TEST_PAUSE_AT": "snapshot:after_materialise"})
    try:
        wait_for_pause(doomed)
        c.kill()
    finally:
        doomed.kill()  # the host is gone with everything that ran on it
        doomed.communicate()
    assert "hostC" in {s["HostName"] for s in cluster.sessions()}

    busy = b.jvs("snapshot", "B right after", cwd=b.path(f"{repo_name}/main"),
                 env={"JVS_LOCK_TIMEOUT": "0.2"}, check=False)
    assert busy.returncode == 1 and "E_BUSY" in busy.stderr
    assert "hostC" in busy.stderr, busy.stderr

    # Bounded: 5 x 1 s heartbeat plus one cleanup round of a live client.
    b.jvs("snapshot", "B after C died", cwd=b.path(f"{repo_name}/main"),
          env={"JVS_LOCK_TIMEOUT": "30"})
    assert "hostC" not in {s["HostName"] for s in cluster.sessions()}
    notes = [s.get("note") for s in assert_one_chain(history(a, repo_name))]
    assert notes == ["B after C died"]
    # Holding the (cluster-wide) lock, B's snapshot knows no operation runs anywhere: it
    # rolled back C's crashed snapshot of the same worktree from its intent first.
    assert os.listdir(a.path(f"{repo_name}/.jvs/intents")) == []
    staging = [n for n in os.listdir(a.path(f"{repo_name}/.jvs/snapshots"))
               if n.endswith(".tmp")]
    assert staging == []
    assert "Repository is healthy." in b.jvs(
        "doctor", "--strict", cwd=b.path(f"{repo_name}/main")).stdout


def test_same_worktree_name_forked_on_both_hosts_at_once(cluster, repo_name):
    """Both hosts fork a worktree of the same name at the same moment: exactly one gets
    it, the other is told the name is taken, and nothing is half-created."""
    a, b = cluster["hostA"], cluster["hostB"]
    main = f"{repo_name}/main"
    a.path(f"{main}/x.txt").write_text("x\n")
    a.jvs("snapshot", "x", cwd=a.path(main))
    procs = [h.start_jvs("worktree", "fork", "exp", cwd=h.path(main)) for h in (a, b)]
    results = [(p.wait(timeout=60), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 1], results
    [err] = [err for code, err in results if code == 1]
    assert "exp" in err, err
    listed = a.jvs("worktree", "list", "--json", cwd=a.path(main)).stdout
    assert listed.count('"exp"') == 1, listed
    assert a.path(f"{repo_name}/worktrees/exp/x.txt").read_text() == "x\n"


def test_host_cut_off_past_its_session_cannot_publish(cluster, repo_name):
    """Host D's JuiceFS client freezes (as when the host is cut off from Redis) for longer
    than 5 heartbeats while D's jvs holds the lock mid-snapshot. JuiceFS expires D's
    session and releases the lock; B snapshots. When D comes back, its jvs must notice it
    lost the lock and publish nothing, or the lineage would fork."""
    a, b = cluster["hostA"], cluster["hostB"]
    d = cluster.add_host("hostD")
    main = f"{repo_name}/main"
    a.path(f"{main}/a.txt").write_text("a\n")
    a.jvs("snapshot", "first", cwd=a.path(main))
    d.path(f"{main}/d.txt").write_text("d\n")
    # The pause is short: once it ends, D's jvs blocks on the frozen mount until thawed.
    cut_off = d.start_jvs("snapshot", "from D", cwd=d.path(main),
                          env={"JVS_TEST_PAUSE_AT": "snapshot:after_hash",
                               "JVS_TEST_PAUSE_S": "1"})
    try:
        wait_for_pause(cut_off)
        d.freeze()
        b.path(f"{main}/b.txt").write_text("b\n")
        b.jvs("snapshot", "from B", cwd=b.path(main), env={"JVS_LOCK_TIMEOUT": "30"})
    finally:
        d.thaw()
        _, err = cut_off.communicate(timeout=60)
    assert cut_off.returncode == 1
    assert "E_BUSY" in err and "lost the repository lock" in err, err
    notes = [s.get("note") for s in assert_one_chain(history(a, repo_name))]
    assert notes == ["first", "from B"]
    d.umount()


def test_hosts_work_in_separate_worktrees_at_once(cluster, repo_name):
    a, b = cluster["hostA"], cluster["hostB"]
    a.path(f"{repo_name}/main/base.txt").write_text("base\n")
    a.jvs("snapshot", "base", "--tag", "baseline", cwd=a.path(f"{repo_name}/main"))
    a.jvs("worktree", "fork", "baseline", "on-a", cwd=a.path(f"{repo_name}/main"))
    b.jvs("worktree", "fork", "baseline", "on-b", cwd=b.path(f"{repo_name}/main"))
    procs = [h.start_sh(f'for i in 1 2 3; do echo $i > {h.name}-$i.txt; '
                        f'jvs snapshot "{h.name} $i"; done',
                        cwd=h.path(f"{repo_name}/worktrees/{wt}"))
             for h, wt in ((a, "on-a"), (b, "on-b"))]
    for p in procs:
        _, err = p.communicate(timeout=90)
        assert p.returncode == 0, err
    snaps = history(a, repo_name)
    for wt in ("on-a", "on-b"):
        mine = [s for s in snaps if s["worktree_name"] == wt]
        assert len(mine) == 3
        assert_one_chain_from([s for s in snaps if s.get("note") == "base"][0], mine)


def test_host_b_works_in_its_worktree_while_host_a_is_paused_mid_clone(cluster, repo_name):
    """Two-level locks across hosts (issue 17): A's snapshot holds the repository lock
    shared and main's lock, paused mid-clone; B snapshots, restores and forks in its own
    worktree meanwhile, and a second writer in main on B is told that hostA holds it."""
    a, b = cluster["hostA"], cluster["hostB"]
    main_a = a.path(f"{repo_name}/main")
    (main_a / "base.txt").write_text("base\n")
    a.jvs("snapshot", "base", "--tag", "baseline", cwd=main_a)
    b.jvs("fork", "baseline", "on-b", cwd=b.path(f"{repo_name}/main"))
    (main_a / "more.txt").write_text("more\n")
    holder = a.start_jvs("snapshot", "paused on A", cwd=main_a,
                         env={"JVS_TEST_PAUSE_AT": "snapshot:after_materialise"})
    try:
        wait_for_pause(holder)
        quick = {"JVS_LOCK_TIMEOUT": "2"}
        wt_b = b.path(f"{repo_name}/worktrees/on-b")
        (wt_b / "b.txt").write_text("b\n")
        b.jvs("snapshot", "on B", cwd=wt_b, env=quick)
        b.jvs("restore", "baseline", cwd=wt_b, env=quick)
        assert not (wt_b / "b.txt").exists()
        b.jvs("fork", "baseline", "also-b", cwd=wt_b, env=quick)
        busy = b.jvs("snapshot", "second writer", cwd=b.path(f"{repo_name}/main"),
                     env={"JVS_LOCK_TIMEOUT": "0.3"}, check=False)
        assert busy.returncode == 1 and "E_BUSY" in busy.stderr
        assert "worktree 'main' busy" in busy.stderr and "hostA" in busy.stderr, busy.stderr
        assert holder.poll() is None  # A is still mid-snapshot
    finally:
        holder.kill()
        holder.communicate()
    notes = {s.get("note") for s in history(a, repo_name)}
    assert {"base", "on B"} <= notes and "paused on A" not in notes


def assert_one_chain_from(base: dict, snaps: list[dict]) -> None:
    assert_one_chain([base, *snaps])



AGENT_WORKERS = 4
AGENT_ROUNDS = 2


def test_agent_loop_split_over_two_hosts_loses_nothing(cluster, repo_name):
    """The seeds' agent loop (restore the baseline, work, snapshot) run by four workers,
    two per host, each in its own worktree, all at once."""
    a, b = cluster["hostA"], cluster["hostB"]
    main = a.path(f"{repo_name}/main")
    (main / "code").mkdir()
    (main / "code" / "agent.py").write_text("print('agent')\n")
    a.jvs("snapshot", "Initial agent environment", "--tag", "agent-env", cwd=main)

    env = {"JVS_LOCK_TIMEOUT": "60"}
    workers = []
    for i in range(AGENT_WORKERS):
        host = (a, b)[i % 2]
        script = f"""
            jvs worktree fork agent-env run-{i}
            cd "$(jvs worktree path run-{i})"
            for r in $(seq 1 {AGENT_ROUNDS}); do
                jvs restore agent-env
                mkdir -p output
                echo "worker {i} round $r on $(hostname)" > output/result.txt
                jvs snapshot "Agent run {i}.$r: $(cat output/result.txt)" \\
                    --tag "run-{i}-$r" --tag agent
                jvs history --tag "run-{i}-$r" --format json > /dev/null
            done
        """
        workers.append(host.start_sh(script, cwd=host.path(f"{repo_name}/main"), env=env))
    for w in workers:
        _, err = w.communicate(timeout=100)
        assert w.returncode == 0, err

    snaps = history(b, repo_name, "--tag", "agent")
    assert len(snaps) == AGENT_WORKERS * AGENT_ROUNDS
    baseline = history(b, repo_name, "--tag", "agent-env")[0]["snapshot_id"]
    for i in range(AGENT_WORKERS):
        host_name = (a, b)[i % 2].name
        for r in range(1, AGENT_ROUNDS + 1):
            [snap] = [s for s in snaps if f"run-{i}-{r}" in s["tags"]]
            assert snap["worktree_name"] == f"run-{i}"
            assert snap["parent_id"] == baseline  # each run starts from the baseline
            result = a.path(f"{repo_name}/.jvs/snapshots/{snap['snapshot_id']}"
                            "/output/result.txt").read_text()
            assert result == f"worker {i} round {r} on {host_name}\n"
    for host in (a, b):
        host.jvs("verify", "--all", cwd=host.path(f"{repo_name}/main"))
        host.jvs("doctor", "--strict", cwd=host.path(f"{repo_name}/main"))


def test_gc_on_one_host_while_another_browses_and_snapshots(cluster, repo_name, tmp_path):
    """Host A collects a removed worktree's snapshots while host B reads history (through
    the view, a lock-free reader)
    and snapshots another worktree. B's snapshots all survive, B's reads never fail, and
    the collected ones vanish for both hosts."""
    a, b = cluster["hostA"], cluster["hostB"]
    main = a.path(f"{repo_name}/main")
    (main / "base.txt").write_text("base\n")
    a.jvs("snapshot", "base", cwd=main)
    a.jvs("worktree", "fork", "scratch", cwd=main)
    a.jvs("worktree", "fork", "side", cwd=main)
    scratch = a.path(f"{repo_name}/worktrees/scratch")
    scratch_ids = []
    for i in range(3):
        (scratch / f"s{i}.bin").write_bytes(os.urandom(8192))
        scratch_ids.append(a.jvs("snapshot", f"scratch {i}", "--json",
                                 cwd=scratch).json["snapshot_id"])
    doomed = set(scratch_ids[:-1])  # --keep-last 1 keeps the newest of each worktree
    a.jvs("worktree", "remove", "scratch", "--force", cwd=main)
    later = {"JVS_GC_NOW": str(time.time() + 3 * 86400), "JVS_LOCK_TIMEOUT": "60"}

    view = tmp_path / "view-on-b"
    view.mkdir()
    b.jvs("-C", str(b.path(f"{repo_name}/main")), "mount", str(view))
    try:
        reader = b.start_sh(f"for i in 1 2 3; do find {view}/@snapshots/ -type f "
                            f"-exec cat {{}} + > /dev/null; done")
        # Tagged: gc's clock is 3 days ahead, so untagged side snapshots older than side's
        # newest would be candidates now that ancestors are not protected (issue 15).
        writer = b.start_sh('for i in 1 2 3; do echo $i > side-$i.txt; '
                            'jvs snapshot "side $i" --tag side; done',
                            cwd=b.path(f"{repo_name}/worktrees/side"),
                            env={"JVS_LOCK_TIMEOUT": "60"})
        plan = a.jvs("gc", "plan", "--keep-last", "1", cwd=main, env=later).stdout
        plan_id = next(line.split(":", 1)[1].strip() for line in plan.splitlines()
                       if line.startswith("Plan ID:"))
        a.jvs("gc", "run", "--plan-id", plan_id, cwd=main, env=later)
        for proc in (reader, writer):
            _, err = proc.communicate(timeout=90)
            assert proc.returncode == 0, err
        listed = set(os.listdir(view / "@snapshots"))
        assert not doomed & listed
    finally:
        b.jvs("umount", str(view), check=False)

    snaps = history(b, repo_name)
    assert len([s for s in snaps if s["worktree_name"] == "side"]) == 3
    assert not doomed & {s["snapshot_id"] for s in snaps}
    for host in (a, b):
        host.jvs("verify", "--all", cwd=host.path(f"{repo_name}/main"))
        host.jvs("doctor", "--strict", cwd=host.path(f"{repo_name}/main"))
