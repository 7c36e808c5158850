"""The stat cache, through its public behaviour only (load, lookup, remember, save), so a
change of its file format does not break these: what it remembers comes back, a changed
file is never answered from it, and a damaged cache costs time, never a wrong answer."""

from __future__ import annotations

import os
import time

import pytest

import jvs
from jvs.statcache import RACY_WINDOW_NS, StatCache

ALGO = "xxh3-128"


@pytest.fixture
def repo(tmp_path):
    return jvs.init(tmp_path, "proj").repo


def _settled_file(path, text: str) -> os.stat_result:
    """A file whose last change is older than the racily-clean window."""
    path.write_text(text)
    time.sleep(RACY_WINDOW_NS / 1e9 * 1.5)
    return os.stat(path)


def test_remembered_hashes_come_back_after_save_and_load(repo, tmp_path):
    f = tmp_path / "a.txt"
    st = _settled_file(f, "hello")
    cache = StatCache.load(repo, "main", ALGO)
    assert cache.lookup("a.txt", st) is None  # nothing yet
    cache.remember("a.txt", st, "digest-a")
    cache.save()
    again = StatCache.load(repo, "main", ALGO)
    assert again.lookup("a.txt", os.stat(f)) == "digest-a"
    # Another algorithm's cache is a different one.
    assert StatCache.load(repo, "main", "sha256").lookup("a.txt", os.stat(f)) is None
    # And another worktree's.
    assert StatCache.load(repo, "other", ALGO).lookup("a.txt", os.stat(f)) is None


def test_a_changed_file_is_not_answered_from_the_cache(repo, tmp_path):
    f = tmp_path / "a.txt"
    cache = StatCache.load(repo, "main", ALGO)
    cache.remember("a.txt", _settled_file(f, "hello"), "digest-a")
    cache.save()
    f.write_text("HELLO")  # same size, new content
    assert StatCache.load(repo, "main", ALGO).lookup("a.txt", os.stat(f)) is None


def test_a_file_changed_just_before_the_save_is_not_kept(repo, tmp_path):
    """Racily clean: its next change could leave its stat as it is."""
    f = tmp_path / "young.txt"
    cache = StatCache.load(repo, "main", ALGO)
    f.write_text("just now")
    cache.remember("young.txt", os.stat(f), "digest-y")
    cache.save()
    assert StatCache.load(repo, "main", ALGO).lookup("young.txt", os.stat(f)) is None


