"""Win32 aliases: ReadDirectoryChangesW, FILE_NOTIFY_INFORMATION and the change-notification
handles (FindFirst/Next/CloseChangeNotification), over ``winaio._io._dirwatch``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._io._dirwatch import (
    FILE_ACTION_ADDED,
    FILE_ACTION_MODIFIED,
    FILE_ACTION_REMOVED,
    FILE_ACTION_RENAMED_NEW_NAME,
    FILE_ACTION_RENAMED_OLD_NAME,
    NOTIFY_FILTER_ALL,
    ChangeNotification,
    DirectoryFile,
    find_first_change,
)
from .._io._issue import start
from .._io._overlapped import STATUS_PENDING, Overlapped, is_error, is_warning
from .._io._requests import as_buffers
from .._io._sync import run_sync
from .._kernel._handles import HANDLE_TABLE
from ..codes import NtStatus, WinError, ntstatus_to_winerror
from ..errors import IoError, Win32Error
from ._base import Ref, fail, integer, set_last_error
from ._overlapped import bind_overlapped

__all__ = [
    "FILE_ACTION_ADDED",
    "FILE_ACTION_MODIFIED",
    "FILE_ACTION_REMOVED",
    "FILE_ACTION_RENAMED_NEW_NAME",
    "FILE_ACTION_RENAMED_OLD_NAME",
    "FILE_LIST_DIRECTORY",
    "FILE_NOTIFY_CHANGE_ATTRIBUTES",
    "FILE_NOTIFY_CHANGE_CREATION",
    "FILE_NOTIFY_CHANGE_DIR_NAME",
    "FILE_NOTIFY_CHANGE_FILE_NAME",
    "FILE_NOTIFY_CHANGE_LAST_ACCESS",
    "FILE_NOTIFY_CHANGE_LAST_WRITE",
    "FILE_NOTIFY_CHANGE_SECURITY",
    "FILE_NOTIFY_CHANGE_SIZE",
    "FILE_NOTIFY_INFORMATION",
    "FindCloseChangeNotification",
    "FindFirstChangeNotification",
    "FindFirstChangeNotificationW",
    "FindNextChangeNotification",
    "ReadDirectoryChangesW",
]

FILE_LIST_DIRECTORY = 0x0001
FILE_NOTIFY_CHANGE_FILE_NAME = 0x001
FILE_NOTIFY_CHANGE_DIR_NAME = 0x002
FILE_NOTIFY_CHANGE_ATTRIBUTES = 0x004
FILE_NOTIFY_CHANGE_SIZE = 0x008
FILE_NOTIFY_CHANGE_LAST_WRITE = 0x010
FILE_NOTIFY_CHANGE_LAST_ACCESS = 0x020
FILE_NOTIFY_CHANGE_CREATION = 0x040
FILE_NOTIFY_CHANGE_SECURITY = 0x100
_ENUM_DIR = int(NtStatus.STATUS_NOTIFY_ENUM_DIR)


@dataclass(slots=True)
class FILE_NOTIFY_INFORMATION:  # noqa: N801 - the Win32 structure name
    """One change record [MS:FILE_NOTIFY_INFORMATION]: read it from the buffer given to
    ReadDirectoryChangesW with :meth:`from_buffer`; follow ``NextEntryOffset`` (0 = last).

    ``FileNameLength`` is in bytes (UTF-16); ``FileName`` is the decoded name.
    """

    NextEntryOffset: int
    Action: int
    FileNameLength: int
    FileName: str

    @classmethod
    def from_buffer(cls, buffer: Any, offset: int = 0) -> FILE_NOTIFY_INFORMATION:
        """The record at ``offset`` in ``buffer`` (a bytes-like object)."""
        view = memoryview(buffer).cast("B")
        step = int.from_bytes(view[offset : offset + 4], "little")
        action = int.from_bytes(view[offset + 4 : offset + 8], "little")
        size = int.from_bytes(view[offset + 8 : offset + 12], "little")
        name = bytes(view[offset + 12 : offset + 12 + size]).decode("utf-16-le")
        return cls(step, action, size, name)

    @classmethod
    def all_from_buffer(cls, buffer: Any, length: int) -> list[FILE_NOTIFY_INFORMATION]:
        """Every record of the chain in the first ``length`` bytes (none when 0)."""
        records: list[FILE_NOTIFY_INFORMATION] = []
        offset = 0
        while length:
            record = cls.from_buffer(buffer, offset)
            records.append(record)
            if not record.NextEntryOffset:
                break
            offset += record.NextEntryOffset
        return records


def ReadDirectoryChangesW(
    hDirectory: int,
    lpBuffer: Any,
    nBufferLength: int,
    bWatchSubtree: bool,
    dwNotifyFilter: int,
    lpBytesReturned: Ref[int] | None,
    lpOverlapped: Any,
    lpCompletionRoutine: Any,
) -> bool:
    """[MS:ReadDirectoryChangesW] -> core ``DirectoryFile.read_changes_op``.

    Overlapped: TRUE as soon as the request is accepted (pending or done), the records arrive
    through the event, the handle, the completion routine or the completion port; an overflow
    completes with STATUS_NOTIFY_ENUM_DIR and 0 bytes (a success status: GetOverlappedResult
    and GetQueuedCompletionStatus return TRUE with 0 bytes). Synchronous (no OVERLAPPED or a
    synchronous handle): waits; on overflow TRUE with *lpBytesReturned = 0 and last-error
    ERROR_NOTIFY_ENUM_DIR. An empty or unknown filter fails ERROR_INVALID_PARAMETER before the
    handle is looked at [W:k32/change.c:test_readdirectorychanges].

    Deviation: changes come from inotify, which is not recursive: for a watched subtree a
    subdirectory's entries created before its own watch existed are reported once as ADDED.
    """
    try:
        dwNotifyFilter = integer(dwNotifyFilter, "dwNotifyFilter")
        if not dwNotifyFilter or dwNotifyFilter & ~NOTIFY_FILTER_ALL:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"filter 0x{dwNotifyFilter:X}")
        directory = HANDLE_TABLE.get(hDirectory, DirectoryFile, pseudo=False)
        size = integer(nBufferLength, "nBufferLength") if lpBuffer is not None else 0
        buffer = as_buffers(lpBuffer, size, True)[0] if size else None
        subtree, notify_filter = bool(bWatchSubtree), dwNotifyFilter
        if lpOverlapped is not None and directory.overlapped:
            if lpCompletionRoutine is not None:
                ov: Overlapped | None = lpOverlapped  # hEvent is the caller's, never touched
                if not isinstance(ov, Overlapped):
                    raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "not an OVERLAPPED")
                ov.event, ov.skip_port = None, False
            else:
                ov = bind_overlapped(lpOverlapped)
            assert ov is not None
            op = directory.read_changes_op(
                buffer,
                ov,
                subtree=subtree,
                notify_filter=notify_filter,
                routine=lpCompletionRoutine,
            )
            start(op)
            return True
        op = directory.read_changes_op(
            buffer, Overlapped(), subtree=subtree, notify_filter=notify_filter
        )
        status, count = run_sync(op)
        if lpOverlapped is not None:
            ov = bind_overlapped(lpOverlapped)
            assert ov is not None
            ov.status, ov.information = status, count
        if is_error(status) or is_warning(status):
            raise IoError(ntstatus_to_winerror(status), count)
    except Win32Error as exc:
        fail(exc)
        return False
    if lpBytesReturned is not None:
        lpBytesReturned.value = count
    if status == _ENUM_DIR:
        set_last_error(WinError.ERROR_NOTIFY_ENUM_DIR)
    elif status == STATUS_PENDING:  # pragma: no cover - run_sync waits
        return False
    return True


def FindFirstChangeNotification(lpPathName: str, bWatchSubtree: bool, dwNotifyFilter: int) -> int:
    """[MS:FindFirstChangeNotificationW] -> core ``find_first_change``: a waitable handle
    signaled by the next matching change; INVALID_HANDLE_VALUE on failure."""
    try:
        notification = find_first_change(
            lpPathName, bool(bWatchSubtree), integer(dwNotifyFilter, "dwNotifyFilter")
        )
    except Win32Error as exc:
        fail(exc)
        return -1
    return HANDLE_TABLE.insert(notification)


FindFirstChangeNotificationW = FindFirstChangeNotification


def FindNextChangeNotification(hChangeHandle: int) -> bool:
    """[MS:FindNextChangeNotification] -> core ``ChangeNotification.next``."""
    try:
        HANDLE_TABLE.get(hChangeHandle, ChangeNotification, pseudo=False).next()
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def FindCloseChangeNotification(hChangeHandle: int) -> bool:
    """[MS:FindCloseChangeNotification] -> core ``HandleTable.close``."""
    try:
        HANDLE_TABLE.get(hChangeHandle, ChangeNotification, pseudo=False)
        HANDLE_TABLE.close(hChangeHandle)
    except Win32Error as exc:
        fail(exc)
        return False
    return True
