"""Win32 aliases: I/O completion ports, completion modes and the NT completion functions.

Each function adapts one core call (``winaio._io._port``) to Win32 conventions (see ``_base``).
"""

from __future__ import annotations

from typing import Any

from .._clock import filetime_now
from .._io._disk import alias_gqcs_ex
from .._io._files import FileObject
from .._io._port import CompletionPacket, CompletionPort
from .._kernel._handles import HANDLE_TABLE
from ..codes import NtStatus, WaitCode, WinError, ntstatus_to_winerror
from ..errors import Win32Error
from ._base import Ref, fail, seconds, set_last_error
from ._base import handle_entry as _handle_entry

__all__ = [
    "FILE_IO_COMPLETION_INFORMATION",
    "FILE_SKIP_COMPLETION_PORT_ON_SUCCESS",
    "FILE_SKIP_SET_EVENT_ON_HANDLE",
    "IO_STATUS_BLOCK",
    "OVERLAPPED_ENTRY",
    "CreateIoCompletionPort",
    "GetQueuedCompletionStatus",
    "GetQueuedCompletionStatusEx",
    "NtQueryIoCompletion",
    "NtRemoveIoCompletion",
    "NtRemoveIoCompletionEx",
    "NtSetIoCompletion",
    "PostQueuedCompletionStatus",
    "SetFileCompletionNotificationModes",
]

FILE_SKIP_COMPLETION_PORT_ON_SUCCESS = 0x1
FILE_SKIP_SET_EVENT_ON_HANDLE = 0x2
_INVALID_HANDLE_VALUE = -1
_IO_COMPLETION = int(WaitCode.WAIT_IO_COMPLETION)
_WAIT_TIMEOUT = int(WaitCode.WAIT_TIMEOUT)
_INFINITE = 0xFFFFFFFF
_CompletionPort = CompletionPort  # the parameter of the GQCS aliases shadows the class name


class OVERLAPPED_ENTRY:  # noqa: N801 - the Win32 structure name
    """[MS:OVERLAPPED_ENTRY]: one packet returned by GetQueuedCompletionStatusEx."""

    __slots__ = ("Internal", "dwNumberOfBytesTransferred", "lpCompletionKey", "lpOverlapped")

    def __init__(self) -> None:
        self.lpCompletionKey: Any = 0
        self.lpOverlapped: Any = None
        self.Internal = 0
        self.dwNumberOfBytesTransferred = 0


class IO_STATUS_BLOCK:  # noqa: N801
    """[MS:IO_STATUS_BLOCK]: Status (NTSTATUS) and Information."""

    __slots__ = ("Information", "Status")

    def __init__(self) -> None:
        self.Status = 0
        self.Information = 0


class FILE_IO_COMPLETION_INFORMATION:  # noqa: N801
    """One entry of NtRemoveIoCompletionEx: KeyContext, ApcContext, IoStatusBlock."""

    __slots__ = ("ApcContext", "IoStatusBlock", "KeyContext")

    def __init__(self) -> None:
        self.KeyContext: Any = 0
        self.ApcContext: Any = None
        self.IoStatusBlock = IO_STATUS_BLOCK()


def _port(handle: int) -> CompletionPort:
    return HANDLE_TABLE.get(handle, CompletionPort, pseudo=False)


def CreateIoCompletionPort(
    FileHandle: int,
    ExistingCompletionPort: int | None,
    CompletionKey: Any,
    NumberOfConcurrentThreads: int,
) -> int:
    """[MS:CreateIoCompletionPort] -> core ``CompletionPort`` / ``FileObject.associate``."""
    try:
        if FileHandle == _INVALID_HANDLE_VALUE:
            if ExistingCompletionPort:
                raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "existing port without file")
            return HANDLE_TABLE.insert(CompletionPort(NumberOfConcurrentThreads))
        file = HANDLE_TABLE.get(FileHandle, FileObject, pseudo=False)
        if ExistingCompletionPort:
            file.associate(_port(ExistingCompletionPort), CompletionKey)
            return int(ExistingCompletionPort)
        port = CompletionPort(NumberOfConcurrentThreads)
        file.associate(port, CompletionKey)
        return HANDLE_TABLE.insert(port)
    except Win32Error as exc:
        fail(exc)
        return 0


