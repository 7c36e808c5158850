"""``jvs mount`` and ``jvs umount``: the read-only view of every snapshot (SPEC §11).

trio and pyfuse3 are imported only inside ``jvsfs.server.mount``, so these commands cost
nothing to the rest of the CLI.
"""

from __future__ import annotations

from pathlib import Path

import click

from jvs.cli.common import locate, ui_of
from jvs.cli.completion import complete_dir
from jvs.cli.output import json_option


@click.command()
@click.argument("mountpoint", type=click.Path(path_type=Path))
@click.option("-C", "repo_dir", metavar="REPO", help="The repository to view (default: the "
              "one around the current directory).", shell_complete=complete_dir)
@click.option("--foreground", is_flag=True,
              help="Stay attached; tell systemd READY=1 when $NOTIFY_SOCKET is set.")
@click.option("--allow-other", is_flag=True,
              help="Let other users in: they get what the repository root's own "
                   "permissions give them (a 0700 repository stays yours).")
@click.option("--no-xattrs", is_flag=True,
              help="Serve no xattrs (no user.jvs.* either); spares tools that list "
                   "every file's xattrs (cp -a, rsync -X) a round trip per file.")
@json_option
@click.pass_context
def mount(ctx, mountpoint, repo_dir, foreground, allow_other, no_xattrs):
    """Mount every snapshot read-only at MOUNTPOINT; returns once the mount is live.

    \b
      MOUNTPOINT/@snapshots/<id>/...    a snapshot, exactly its payload
      MOUNTPOINT/@snapshots/<tag>       -> the newest snapshot with that tag
      MOUNTPOINT/@worktrees/<name>      -> ../@snapshots/<head id>

    Any reference works as a name under @snapshots (answered as a symlink, not listed):
    a short ID (@snapshots/1a2b3c4d), a note or note prefix (@snapshots/"baseline run"),
    and latest: the newest snapshot, unless a tag or note is exactly "latest".

    MOUNTPOINT must be an existing directory outside the repository (and not one that
    contains it), and not already a mount. Unmount with 'jvs umount MOUNTPOINT'. The
    background server logs its warnings to $JVS_MOUNT_LOG when set. See docs/mount.md.

    Examples:

    \b
      mkdir -p ~/jvs-view && jvs mount ~/jvs-view
      diff -r ~/jvs-view/@snapshots/exp1 ~/jvs-view/@snapshots/exp2
      ls ~/jvs-view/@snapshots/latest/
      jvs umount ~/jvs-view
      jvs mount --foreground /srv/view    # under systemd (systemd/jvs-mount@.service)
    """
    from jvs.repo import discover
    from jvsfs.server import mount as mount_view

    ui = ui_of(ctx)
    repo = discover(repo_dir).repo if repo_dir else locate(ctx).repo
    where = Path(mountpoint).absolute()
    if foreground:
        def serving() -> None:  # only once the checks passed and the mount is made
            click.echo(f"Serving {repo.root} at {where} (Ctrl-C to unmount)", err=True)

        mount_view(repo, where, foreground=True, allow_other=allow_other,
                   xattrs=not no_xattrs, on_serving=serving)
        return
    mounted = mount_view(repo, where, foreground=False, allow_other=allow_other,
                         xattrs=not no_xattrs)
    ui.emit(mounted.to_json(),
            f"Mounted {mounted.repo_root} at {mounted.mountpoint} (server pid {mounted.pid}); "
            f"unmount with: jvs umount {mounted.mountpoint}")


@click.command()
@click.argument("mountpoint", type=click.Path(path_type=Path))
@click.option("--lazy", is_flag=True,
              help="Detach a view that is in use now; it goes once the last process "
                   "using it lets go.")
@json_option
@click.pass_context
def umount(ctx, mountpoint, lazy):
    """Unmount a jvs view (also one left behind by a killed server).

    A view in use (an open file, a shell inside it) is refused with E_BUSY unless
    --lazy is given.

    Example:

    \b
      jvs umount ~/jvs-view
      jvs umount --lazy ~/jvs-view
    """
    from jvsfs.server import umount as umount_view

    done = umount_view(Path(mountpoint).absolute(), lazy=lazy)
    where = done.mountpoint
    text = {"unmounted": f"Unmounted {where}",
            "stale": f"Unmounted {where} (its server had died; cleared the stale mount)",
            "lazy": f"Detached {where}; it is unmounted once the last process using it "
                    "lets go"}[done.how]
    ui_of(ctx).emit(done.to_json(), text)


COMMANDS = [mount, umount]
