"""The thin pyfuse3 adapter: every operation dispatches to the model (``nodes.View``).

pyfuse3 is maintained by its community only; keeping this layer to translation (model
answers → EntryAttributes, OSError → FUSEError) is what lets it be swapped one day.
"""

from __future__ import annotations

import errno
import functools
import logging
import os

import pyfuse3
import trio

from jvsfs.view import Attributes, Listing, View

log = logging.getLogger(__name__)


def _entry(attrs: Attributes) -> pyfuse3.EntryAttributes:
    st = attrs.st
    entry = pyfuse3.EntryAttributes()
    entry.st_ino = attrs.ino
    entry.generation = 0
    entry.entry_timeout = attrs.entry_timeout
    entry.attr_timeout = attrs.attr_timeout
    entry.st_mode = st.st_mode
    entry.st_nlink = st.st_nlink
    entry.st_uid = st.st_uid
    entry.st_gid = st.st_gid
    entry.st_rdev = st.st_rdev
    entry.st_size = st.st_size
    entry.st_atime_ns = st.st_atime_ns
    entry.st_mtime_ns = st.st_mtime_ns
    entry.st_ctime_ns = st.st_ctime_ns
    entry.st_blksize = st.st_blksize
    entry.st_blocks = st.st_blocks
    return entry


def _fuse_error(exc: OSError) -> pyfuse3.FUSEError:
    return pyfuse3.FUSEError(exc.errno or errno.EIO)


def _answers(handler):
    """pyfuse3 lets a handler raise only FUSEError: anything else ends the main loop and
    leaves a dead mount. So OSError becomes its errno, and any other failure (a bug) is
    logged and answered EIO — one request fails, the server lives on."""

    @functools.wraps(handler)
    async def guarded(*args):
        try:
            return await handler(*args)
        except pyfuse3.FUSEError:
            raise
        except OSError as exc:
            raise _fuse_error(exc) from None
        except Exception:
            log.exception("view: %s failed", handler.__name__)
            raise pyfuse3.FUSEError(errno.EIO) from None

    return guarded


