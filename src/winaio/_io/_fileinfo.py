"""File-level calls beside reading and writing: SetEndOfFile, GetFileType.

Facts encoded here ([MS:SetEndOfFile], [MS:GetFileType], [W:k32/file.c:test_SetEndOfFile]):
- SetEndOfFile moves the end of file to the handle's file pointer (truncating or extending with
  zeros) and leaves the pointer where it is; it needs write access (ERROR_ACCESS_DENIED).
- GetFileType: FILE_TYPE_DISK for files and directories, FILE_TYPE_CHAR for character devices
  (terminals, /dev/null), FILE_TYPE_PIPE for anonymous and named pipes and sockets.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from ..codes import WinError
from ..errors import Win32Error
from ._files import FileObject

__all__ = [
    "FILE_TYPE_CHAR",
    "FILE_TYPE_DISK",
    "FILE_TYPE_PIPE",
    "FILE_TYPE_UNKNOWN",
    "clip_past_eof",
    "file_type",
    "set_end_of_file",
]

FILE_TYPE_UNKNOWN = 0x0000
FILE_TYPE_DISK = 0x0001
FILE_TYPE_CHAR = 0x0002
FILE_TYPE_PIPE = 0x0003
#: The alignment FILE_FLAG_NO_BUFFERING works in (``_disk``).
_SECTOR = 4096


def set_end_of_file(file: FileObject) -> None:
    """SetEndOfFile: the file ends at the file pointer (``file.position``).

    Raises:
        Win32Error: ERROR_INVALID_HANDLE (not a disk file), ERROR_ACCESS_DENIED (no write access).
    """
    if not file.seekable:
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, "not a disk file")
    if not file.writable:
        raise Win32Error(WinError.ERROR_ACCESS_DENIED, "the handle has no write access")
    try:
        os.ftruncate(file.fd, file.position)
    except OSError as exc:
        code = WinError.ERROR_DISK_FULL if exc.errno == 28 else WinError.ERROR_ACCESS_DENIED
        raise Win32Error(code, f"ftruncate: {exc.strerror}") from None


def file_type(file: FileObject) -> int:
    """GetFileType for a file object (module docstring)."""
    if file.sock is not None:
        return FILE_TYPE_PIPE
    if file.fd < 0:  # in-process named pipe ends have no descriptor
        return FILE_TYPE_PIPE
    try:
        mode = os.fstat(file.fd).st_mode
    except OSError:
        return FILE_TYPE_UNKNOWN
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISBLK(mode):
        return FILE_TYPE_DISK
    if stat.S_ISCHR(mode):
        return FILE_TYPE_CHAR
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return FILE_TYPE_PIPE
    return FILE_TYPE_UNKNOWN


def clip_past_eof(fd: int, segments: list[Any], size: int, offset: int) -> tuple[list[Any], int]:
    """ReadFileScatter without buffering: drop the segments that start past the sector holding
    the end of file, so that they stay untouched (O_DIRECT would zero them) [MS:ReadFileScatter].
    Returns (segments, byte count)."""
    try:
        end = os.fstat(fd).st_size
    except OSError:
        return segments, size
    limit = max(_SECTOR, -(-(end - offset) // _SECTOR) * _SECTOR)
    kept: list[Any] = []
    total = 0
    for segment in segments:
        if total >= limit or total >= size:
            break
        kept.append(segment)
        total += len(memoryview(segment).cast("B"))
    return kept, min(size, total)
