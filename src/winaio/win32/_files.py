"""Win32 aliases: files by handle - CreateFile/DeleteFile, the file pointer, size and flush,
byte-range locks (LockFile(Ex)/UnlockFile(Ex)), SetEndOfFile, GetFileType, and the CreateFile
flags and access bits (share modes, directories, FILE_FLAG_DELETE_ON_CLOSE).

Each function adapts one core call (``winaio._io._create`` / ``_share`` / ``_disk`` / ``_locks`` /
``_fileinfo``) to Win32 conventions. Reading and writing are ``_io``; the OVERLAPPED
``_overlapped``.
"""

from __future__ import annotations

from typing import Any

from .._io._create import FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_DELETE_ON_CLOSE, create_file
from .._io._disk import DiskFile
from .._io._fileinfo import (
    FILE_TYPE_CHAR,
    FILE_TYPE_DISK,
    FILE_TYPE_PIPE,
    FILE_TYPE_UNKNOWN,
    file_type,
    set_end_of_file,
)
from .._io._files import FileObject
from .._io._issue import start
from .._io._locks import lock_request, unlock_file
from .._io._overlapped import STATUS_PENDING, Overlapped
from .._io._share import delete_file
from .._io._sync import run_sync
from .._kernel._handles import HANDLE_TABLE
from ..codes import WinError, ntstatus_to_winerror
from ..errors import Win32Error
from ._base import Ref, fail, set_last_error
from ._overlapped import bind_overlapped

__all__ = [
    "CREATE_ALWAYS",
    "CREATE_NEW",
    "FILE_ATTRIBUTE_NORMAL",
    "FILE_BEGIN",
    "FILE_CURRENT",
    "FILE_END",
    "FILE_FLAG_NO_BUFFERING",
    "FILE_FLAG_OVERLAPPED",
    "FILE_FLAG_WRITE_THROUGH",
    "FILE_SHARE_DELETE",
    "FILE_SHARE_READ",
    "FILE_SHARE_WRITE",
    "INVALID_SET_FILE_POINTER",
    "OPEN_ALWAYS",
    "OPEN_EXISTING",
    "TRUNCATE_EXISTING",
    "CreateFile",
    "CreateFileW",
    "DeleteFile",
    "FlushFileBuffers",
    "GetFileSizeEx",
    "SetFilePointer",
    "SetFilePointerEx",
    "FILE_APPEND_DATA",
    "FILE_EXECUTE",
    "FILE_FLAG_BACKUP_SEMANTICS",
    "FILE_FLAG_DELETE_ON_CLOSE",
    "FILE_FLAG_POSIX_SEMANTICS",
    "FILE_FLAG_RANDOM_ACCESS",
    "FILE_FLAG_SEQUENTIAL_SCAN",
    "FILE_READ_ATTRIBUTES",
    "FILE_READ_DATA",
    "FILE_TYPE_CHAR",
    "FILE_TYPE_DISK",
    "FILE_TYPE_PIPE",
    "FILE_TYPE_REMOTE",
    "FILE_TYPE_UNKNOWN",
    "FILE_WRITE_ATTRIBUTES",
    "FILE_WRITE_DATA",
    "LOCKFILE_EXCLUSIVE_LOCK",
    "LOCKFILE_FAIL_IMMEDIATELY",
    "GetFileType",
    "LockFile",
    "LockFileEx",
    "SetEndOfFile",
    "UnlockFile",
    "UnlockFileEx",
]

FILE_SHARE_READ = 0x1
FILE_SHARE_WRITE = 0x2
FILE_SHARE_DELETE = 0x4
CREATE_NEW = 1
CREATE_ALWAYS = 2
OPEN_EXISTING = 3
OPEN_ALWAYS = 4
TRUNCATE_EXISTING = 5
FILE_ATTRIBUTE_NORMAL = 0x80
FILE_FLAG_WRITE_THROUGH = 0x80000000
FILE_FLAG_OVERLAPPED = 0x40000000
FILE_FLAG_NO_BUFFERING = 0x20000000
FILE_BEGIN, FILE_CURRENT, FILE_END = 0, 1, 2
INVALID_SET_FILE_POINTER = 0xFFFFFFFF
FILE_READ_DATA = 0x0001
FILE_WRITE_DATA = 0x0002
FILE_APPEND_DATA = 0x0004
FILE_EXECUTE = 0x0020
FILE_READ_ATTRIBUTES = 0x0080
FILE_WRITE_ATTRIBUTES = 0x0100
FILE_FLAG_RANDOM_ACCESS = 0x10000000
FILE_FLAG_SEQUENTIAL_SCAN = 0x08000000
FILE_FLAG_POSIX_SEMANTICS = 0x01000000
FILE_TYPE_REMOTE = 0x8000
LOCKFILE_FAIL_IMMEDIATELY = 0x1
LOCKFILE_EXCLUSIVE_LOCK = 0x2