def SetFileCompletionNotificationModes(FileHandle: int, Flags: int) -> bool:
    """[MS:SetFileCompletionNotificationModes] -> core ``FileObject.set_completion_modes``."""
    try:
        file = HANDLE_TABLE.get(FileHandle, FileObject, pseudo=False)
        file.set_completion_modes(
            bool(Flags & FILE_SKIP_COMPLETION_PORT_ON_SUCCESS),
            bool(Flags & FILE_SKIP_SET_EVENT_ON_HANDLE),
        )
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def PostQueuedCompletionStatus(
    CompletionPort: int, dwNumberOfBytesTransferred: int, dwCompletionKey: Any, lpOverlapped: Any
) -> bool:
    """[MS:PostQueuedCompletionStatus] -> core ``CompletionPort.post``."""
    try:
        _port(CompletionPort).post(dwNumberOfBytesTransferred, dwCompletionKey, lpOverlapped)
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def GetQueuedCompletionStatus(
    CompletionPort: int,
    lpNumberOfBytesTransferred: Ref[int],
    lpCompletionKey: Ref[Any],
    lpOverlapped: Ref[Any],
    dwMilliseconds: int,
) -> bool:
    """[MS:GetQueuedCompletionStatus] -> core ``CompletionPort.get_many(1)``."""
    # The hot loop of every port server: one dict lookup finds a plain port handle (a multiple
    # of 4); anything else (tag bits, bad handles, other types) takes ``_port``, which decides.
    try:
        port = _handle_entry(CompletionPort)[0]
    except TypeError:  # no such handle (None[0]) or not a handle at all (unhashable)
        port = None
    try:
        if port.__class__ is not _CompletionPort:
            port = _port(CompletionPort)
        timeout = None if dwMilliseconds == _INFINITE else seconds(dwMilliseconds)
        _, packets = port.get_many(1, timeout)
    except Win32Error as exc:
        lpOverlapped.value = None
        fail(exc)
        return False
    if not packets:
        lpOverlapped.value = None
        set_last_error(_WAIT_TIMEOUT)
        return False
    key, overlapped, status, transferred = packets[0]
    try:
        lpNumberOfBytesTransferred.value = transferred
        lpCompletionKey.value = key
        lpOverlapped.value = overlapped
    except AttributeError:  # not Ref out-parameters: the packet is not taken (as GQCSEx)
        port.requeue(packets)
        fail(Win32Error(WinError.ERROR_NOACCESS, "out-parameters must be Ref objects"))
        return False
    if status >= 0x80000000:  # !NT_SUCCESS: informational statuses return TRUE
        set_last_error(ntstatus_to_winerror(status))
        return False
    return True


def _GetQueuedCompletionStatusEx(
    CompletionPort: int,
    lpCompletionPortEntries: list[OVERLAPPED_ENTRY],
    ulCount: int,
    ulNumEntriesRemoved: Ref[int],
    dwMilliseconds: int,
    fAlertable: bool,
) -> bool:
    """[MS:GetQueuedCompletionStatusEx] -> core ``CompletionPort.get_many``. (The Python
    function: the reference, and what runs whenever the C accelerator's does not take the hot
    shape itself.)"""
    try:  # the lookup of GetQueuedCompletionStatus
        port = _handle_entry(CompletionPort)[0]
    except TypeError:
        port = None
    try:
        try:
            size = len(lpCompletionPortEntries)
        except TypeError:
            raise Win32Error(WinError.ERROR_NOACCESS, "no lpCompletionPortEntries") from None
        if ulCount > size:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "ulCount > len(entries)")
        if port.__class__ is not _CompletionPort:
            port = _port(CompletionPort)
        timeout = None if dwMilliseconds == _INFINITE else seconds(dwMilliseconds)
        if fAlertable:
            code, packets = port.get_many(ulCount, timeout, alertable=True)
        else:  # positional only: a keyword call takes CPython 3.11's slower generic path
            code, packets = port.get_many(ulCount, timeout)
    except Win32Error as exc:
        return _gqcs_failed(exc, ulNumEntriesRemoved)
    return _gqcs_after(port, code, packets, lpCompletionPortEntries, ulNumEntriesRemoved)


def _gqcs_failed(exc: Win32Error, ulNumEntriesRemoved: Ref[int]) -> bool:
    """GetQueuedCompletionStatusEx failed (the call or ``get_many``): FALSE + the error."""
    ulNumEntriesRemoved.value = 0
    fail(exc)
    return False


def _gqcs_after(
    port: CompletionPort,
    code: int,
    packets: list[CompletionPacket],
    lpCompletionPortEntries: list[OVERLAPPED_ENTRY],
    ulNumEntriesRemoved: Ref[int],
) -> bool:
    """GetQueuedCompletionStatusEx once ``get_many`` returned: the entries written (shared with
    the C accelerator, which writes them itself in the common case)."""
    if not packets:
        ulNumEntriesRemoved.value = 0
        set_last_error(code if code == _IO_COMPLETION else _WAIT_TIMEOUT)
        return False
    i = 0  # an index loop: a third of the cost of zip() for the usual one to a few packets
    try:
        for packet in packets:
            out = lpCompletionPortEntries[i]
            i += 1
            out.lpCompletionKey, out.lpOverlapped, out.Internal, out.dwNumberOfBytesTransferred = (
                packet
            )
        ulNumEntriesRemoved.value = i
    except (AttributeError, TypeError):
        # Not OVERLAPPED_ENTRY objects (or no Ref for the count): the packets are not taken
        # (back at the queue's head, in order), as Windows fails to write an output buffer
        # it cannot access.
        port.requeue(packets)
        if isinstance(ulNumEntriesRemoved, Ref):
            ulNumEntriesRemoved.value = 0
        fail(Win32Error(WinError.ERROR_NOACCESS, "entries or count not writable"))
        return False
    return True


