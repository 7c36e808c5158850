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
@click.argument("mountpoint", type=click.Path(file_okay=False, path_type=Path))
@click.option("-C", "repo_dir", metavar="REPO", help="The repository to view (default: the "
              "one around the current directory).", shell_complete=complete_dir)
@click.option("--foreground", is_flag=True,
              help="Stay attached; tell systemd READY=1 when $NOTIFY_SOCKET is set.")
@click.option("--allow-other", is_flag=True,
              help="Let other users see the view (with the kernel's permission checks).")
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

    Examples:

    \b
      jvs mount ~/jvs-view
      diff -r ~/jvs-view/@snapshots/exp1 ~/jvs-view/@snapshots/exp2
      jvs mount --foreground /srv/view    # under systemd (systemd/jvs-mount@.service)
    """
    from jvs.repo import discover
    from jvsfs.server import mount as mount_view

    ui = ui_of(ctx)
    repo = discover(repo_dir).repo if repo_dir else locate(ctx).repo
    where = Path(mountpoint).absolute()
    if foreground:
        click.echo(f"Serving {repo.root} at {where} (Ctrl-C to unmount)", err=True)
        mount_view(repo, where, foreground=True, allow_other=allow_other,
                   xattrs=not no_xattrs)
        return
    pid = mount_view(repo, where, foreground=False, allow_other=allow_other,
                     xattrs=not no_xattrs)
    ui.emit({"mountpoint": str(where), "repo": str(repo.root), "pid": pid},
            f"Mounted {repo.root} at {where} (server pid {pid}); "
            f"unmount with: jvs umount {where}")


@click.command()
@click.argument("mountpoint", type=click.Path(path_type=Path))
@json_option
@click.pass_context
def umount(ctx, mountpoint):
    """Unmount a jvs view (also one left behind by a killed server).

    Example:

    \b
      jvs umount ~/jvs-view
    """
    from jvsfs.server import umount as umount_view

    where = Path(mountpoint).absolute()
    umount_view(where)
    ui_of(ctx).emit({"mountpoint": str(where), "unmounted": True}, f"Unmounted {where}")


COMMANDS = [mount, umount]
