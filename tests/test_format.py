"""Format facts of SPEC §2, §3 and §5: IDs, names, canonical JSON, descriptors, payload hash."""

from __future__ import annotations

import hashlib
import json
import os
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import run_jvs
from jvs.canonical import canonical_json
from jvs.descriptor import Descriptor
from jvs.errors import JvsError
from jvs.ids import new_snapshot_id, rfc3339_utc, short_id
from jvs.integrity import (
    STORED_MAGIC,
    Entry,
    compute_payload,
    decode_manifest,
    encode_manifest,
    parse_manifest,
)
from jvs.names import validate_tag, validate_worktree_name


def test_snapshot_id_pattern_and_short_form():
    sid = new_snapshot_id()
    assert re.fullmatch(r"[0-9]{13}-[0-9a-f]{8}", sid)
    assert short_id(sid) == sid[-8:]
    assert new_snapshot_id() != sid


def test_rfc3339_trims_trailing_zeros():
    assert rfc3339_utc(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"
    assert rfc3339_utc(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert rfc3339_utc(1_700_000_000_000_000_001) == "2023-11-14T22:13:20.000000001Z"


def test_canonical_json_uses_go_escaping():
    value = {"note": "a<b>&c\u2028\u2029\x01\n\t\"\\é", "b": 1, "a": [True, None]}
    assert canonical_json(value) == (
        '{"a":[true,null],"b":1,'
        '"note":"a\\u003cb\\u003e\\u0026c\\u2028\\u2029\\u0001\\n\\t\\"\\\\é"}'
    ).encode()


def test_canonical_keys_sorted_by_bytes_not_code_points():
    # U+FF21 (3 UTF-8 bytes, EF BC A1) sorts before U+10000 (F0 ...) in both orders, but
    # "Z" < "a" shows byte order over case-insensitive order.
    assert canonical_json({"a": 1, "Z": 2}) == b'{"Z":2,"a":1}'


def _descriptor(**kw) -> Descriptor:
    base = dict(snapshot_id="1700000000000-0123abcd", worktree_name="main",
                created_at="2023-11-14T22:13:20.12Z", engine="copy",
                payload_hash_algo="xxh3-128", payload_root_hash="00" * 32)
    base.update(kw)
    return Descriptor(**base)


def test_descriptor_checksum_over_canonical_form():
    note = "Exp <1> & ü \x07 done"
    desc = _descriptor(note=note, tags=("exp1",)).sealed()
    body = desc.to_json()
    body["descriptor_checksum"] = ""
    body["integrity_state"] = ""
    expected = hashlib.sha256(canonical_json(body)).hexdigest()
    assert desc.descriptor_checksum == expected
    assert "\\u003c1\\u003e \\u0026 ü \\u0007" in canonical_json(body).decode()
    # round trip through the pretty file keeps the checksum valid
    again = Descriptor.from_json(json.loads(desc.to_bytes()))
    assert again.checksum_valid()
    # integrity_state does not take part in the checksum
    assert Descriptor.from_json({**desc.to_json(), "integrity_state": "x"}).checksum_valid()


def test_descriptor_tamper_breaks_checksum():
    desc = _descriptor(note="n").sealed()
    for field, value in [("note", "m"), ("tags", ["t"]), ("parent_id", "1700000000000-00000000")]:
        obj = {**desc.to_json(), field: value}
        assert not Descriptor.from_json(obj).checksum_valid(), field


def test_go_descriptor_without_algo_field_means_sha256_and_keeps_unknown_fields():
    obj = {"snapshot_id": "1700000000000-0123abcd", "worktree_name": "main",
           "created_at": "2023-11-14T22:13:20.123456789Z", "engine": "juicefs-clone",
           "payload_root_hash": "ab" * 32, "descriptor_checksum": "", "integrity_state": "",
           "go_only_field": {"x": 1}}
    body = dict(obj)
    obj["descriptor_checksum"] = hashlib.sha256(canonical_json(body)).hexdigest()
    obj["integrity_state"] = "verified"
    desc = Descriptor.from_json(obj)
    assert desc.payload_hash_algo == "sha256"
    assert desc.checksum_valid()
    assert desc.created_at == "2023-11-14T22:13:20.123456789Z"
    assert desc.to_json()["go_only_field"] == {"x": 1}


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", "", "x\x01", ".", "a b", "a\\b", "é/"])
def test_bad_worktree_names_are_refused(name):
    with pytest.raises(JvsError) as exc:
        validate_worktree_name(name)
    assert exc.value.code == "E_NAME_INVALID"


@pytest.mark.parametrize("tag", ["HEAD", "HEAD~2", "1700000000000-0123abcd", "a..b", "x/y", ""])
def test_bad_tags_are_refused(tag):
    with pytest.raises(JvsError) as exc:
        validate_tag(tag)
    assert exc.value.code == "E_NAME_INVALID"


def test_good_names():
    assert validate_tag("v1.0") == "v1.0"
    assert validate_worktree_name("run-42_a.b") == "run-42_a.b"


@given(st.text(min_size=1, max_size=20))
def test_validated_names_never_escape(text):
    try:
        name = validate_worktree_name(text)
    except JvsError as exc:
        assert exc.code == "E_NAME_INVALID"
        return
    assert "/" not in name and ".." not in name and name not in (".", "")
    assert re.fullmatch(r"[A-Za-z0-9._-]+", name)


def _tree(root):
    (root / "d" / "empty").mkdir(parents=True)
    (root / "d" / "f.txt").write_bytes(b"hello")
    (root / "g.bin").write_bytes(os.urandom(1000))
    os.symlink("d/f.txt", root / "link")
    return root


@pytest.mark.parametrize("algo", ["xxh3-128", "sha256"])
def test_payload_hash_determinism_and_sensitivity(tmp_path, algo):
    root = _tree(tmp_path / "t")
    manifest, digest = compute_payload(root, algo)
    assert compute_payload(root, algo) == (manifest, digest)
    assert hashlib.sha256(manifest).hexdigest() == digest
    records = manifest.decode().splitlines()
    assert records == sorted(records, key=lambda r: r.encode())
    assert [Entry.parse(r).record() for r in records] == records
    assert {e.relpath for e in parse_manifest(manifest)} == {"d", "d/empty", "d/f.txt",
                                                             "g.bin", "link"}

    def changed(mutate) -> bool:
        mutate()
        return compute_payload(root, algo)[1] != digest

    # each mutation is undone by the next check's baseline, so recompute after each
    mutations = [
        lambda: (root / "d" / "f.txt").write_bytes(b"hellO"),
        lambda: os.chmod(root / "g.bin", 0o600),
        lambda: os.rename(root / "g.bin", root / "h.bin"),
        lambda: (os.unlink(root / "link"), os.symlink("elsewhere", root / "link")),
        lambda: (root / "d" / "empty2").mkdir(),
    ]
    for mutate in mutations:
        assert changed(mutate)
        manifest, digest = compute_payload(root, algo)


def test_algorithms_differ_only_in_content_hashes(tmp_path):
    root = _tree(tmp_path / "t")
    a = compute_payload(root, "xxh3-128")[0].decode().splitlines()
    b = compute_payload(root, "sha256")[0].decode().splitlines()
    assert [r.rsplit(":", 1)[0] for r in a] == [r.rsplit(":", 1)[0] for r in b]
    assert len(a[0].rsplit(":", 1)[1]) == 32 and len(b[0].rsplit(":", 1)[1]) == 64


def test_manifest_matches_descriptor_root_hash(repo):
    main = repo / "main"
    _tree(main)
    out = run_jvs("snapshot", "x", "--json", cwd=main).json
    sid = out["snapshot_id"]
    desc = json.loads((repo / ".jvs" / "descriptors" / f"{sid}.json").read_text())
    manifest = decode_manifest((repo / ".jvs" / "manifests" / sid).read_bytes())
    assert hashlib.sha256(manifest).hexdigest() == desc["payload_root_hash"]
    assert compute_payload(repo / ".jvs" / "snapshots" / sid, "xxh3-128")[1] == \
        desc["payload_root_hash"]


def test_manifests_are_stored_compactly_and_rebuild_byte_for_byte(repo):
    """A snapshot of many small files stores its manifest in the compact form (records
    without hashes, zlib, then raw hashes): well under the 77 bytes per entry of the
    records text, and decoding it gives the exact text whose SHA-256 is the root hash."""
    main = repo / "main"
    for d in range(5):
        (main / f"dir{d}").mkdir()
        for i in range(200):
            (main / f"dir{d}" / f"file{i:05d}.bin").write_bytes(os.urandom(64))
    sid = run_jvs("snapshot", "x", "--json", cwd=main).json["snapshot_id"]
    stored = (repo / ".jvs" / "manifests" / sid).read_bytes()
    assert stored.startswith(STORED_MAGIC)
    records = compute_payload(repo / ".jvs" / "snapshots" / sid, "xxh3-128")[0]
    assert decode_manifest(stored) == records
    assert len(stored) / records.count(b"\n") < 24
    assert encode_manifest(b"") == b""  # an empty payload has an empty manifest


def test_a_plain_text_manifest_is_still_read(repo):
    """Manifests written by older jvs and by the Go implementation are the records text
    itself: they are trusted (root hash matches) and used as before."""
    main = repo / "main"
    (main / "a.txt").write_text("one\n")
    sid = run_jvs("snapshot", "x", "--json", cwd=main).json["snapshot_id"]
    path = repo / ".jvs" / "manifests" / sid
    path.write_bytes(decode_manifest(path.read_bytes()))
    assert run_jvs("verify", "--json", cwd=main).json["snapshots"][0]["manifest_valid"]
    (main / "a.txt").write_text("two\n")
    assert [c["path"] for c in run_jvs("status", "--json", cwd=main, check=False)
            .json["changes"]] == ["a.txt"]


def test_a_damaged_stored_manifest_is_not_trusted(repo):
    main = repo / "main"
    (main / "a.txt").write_text("one\n")
    sid = run_jvs("snapshot", "x", "--json", cwd=main).json["snapshot_id"]
    path = repo / ".jvs" / "manifests" / sid
    stored = bytearray(path.read_bytes())
    stored[-1] ^= 0xFF  # one bit of a hash
    path.write_bytes(bytes(stored))
    (out,) = run_jvs("verify", "--json", cwd=main, check=False).json["snapshots"]
    assert out["manifest_valid"] is False and out["payload_hash_valid"] is True


def test_init_hash_algo_sha256(tmp_path):
    run_jvs("init", "r", "--hash-algo", "sha256", cwd=tmp_path)
    main = tmp_path / "r" / "main"
    (main / "a").write_text("x")
    sid = run_jvs("snapshot", "s", "--json", cwd=main).json["snapshot_id"]
    desc = json.loads((tmp_path / "r" / ".jvs" / "descriptors" / f"{sid}.json").read_text())
    assert desc["payload_hash_algo"] == "sha256"
    stored = (tmp_path / "r" / ".jvs" / "manifests" / sid).read_bytes()
    record = decode_manifest(stored).decode().splitlines()[0]
    assert record.rsplit(":", 1)[1] == hashlib.sha256(b"x").hexdigest()


def test_format_version_2_is_refused(repo):
    (repo / ".jvs" / "format_version").write_text("2\n")
    res = run_jvs("history", cwd=repo / "main", check=False)
    assert res.returncode == 1
    assert "E_FORMAT_UNSUPPORTED" in res.stderr


def test_the_parallel_scan_lists_exactly_what_the_scan_lists(tmp_path):
    """scan_parallel (FUSE and network filesystems) and scan give the same entries, in the
    same order, and the same ignored, special and hard-linked paths, and refuse the same
    names: a snapshot on JuiceFS must record what one on a local disk records."""
    from jvs.ignore import IgnoreRules
    from jvs.integrity import READY_MARKER, scan, scan_parallel

    root = tmp_path / "tree"
    (root / "flat").mkdir(parents=True)
    for i in range(300):  # more than one stat chunk in one directory
        (root / "flat" / f"f{i:03}").write_text(str(i))
    (root / "a" / "b" / "empty").mkdir(parents=True)
    (root / "a" / "b" / "x.txt").write_text("x")
    (root / "a" / "cache").mkdir()
    (root / "a" / "cache" / "junk").write_text("j")
    (root / "a" / "link").symlink_to("b/x.txt")
    os.link(root / "a" / "b" / "x.txt", root / "hard")
    os.mkfifo(root / "a" / "pipe")
    (root / READY_MARKER).write_text("")
    (root / ".jvsignore").write_text("cache/\n")
    ignore = IgnoreRules.load(root)

    def listed(result):
        return ([(e.kind, e.relpath, e.st.st_ino, e.st.st_mode, e.st.st_size)
                 for e in result.entries],
                result.ignored, result.skipped_special, result.hardlinked)

    for kwargs in ({}, {"ignore": ignore}, {"ready_marker": True}):
        expected = listed(scan(root, **kwargs))
        assert listed(scan_parallel(root, **kwargs)) == expected
        assert listed(scan_parallel(root, threads=1, **kwargs)) == expected
    assert any(p == "a/cache" for p in scan_parallel(root, ignore=ignore).ignored)

    (root / "a" / "b" / "bad\nname").write_text("")
    with pytest.raises(JvsError) as err:
        scan_parallel(root)
    assert err.value.code == "E_NAME_INVALID"