#: [MS:GetQueuedCompletionStatusEx]: the C accelerator's (``winaio._io._fastio``) when it was
#: built - the hot shape of ``_GetQueuedCompletionStatusEx`` (a list of entries, INFINITE, not
#: alertable) in one call, everything else by it - else ``_GetQueuedCompletionStatusEx``.
GetQueuedCompletionStatusEx = alias_gqcs_ex(
    _GetQueuedCompletionStatusEx,
    OVERLAPPED_ENTRY,
    Ref,
    _handle_entry,
    _gqcs_after,
    _gqcs_failed,
    Win32Error,
)


# ---------------------------------------------------------------------- NT level (#97)


def _nt_timeout(timeout: int | None) -> float | None:
    """An NT LARGE_INTEGER timeout (100 ns; negative = relative, positive = absolute)."""
    if timeout is None:
        return None
    if timeout <= 0:
        return -timeout / 1e7
    return max(0.0, (timeout - filetime_now()) / 1e7)


def NtSetIoCompletion(
    IoCompletionHandle: int,
    KeyContext: Any,
    ApcContext: Any,
    IoStatus: int,
    IoStatusInformation: int,
) -> int:
    """[NtSetIoCompletion] -> core ``CompletionPort.post`` with an arbitrary status."""
    try:
        _port(IoCompletionHandle).post(IoStatusInformation, KeyContext, ApcContext, IoStatus)
    except Win32Error:
        return int(NtStatus.STATUS_INVALID_HANDLE)
    return 0


def NtRemoveIoCompletion(
    IoCompletionHandle: int,
    KeyContext: Ref[Any],
    ApcContext: Ref[Any],
    IoStatusBlock: IO_STATUS_BLOCK,
    Timeout: int | None,
) -> int:
    """[NtRemoveIoCompletion] -> core ``CompletionPort.get_many(1)``; STATUS_TIMEOUT if none."""
    try:
        _, packets = _port(IoCompletionHandle).get_many(1, _nt_timeout(Timeout))
    except Win32Error as exc:
        return _nt_error(exc)
    if not packets:
        return int(NtStatus.STATUS_TIMEOUT)
    packet: CompletionPacket = packets[0]
    try:
        KeyContext.value = packet.key
        ApcContext.value = packet.overlapped
        IoStatusBlock.Status = packet.status
        IoStatusBlock.Information = packet.bytes_transferred
    except AttributeError:  # outputs it cannot write: the packet stays queued
        _port(IoCompletionHandle).requeue(packets)
        return int(NtStatus.STATUS_ACCESS_VIOLATION)
    return 0


def NtRemoveIoCompletionEx(
    IoCompletionHandle: int,
    Information: list[FILE_IO_COMPLETION_INFORMATION],
    Count: int,
    NumEntriesRemoved: Ref[int],
    Timeout: int | None,
    Alertable: bool,
) -> int:
    """[NtRemoveIoCompletionEx] -> core ``CompletionPort.get_many``."""
    NumEntriesRemoved.value = 0
    try:
        port = _port(IoCompletionHandle)
        code, packets = port.get_many(min(Count, len(Information)), _nt_timeout(Timeout),
                                      alertable=bool(Alertable))  # fmt: skip
    except Win32Error as exc:
        return _nt_error(exc)
    if not packets:
        return int(NtStatus.STATUS_USER_APC if code == _IO_COMPLETION else NtStatus.STATUS_TIMEOUT)
    try:
        for entry, packet in zip(Information, packets, strict=False):
            entry.KeyContext = packet.key
            entry.ApcContext = packet.overlapped
            entry.IoStatusBlock.Status = packet.status
            entry.IoStatusBlock.Information = packet.bytes_transferred
        NumEntriesRemoved.value = len(packets)
    except AttributeError:  # outputs it cannot write: the packets stay queued, in order
        port.requeue(packets)
        return int(NtStatus.STATUS_ACCESS_VIOLATION)
    return 0


def NtQueryIoCompletion(IoCompletionHandle: int, Depth: Ref[int]) -> int:
    """[NtQueryIoCompletion] -> core ``CompletionPort.queued`` (number of queued packets)."""
    try:
        Depth.value = _port(IoCompletionHandle).queued
    except Win32Error as exc:
        return _nt_error(exc)
    return 0


def _nt_error(exc: Win32Error) -> int:
    if exc.winerror == WinError.ERROR_ABANDONED_WAIT_0:
        return int(NtStatus.STATUS_ABANDONED_WAIT_0)
    if exc.winerror == WinError.ERROR_INVALID_HANDLE:
        return int(NtStatus.STATUS_INVALID_HANDLE)
    return int(NtStatus.STATUS_INVALID_PARAMETER)
