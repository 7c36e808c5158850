"""jvs/mountinfo.py: the one parser of /proc/self/mountinfo."""

from __future__ import annotations

import os

from jvs.mountinfo import mount_at, mount_of, parse_mountinfo

TABLE = (b"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
         b"40 22 0:40 / /mnt/caf\xe9\\040stick rw - vfat /dev/sdb1 rw\n"
         b"41 22 0:41 / /srv/view ro - fuse.jvs jvs ro\n"
         b"42 41 0:42 / /srv/view ro - fuse.jvs jvs ro\n"
         b"garbage line without a separator\n")


def test_non_utf8_paths_are_kept_byte_for_byte():
    mounts = parse_mountinfo(TABLE)
    assert [m.fstype for m in mounts] == ["ext4", "vfat", "fuse.jvs", "fuse.jvs"]
    odd = mounts[1].mount_point
    assert os.fsencode(odd) == b"/mnt/caf\xe9 stick"  # escape undone, byte kept
    assert mount_of(os.fsdecode(b"/mnt/caf\xe9 stick/dir"), mounts) is mounts[1]


def test_text_decoded_with_surrogateescape_parses_the_same():
    assert parse_mountinfo(TABLE.decode("utf-8", "surrogateescape")) == parse_mountinfo(TABLE)


def test_the_topmost_mount_at_a_point_wins():
    mounts = parse_mountinfo(TABLE)
    assert mount_at("/srv/view", mounts, resolve=False) is mounts[3]
    assert mount_at("/srv", mounts, resolve=False) is None
