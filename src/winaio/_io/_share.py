"""Share modes, delete-pending files and FILE_FLAG_DELETE_ON_CLOSE: a process-local table.

Windows checks every open of a file against the other opens of the same file (IoCheckShareAccess,
[MS:Creating and Opening Files] table, [W:k32/file.c:test_file_sharing]): an open asking for
read, write or delete access needs every existing open to share that access, and every
existing open's access must be shared by the new open; else ERROR_SHARING_VIOLATION. Opens
asking for none of those (attributes only) neither check nor count.

Deletion (DeleteFile, FILE_FLAG_DELETE_ON_CLOSE) is a disposition: with opens remaining the file
becomes *delete pending* - still there, new opens fail with ERROR_ACCESS_DENIED - and goes when
the last open closes. DeleteFile of a file open without FILE_SHARE_DELETE fails with
ERROR_SHARING_VIOLATION [W:k32/file.c:test_DeleteFileA]. FILE_FLAG_DELETE_ON_CLOSE implies
DELETE access (so other opens need FILE_SHARE_DELETE) and marks the file delete pending when
that open's last handle closes [MS:CreateFileW].

A documented deviation: the table is process-local. Linux has no mandatory share modes, so other
processes neither see nor are stopped by them, and a file deleted by another process disappears.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from ..codes import WinError
from ..errors import Win32Error

__all__ = [
    "FILE_SHARE_DELETE",
    "FILE_SHARE_READ",
    "FILE_SHARE_WRITE",
    "ShareEntry",
    "acquire",
    "check_path",
    "delete_file",
    "release",
]

FILE_SHARE_READ = 0x1
FILE_SHARE_WRITE = 0x2
FILE_SHARE_DELETE = 0x4
#: The access classes share modes govern.
READ, WRITE, DELETE = 0x1, 0x2, 0x4

_lock = threading.RLock()


@dataclass(eq=False)
class _Node:
    """One file (device, inode) and its opens."""

    key: tuple[int, int]
    path: str
    opens: list[ShareEntry] = field(default_factory=list)
    delete_pending: bool = False


@dataclass(eq=False)
class ShareEntry:
    """One open (file object) of a file: its access classes and share mode."""

    node: _Node
    access: int
    share: int
    delete_on_close: bool = False


_NODES: dict[tuple[int, int], _Node] = {}


def _conflict(node: _Node, access: int, share: int) -> bool:
    if not access & (READ | WRITE | DELETE):
        return False
    for other in node.opens:
        if not other.access & (READ | WRITE | DELETE):
            continue
        for bit, shared in ((READ, FILE_SHARE_READ), (WRITE, FILE_SHARE_WRITE),
                            (DELETE, FILE_SHARE_DELETE)):  # fmt: skip
            if (access & bit and not other.share & shared) or (
                other.access & bit and not share & shared
            ):
                return True
    return False


def check_path(path: str, access: int, share: int) -> None:
    """Refuse an open of ``path`` before it touches the file (truncating dispositions).

    Raises:
        Win32Error: ERROR_ACCESS_DENIED (delete pending), ERROR_SHARING_VIOLATION.
    """
    try:
        st = os.stat(path)
    except OSError:
        return
    with _lock:
        node = _NODES.get((st.st_dev, st.st_ino))
        if node is not None:
            _check(node, access, share)


def _check(node: _Node, access: int, share: int) -> None:
    if node.delete_pending:
        raise Win32Error(WinError.ERROR_ACCESS_DENIED, f"{node.path} is being deleted")
    if _conflict(node, access, share):
        raise Win32Error(WinError.ERROR_SHARING_VIOLATION, f"{node.path} is open elsewhere")


def acquire(
    fd: int, path: str, access: int, share: int, *, delete_on_close: bool = False
) -> ShareEntry:
    """Register an open of the file behind ``fd`` (module docstring).

    Raises:
        Win32Error: ERROR_ACCESS_DENIED (delete pending), ERROR_SHARING_VIOLATION.
    """
    st = os.fstat(fd)
    key = (st.st_dev, st.st_ino)
    with _lock:
        node = _NODES.get(key)
        if node is None:
            node = _NODES[key] = _Node(key, os.path.abspath(path))
        else:
            _check(node, access, share)
        entry = ShareEntry(node, access, share, delete_on_close)
        node.opens.append(entry)
    return entry


def release(entry: ShareEntry) -> None:
    """The open's last handle was closed: drop it; delete the file if it was the last open
    of a delete-pending file."""
    with _lock:
        node = entry.node
        if entry not in node.opens:
            return
        node.opens.remove(entry)
        if entry.delete_on_close:
            node.delete_pending = True
        if node.opens:
            return
        del _NODES[node.key]
        if node.delete_pending:
            try:
                os.unlink(node.path)
            except OSError:
                pass


def delete_file(path: str) -> None:
    """DeleteFile: delete now, or mark delete pending when the file is open here.

    Raises:
        Win32Error: ERROR_FILE_NOT_FOUND, ERROR_PATH_NOT_FOUND, ERROR_ACCESS_DENIED (a
            directory, read-only location, or already delete pending), ERROR_SHARING_VIOLATION
            (open without FILE_SHARE_DELETE).
    """
    with _lock:
        try:
            st = os.stat(path)
        except OSError as exc:
            raise Win32Error(_errno_code(exc.errno), f"{path}: {exc.strerror}") from None
        node = _NODES.get((st.st_dev, st.st_ino))
        if node is not None and node.opens:
            _check(node, DELETE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)
            node.delete_pending = True
            node.path = os.path.abspath(path)
            return
        try:
            if os.path.isdir(path):
                raise IsADirectoryError(21, "Is a directory")
            os.unlink(path)
        except OSError as exc:
            raise Win32Error(_errno_code(exc.errno), f"{path}: {exc.strerror}") from None


def _errno_code(err: int | None) -> int:
    if err == 2:
        return int(WinError.ERROR_FILE_NOT_FOUND)
    if err == 20:
        return int(WinError.ERROR_PATH_NOT_FOUND)
    return int(WinError.ERROR_ACCESS_DENIED)