class ViewOperations(pyfuse3.Operations):
    """pyfuse3 operations over a View. With *read_in_thread*, file reads run in trio's
    worker threads so a slow backing read (a JuiceFS object fetch) does not stall every
    other request; on local, cached data the hop costs more than the read."""

    enable_writeback_cache = False

    def __init__(self, view: View, *, read_in_thread: bool = False, xattrs: bool = True) -> None:
        super().__init__()
        self.view = view
        self.read_in_thread = read_in_thread
        # Without xattrs, getxattr/listxattr answer ENOSYS once and the kernel stops asking:
        # no xattr round trips at all (tools that list every file's xattrs, cp -a or
        # rsync -X, make one per file), at the price of the user.jvs.* attributes. `ls -l`
        # does not need it: see UNSUPPORTED_WHEN_ABSENT in nodes.py.
        self.xattrs = xattrs
        self._listings: dict[int, Listing] = {}
        self._next_fh = 1

    # -- names and attributes
    async def _before(self, inode, name=None) -> None:
        """Run what the model says may wait on the disk (a catalog refresh, resolving a
        reference) in a worker thread, so a slow metadata engine stalls only this
        request, never the others."""
        work = self.view.blocking_work(inode, name)
        if work is not None:
            await trio.to_thread.run_sync(work)

    @_answers
    async def lookup(self, parent_inode, name, ctx=None):
        await self._before(parent_inode, name)
        view = self.view
        attrs = view.lookup(parent_inode, name)
        view.inodes.remember(view.inodes.get(attrs.ino))
        return _entry(attrs)

    @_answers
    async def forget(self, inode_list):
        forget = self.view.inodes.forget
        for ino, count in inode_list:
            forget(ino, count)

    @_answers
    async def getattr(self, inode, ctx=None):
        return _entry(self.view.getattr(inode))

    @_answers
    async def readlink(self, inode, ctx):
        return self.view.readlink(inode)

    # -- directories
    @_answers
    async def opendir(self, inode, ctx):
        await self._before(inode)
        listing = self.view.opendir(inode)
        fh = self._next_fh
        self._next_fh += 1
        self._listings[fh] = listing
        return fh

    @_answers
    async def readdir(self, fh, start_id, token):
        listing = self._listings[fh]
        view = self.view
        inodes = view.inodes
        names = listing.names
        # The offset handed back for entry i is i + 1: the index of the next entry.
        for index in range(start_id, len(names)):
            attrs = view.listing_entry(listing, index)
            if attrs is None:
                continue
            if not pyfuse3.readdir_reply(token, names[index], _entry(attrs), index + 1):
                if attrs.counted:
                    inodes.drop_if_unused(attrs.ino)
                return
            if attrs.counted:
                inodes.remember(inodes.get(attrs.ino))

    @_answers
    async def releasedir(self, fh):
        listing = self._listings.pop(fh, None)
        if listing is not None:
            listing.close()

    # -- files
    @_answers
    async def open(self, inode, flags, ctx):
        fd = self.view.open(inode, flags)
        # keep_cache: snapshot contents never change, so the page cache survives re-opens.
        # Never direct_io: it is far slower and breaks mmap.
        return pyfuse3.FileInfo(fh=fd, keep_cache=True, direct_io=False)

    @_answers
    async def read(self, fh, off, size):
        if self.read_in_thread:
            return await trio.to_thread.run_sync(os.pread, fh, size, off)
        return os.pread(fh, size, off)

    @_answers
    async def release(self, fh):
        os.close(fh)

    @_answers
    async def statfs(self, ctx):
        st = self.view.statfs()
        out = pyfuse3.StatvfsData()
        for name in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files",
                     "f_ffree", "f_favail", "f_namemax"):
            setattr(out, name, getattr(st, name))
        return out

    # -- xattrs
    @_answers
    async def listxattr(self, inode, ctx):
        if not self.xattrs:
            raise pyfuse3.FUSEError(errno.ENOSYS)
        return self.view.listxattr(inode)

    @_answers
    async def getxattr(self, inode, name, ctx):
        if not self.xattrs:
            raise pyfuse3.FUSEError(errno.ENOSYS)
        return self.view.getxattr(inode, name)

    # -- every write-type operation: the view is read-only
    @_answers
    async def setattr(self, inode, attr, fields, fh, ctx):
        raise pyfuse3.FUSEError(errno.EROFS)

    @_answers
    async def setxattr(self, inode, name, value, ctx):
        raise pyfuse3.FUSEError(errno.EROFS)

    @_answers
    async def removexattr(self, inode, name, ctx):
        raise pyfuse3.FUSEError(errno.EROFS)

    @_answers
    async def mknod(self, parent_inode, name, mode, rdev, ctx):
        raise pyfuse3.FUSEError(errno.EROFS)

    @_answers
    async def mkdir(self, parent_inode, name, mode, ctx):
        raise pyfuse3.FUSEError(errno.EROFS)

    @_answers
    async def unlink(self, parent_inode, name, ctx):
        raise pyfuse3.FUSEError(errno.EROFS)

    @_answers
    async def rmdir(self, parent_inode, name, ctx):
        raise pyfuse3.FUSEError(errno.EROFS)

    @_answers
    async def symlink(self, parent_inode, name, target, ctx):
        raise pyfuse3.FUSEError(errno.EROFS)

    @_answers
    async def rename(self, parent_inode_old, name_old, parent_inode_new, name_new, flags, ctx):
        raise pyfuse3.FUSEError(errno.EROFS)

    @_answers
    async def link(self, inode, new_parent_inode, new_name, ctx):
        raise pyfuse3.FUSEError(errno.EROFS)

    @_answers
    async def create(self, parent_inode, name, mode, flags, ctx):
        raise pyfuse3.FUSEError(errno.EROFS)

    @_answers
    async def write(self, fh, off, buf):
        raise pyfuse3.FUSEError(errno.EROFS)
