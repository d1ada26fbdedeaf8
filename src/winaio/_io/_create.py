"""CreateFile: one entry point for regular files, directories and named pipes.

Facts encoded here ([MS:CreateFileW], [W:k32/file.c:test_CreateFileA, test_file_sharing],
[W:k32/change.c:test_readdirectorychanges]):
- ``\\\\.\\pipe\\name`` connects a client to a named pipe (``_pipe_names``).
- A directory opens only with FILE_FLAG_BACKUP_SEMANTICS (else ERROR_ACCESS_DENIED); it gives a
  handle for ReadDirectoryChangesW (``_dirwatch``).
- Regular files go through the share-mode table (``_share``): the check happens before a
  truncating disposition touches the file. FILE_FLAG_DELETE_ON_CLOSE adds DELETE access and
  deletes the file once its last open is closed.
- Access classes: GENERIC_READ/FILE_READ_DATA/FILE_EXECUTE read, GENERIC_WRITE/FILE_WRITE_DATA/
  FILE_APPEND_DATA write, DELETE delete; GENERIC_ALL all three.
"""

from __future__ import annotations

import os

from ..codes import Access, WinError
from ..errors import Win32Error
from ._dirwatch import open_directory
from ._disk import CREATE_ALWAYS, CREATE_NEW, TRUNCATE_EXISTING, open_file
from ._files import FileObject
from ._pipe_names import open_named_pipe, pipe_name
from ._share import DELETE, READ, WRITE, acquire, check_path, release

__all__ = [
    "FILE_FLAG_BACKUP_SEMANTICS",
    "FILE_FLAG_DELETE_ON_CLOSE",
    "FILE_FLAG_NO_BUFFERING",
    "FILE_FLAG_OVERLAPPED",
    "FILE_FLAG_WRITE_THROUGH",
    "create_file",
]

FILE_FLAG_WRITE_THROUGH = 0x80000000
FILE_FLAG_OVERLAPPED = 0x40000000
FILE_FLAG_NO_BUFFERING = 0x20000000
FILE_FLAG_DELETE_ON_CLOSE = 0x04000000
FILE_FLAG_BACKUP_SEMANTICS = 0x02000000
_FILE_READ_DATA, _FILE_WRITE_DATA, _FILE_APPEND_DATA, _FILE_EXECUTE = 0x1, 0x2, 0x4, 0x20
_GENERIC_READ = int(Access.GENERIC_READ)
_GENERIC_WRITE = int(Access.GENERIC_WRITE)
_GENERIC_EXECUTE = int(Access.GENERIC_EXECUTE)
_GENERIC_ALL = int(Access.GENERIC_ALL)
_FILE_WRITE_ATTRIBUTES = 0x100
_MAXIMUM_ALLOWED = 0x02000000
_DELETE = int(Access.DELETE)


def access_classes(access: int, flags: int = 0) -> int:
    """READ | WRITE | DELETE bits of a desired-access mask (module docstring)."""
    classes = 0
    if access & (_GENERIC_READ | _GENERIC_EXECUTE | _GENERIC_ALL | _FILE_READ_DATA | _FILE_EXECUTE):
        classes |= READ
    if access & (_GENERIC_WRITE | _GENERIC_ALL | _FILE_WRITE_DATA | _FILE_APPEND_DATA):
        classes |= WRITE
    if access & (_DELETE | _GENERIC_ALL) or flags & FILE_FLAG_DELETE_ON_CLOSE:
        classes |= DELETE
    return classes


def create_file(
    path: str, access: int, share: int, disposition: int, flags: int
) -> tuple[FileObject, bool]:
    """CreateFile: (file object, the file already existed).

    Raises:
        Win32Error: ERROR_FILE_NOT_FOUND, ERROR_FILE_EXISTS, ERROR_ACCESS_DENIED,
            ERROR_SHARING_VIOLATION, ERROR_PIPE_BUSY, ERROR_INVALID_PARAMETER...
    """
    classes = access_classes(access, flags)
    read, write = bool(classes & READ), bool(classes & WRITE)
    overlapped = bool(flags & FILE_FLAG_OVERLAPPED)
    name = pipe_name(path)
    if name is not None:
        set_state = write or bool(access & (_FILE_WRITE_ATTRIBUTES | _MAXIMUM_ALLOWED))
        end = open_named_pipe(
            name, read=read, write=write, overlapped=overlapped, set_state=set_state
        )
        return end, False
    if os.path.isdir(path):
        if not flags & FILE_FLAG_BACKUP_SEMANTICS:
            raise Win32Error(WinError.ERROR_ACCESS_DENIED, f"{path} is a directory")
        if disposition == CREATE_NEW:
            raise Win32Error(WinError.ERROR_FILE_EXISTS, path)
        if disposition in (CREATE_ALWAYS, TRUNCATE_EXISTING):
            raise Win32Error(WinError.ERROR_ACCESS_DENIED, f"{path} is a directory")
        return open_directory(path, overlapped=overlapped, readable=read), True
    if not path:
        raise Win32Error(WinError.ERROR_PATH_NOT_FOUND, "empty file name")
    if disposition in (CREATE_ALWAYS, TRUNCATE_EXISTING):
        check_path(path, classes, share)  # before the truncation destroys anything
    try:
        file, existed = open_file(
            path,
            read=read,
            write=write,
            disposition=disposition,
            overlapped=overlapped,
            direct=bool(flags & FILE_FLAG_NO_BUFFERING),
            write_through=bool(flags & FILE_FLAG_WRITE_THROUGH),
        )
    except Win32Error as exc:
        # ENOENT means either; Windows tells a missing directory on the way from a missing
        # file [W:k32/file.c:test_CreateFileW].
        if exc.winerror == WinError.ERROR_FILE_NOT_FOUND and not os.path.isdir(
            os.path.dirname(os.path.abspath(path))
        ):
            raise Win32Error(WinError.ERROR_PATH_NOT_FOUND, path) from None
        raise
    try:
        entry = acquire(
            file.fd, path, classes, share, delete_on_close=bool(flags & FILE_FLAG_DELETE_ON_CLOSE)
        )
    except Win32Error:
        file.close()
        raise
    file.add_close_hook(lambda: release(entry))
    return file, existed
