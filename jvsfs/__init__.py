"""The view filesystem (SPEC §11): every snapshot of a repository as a read-only directory.

``catalog``, ``backing``, ``inodes``, ``nodes`` and ``view`` are the model and import
nothing from FUSE; ``fuse`` is the thin pyfuse3 adapter over it and ``server`` mounts,
daemonises and unmounts.
"""