def _file(handle: int) -> FileObject:
    return HANDLE_TABLE.get(handle, FileObject, pseudo=False)


def LockFileEx(
    hFile: int,
    dwFlags: int,
    dwReserved: int,
    nNumberOfBytesToLockLow: int,
    nNumberOfBytesToLockHigh: int,
    lpOverlapped: Any,
) -> bool:
    """[MS:LockFileEx] -> core ``lock_request``: the range starts at the OVERLAPPED's offset.

    Granted at once: TRUE (and the usual immediate-success notifications). A conflict:
    ERROR_LOCK_VIOLATION with LOCKFILE_FAIL_IMMEDIATELY; else it waits - on an overlapped handle
    FALSE + ERROR_IO_PENDING and the OVERLAPPED reports the grant (or ERROR_OPERATION_ABORTED).

    Deviation: byte-range locks are advisory on Linux: ReadFile/WriteFile through another handle
    are not refused; other processes see the locks as OFD locks.
    """
    try:
        file = _file(hFile)
        ov = bind_overlapped(lpOverlapped)
        if (
            ov is None
            or dwReserved
            or dwFlags & ~(LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY)
        ):
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "LockFileEx arguments")
        length = ((nNumberOfBytesToLockHigh & 0xFFFFFFFF) << 32) | (
            nNumberOfBytesToLockLow & 0xFFFFFFFF
        )
        exclusive = bool(dwFlags & LOCKFILE_EXCLUSIVE_LOCK)
        fail_now = bool(dwFlags & LOCKFILE_FAIL_IMMEDIATELY)
        if file.overlapped:
            op = lock_request(file, ov, length, exclusive=exclusive, fail_immediately=fail_now)
            if start(op) == STATUS_PENDING:
                set_last_error(WinError.ERROR_IO_PENDING)
                return False
            return True
        op = lock_request(
            file, Overlapped(ov.offset), length, exclusive=exclusive, fail_immediately=fail_now
        )
        status, _ = run_sync(op)
        ov.status, ov.information = status, 0
        if status:
            raise Win32Error(ntstatus_to_winerror(status))
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def UnlockFileEx(
    hFile: int,
    dwReserved: int,
    nNumberOfBytesToUnlockLow: int,
    nNumberOfBytesToUnlockHigh: int,
    lpOverlapped: Any,
) -> bool:
    """[MS:UnlockFileEx] -> core ``unlock_file`` (the exact range at the OVERLAPPED's offset;
    ERROR_NOT_LOCKED otherwise). Always synchronous."""
    try:
        file = _file(hFile)
        ov = bind_overlapped(lpOverlapped)
        if ov is None or dwReserved:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "UnlockFileEx arguments")
        length = ((nNumberOfBytesToUnlockHigh & 0xFFFFFFFF) << 32) | (
            nNumberOfBytesToUnlockLow & 0xFFFFFFFF
        )
        unlock_file(file, ov.offset, length)
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def _join(low: int, high: int) -> int:
    return ((high & 0xFFFFFFFF) << 32) | (low & 0xFFFFFFFF)


def LockFile(
    hFile: int,
    dwFileOffsetLow: int,
    dwFileOffsetHigh: int,
    nNumberOfBytesToLockLow: int,
    nNumberOfBytesToLockHigh: int,
) -> bool:
    """[MS:LockFile] -> core ``lock_request``: exclusive, never waits (ERROR_LOCK_VIOLATION)."""
    try:
        file = _file(hFile)
        ov = Overlapped(_join(dwFileOffsetLow, dwFileOffsetHigh))
        length = _join(nNumberOfBytesToLockLow, nNumberOfBytesToLockHigh)
        status, _ = run_sync(lock_request(file, ov, length, exclusive=True, fail_immediately=True))
        if status:
            raise Win32Error(ntstatus_to_winerror(status))
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def UnlockFile(
    hFile: int,
    dwFileOffsetLow: int,
    dwFileOffsetHigh: int,
    nNumberOfBytesToUnlockLow: int,
    nNumberOfBytesToUnlockHigh: int,
) -> bool:
    """[MS:UnlockFile] -> core ``unlock_file``."""
    try:
        offset = _join(dwFileOffsetLow, dwFileOffsetHigh)
        unlock_file(
            _file(hFile), offset, _join(nNumberOfBytesToUnlockLow, nNumberOfBytesToUnlockHigh)
        )
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def SetEndOfFile(hFile: int) -> bool:
    """[MS:SetEndOfFile] -> core ``set_end_of_file`` (the end moves to the file pointer)."""
    try:
        set_end_of_file(_file(hFile))
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def GetFileType(hFile: int) -> int:
    """[MS:GetFileType] -> core ``file_type``; FILE_TYPE_UNKNOWN with ERROR_INVALID_HANDLE for
    a handle that is not a file, pipe or socket (last-error 0 when the type is just unknown)."""
    try:
        kind = file_type(_file(hFile))
    except Win32Error as exc:
        fail(exc)
        return FILE_TYPE_UNKNOWN
    if kind == FILE_TYPE_UNKNOWN:
        set_last_error(0)
    return kind