def test_a_corrupt_cache_is_an_empty_one_and_is_rebuilt(repo, tmp_path):
    f = tmp_path / "a.txt"
    st = _settled_file(f, "hello")
    cache = StatCache.load(repo, "main", ALGO)
    cache.remember("a.txt", st, "digest-a")
    cache.save()
    files = [p for p in repo.cache_dir.rglob("*") if p.is_file()]
    assert files, "the cache was written somewhere under .jvs/cache"
    for p in files:
        data = bytearray(p.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte
        p.write_bytes(bytes(data))
    damaged = StatCache.load(repo, "main", ALGO)
    assert damaged.lookup("a.txt", st) is None  # not trusted at all
    damaged.remember("a.txt", st, "digest-a")
    damaged.save()  # rebuilt, not lost
    assert StatCache.load(repo, "main", ALGO).lookup("a.txt", st) == "digest-a"


def test_deleting_the_cache_changes_no_result(tmp_path):
    repo = jvs.init(tmp_path, "proj")
    (repo.path / "a.txt").write_text("one")
    (repo.path / "b.txt").write_text("two")
    first = repo.snapshot("first").descriptor
    time.sleep(RACY_WINDOW_NS / 1e9 * 1.5)
    (repo.path / "a.txt").write_text("ONE")
    with_cache = repo.status().to_json()
    for p in sorted(repo.repo.cache_dir.rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    assert repo.status().to_json() == with_cache
    second = repo.snapshot("second").descriptor
    assert second.payload_root_hash != first.payload_root_hash
    assert repo.verify(all=True).ok


def test_a_packed_stat_reads_as_the_lstat_it_was_made_from(tmp_path):
    """A worktree read keeps a 48-byte Stat per entry; its fields are the lstat's, and the
    cache takes it wherever it takes an os.stat_result."""
    from jvs.integrity import Stat
    from jvs.statcache import packed_key

    f = tmp_path / "f"
    f.write_bytes(b"x" * 5)
    os.utime(f, ns=(1, -1_000_000_123))  # before 1970: a negative mtime
    st = os.lstat(f)
    packed = Stat.of(st)
    for name in ("st_mode", "st_size", "st_mtime_ns", "st_ctime_ns", "st_ino", "st_dev"):
        assert getattr(packed, name) == getattr(st, name), name
    assert packed_key(packed) == packed_key(st) and len(packed) == 48


def test_a_walk_writes_the_cache_only_when_something_in_it_changed(tmp_path):
    """``status`` (and a snapshot) read the cache beside their walk and save only what
    changed, by one merge: a clean status leaves the file alone, a hashed file is kept for
    the next run, a file gone loses its entry."""
    import jvs
    from jvs.statcache import read_cache_file, stat_cache_path

    repo = jvs.init(tmp_path, "proj")
    main = tmp_path / "proj" / "main"
    for name in ("a.txt", "b.txt", "c.txt"):
        (main / name).write_text(name)
    time.sleep(RACY_WINDOW_NS / 1e9 * 1.5)
    repo.snapshot("base")
    path = stat_cache_path(repo.repo, "main")
    before = os.stat(path)
    assert repo.status().stats.files_hashed == 0
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    (main / "b.txt").write_text("B!")
    (main / "c.txt").unlink()
    time.sleep(RACY_WINDOW_NS / 1e9 * 1.5)
    assert repo.status().stats.files_hashed == 1
    assert sorted(read_cache_file(path).entries) == ["a.txt", "b.txt"]
    assert repo.status().stats.files_hashed == 0  # b.txt's new hash was kept


def test_the_cache_a_walk_saves_is_the_one_a_whole_write_makes(tmp_path):
    """The cursor's save copies the old file's bytes between the places that changed:
    whatever changes (entries replaced, dropped, added before, between and after the old
    ones, entries passed; a change made after the cursor went on, which is merged entry
    by entry instead), the file is byte for byte the one written whole from the same
    entries, and loads to them. With no file to read, the new entries go straight into
    the next one."""
    import random

    from jvs.statcache import CacheCursor, encode_cache, read_cache_file

    rng = random.Random(7)
    names = sorted({f"d{rng.randrange(5)}/f{rng.randrange(60)}" for _ in range(120)},
                   key=lambda n: n.encode() + b":")

    def row(i: int) -> bytes:
        return i.to_bytes(32, "little") + b"%032x" % i

    for trial in range(30):
        path = tmp_path / f"stat-{trial}.cache"
        old = {n: row(i) for i, n in enumerate(names) if rng.random() < 0.7}
        path.write_bytes(b"".join(encode_cache(ALGO, old, in_order=True)))
        cursor = CacheCursor(path, ALGO)
        expected: dict[str, bytes] = {}
        late = trial % 3 == 0  # some trials change a path after the cursor went on
        previous = None
        for i, name in enumerate(names):
            if rng.random() < 0.15:
                continue  # not walked: gone
            found = cursor.row(name)
            assert found == old.get(name)
            what = rng.random()
            if what < 0.2:
                cursor.set(name, row(1000 + i))
                expected[name] = row(1000 + i)
            elif what < 0.3 and found is not None:
                cursor.drop(name)
            elif found is not None:
                expected[name] = found
            if late and previous is not None and rng.random() < 0.05:
                cursor.set(previous, row(5000 + i))  # out of step: merged entry by entry
                expected[previous] = row(5000 + i)
            previous = name
        cursor.save()
        assert path.read_bytes() == b"".join(encode_cache(ALGO, expected))  # sorted
        assert read_cache_file(path).entries == expected
    missing = tmp_path / "stat-none.cache"
    cursor = CacheCursor(missing, ALGO)
    for i, name in enumerate(names[:10]):
        assert cursor.row(name) is None
        cursor.set(name, row(i))
    cursor.save()
    assert read_cache_file(missing).entries == {n: row(i) for i, n in enumerate(names[:10])}