# The CreateFile flags this module documents (the behaviour is in ``_create``).
_FLAGS = (FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_DELETE_ON_CLOSE)


def CreateFile(
    lpFileName: str,
    dwDesiredAccess: int,
    dwShareMode: int,
    lpSecurityAttributes: object,
    dwCreationDisposition: int,
    dwFlagsAndAttributes: int,
    hTemplateFile: int | None,
) -> int:
    """[MS:CreateFileW] -> core ``create_file`` (files, directories, named pipes); -1 on failure."""
    try:
        file, existed = create_file(
            lpFileName, dwDesiredAccess, dwShareMode, dwCreationDisposition, dwFlagsAndAttributes
        )
    except Win32Error as exc:
        fail(exc)
        return -1
    exists_is_reported = dwCreationDisposition in (CREATE_ALWAYS, OPEN_ALWAYS)
    set_last_error(WinError.ERROR_ALREADY_EXISTS if existed and exists_is_reported else 0)
    return HANDLE_TABLE.insert(file)


CreateFileW = CreateFile


def DeleteFile(lpFileName: str) -> bool:
    """[MS:DeleteFileW] -> core ``delete_file`` (delete pending while open here;
    ERROR_SHARING_VIOLATION when open without FILE_SHARE_DELETE)."""
    try:
        delete_file(lpFileName)
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def _disk(handle: int) -> DiskFile:
    return HANDLE_TABLE.get(handle, DiskFile, pseudo=False)


def SetFilePointerEx(
    hFile: int, liDistanceToMove: int, lpNewFilePointer: Ref[int] | None, dwMoveMethod: int
) -> bool:
    """[MS:SetFilePointerEx] -> core ``DiskFile.seek``."""
    try:
        position = _disk(hFile).seek(liDistanceToMove, dwMoveMethod)
    except Win32Error as exc:
        fail(exc)
        return False
    if lpNewFilePointer is not None:
        lpNewFilePointer.value = position
    return True


def SetFilePointer(
    hFile: int, lDistanceToMove: int, lpDistanceToMoveHigh: Ref[int] | None, dwMoveMethod: int
) -> int:
    """[MS:SetFilePointer] -> core ``DiskFile.seek``; low DWORD or INVALID_SET_FILE_POINTER."""
    distance = lDistanceToMove
    if lpDistanceToMoveHigh is not None:
        distance = (lpDistanceToMoveHigh.value << 32) | (lDistanceToMove & 0xFFFFFFFF)
    new = Ref(0)
    if not SetFilePointerEx(hFile, distance, new, dwMoveMethod):
        return INVALID_SET_FILE_POINTER
    if lpDistanceToMoveHigh is not None:
        lpDistanceToMoveHigh.value = new.value >> 32
    set_last_error(0)
    return new.value & 0xFFFFFFFF


def GetFileSizeEx(hFile: int, lpFileSize: Ref[int]) -> bool:
    """[MS:GetFileSizeEx] -> core ``DiskFile.size``."""
    try:
        lpFileSize.value = _disk(hFile).size()
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def FlushFileBuffers(hFile: int) -> bool:
    """[MS:FlushFileBuffers] -> core ``DiskFile.flush`` / ``StreamFile.flush`` (pipes: wait for
    the reader to drain)."""
    try:
        file = _file(hFile)
        if file.seekable and not file.writable:
            raise Win32Error(WinError.ERROR_ACCESS_DENIED, "FlushFileBuffers needs write access")
        flush = getattr(file, "flush", None)
        if flush is not None:
            flush()
    except Win32Error as exc:
        fail(exc)
        return False
    return True
