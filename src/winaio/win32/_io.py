"""Win32 aliases: ReadFile/WriteFile(Ex), scatter/gather, and cancelling requests (CancelIo,
CancelIoEx, CancelSynchronousIo).

Each function adapts one core call (``winaio._io``) to Win32 conventions (see ``_base``). The
OVERLAPPED structure and GetOverlappedResult(Ex) are ``_overlapped``; CreateFile and the calls on
a file's handle (pointer, size, flush, locks) ``_files``.

Invariant (the BOOL + last-error protocol of ``_io``): a request that pends sets ERROR_IO_PENDING
and returns FALSE (ReadFileEx/WriteFileEx: TRUE, accepted); ``*lpCount`` is zeroed before any
work and written only when the request finished inside the call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._io._cancel import cancel_io, cancel_io_ex, cancel_synchronous_io
from .._io._disk import DiskFile, alias_read_file
from .._io._fileinfo import clip_past_eof
from .._io._files import FileObject
from .._io._overlapped import STATUS_PENDING, Overlapped
from .._io._requests import as_buffers, read_file, read_file_after, write_file
from .._io._sockets import Socket
from .._kernel._handles import HANDLE_TABLE
from .._kernel._threads import KThread
from ..codes import WinError, ntstatus_to_winerror
from ..errors import IoError, Win32Error
from ._base import Ref, fail, set_last_error
from ._base import handle_entry as _handle_entry
from ._overlapped import OVERLAPPED, bind_overlapped, issue_offset

__all__ = [
    "CancelIo",
    "CancelIoEx",
    "CancelSynchronousIo",
    "ReadFile",
    "ReadFileEx",
    "ReadFileScatter",
    "WriteFile",
    "WriteFileEx",
    "WriteFileGather",
]

_ERROR_IO_PENDING = int(WinError.ERROR_IO_PENDING)

CompletionRoutine = Callable[[int, int, Any], object]


def _file(handle: int) -> FileObject:
    return HANDLE_TABLE.get(handle, FileObject, pseudo=False)


def _io(
    call: Callable[..., tuple[int, int]],
    hFile: int,
    buffers: Any,
    size: int | None,
    writable: bool,
    lpCount: Ref[int] | None,
    lpOverlapped: Any,
    routine: CompletionRoutine | None = None,
) -> bool:
    """Shared body of ReadFile/WriteFile(Ex)/Scatter/Gather: the BOOL + last-error protocol."""
    if lpCount is not None:
        lpCount.value = 0  # "sets this value to zero before doing any work" [MS:ReadFile]
    try:
        # The commonest shape is inlined (a plain file handle, an OVERLAPPED without hEvent):
        # one dict lookup, no keyword calls; anything else takes ``_file``/``bind_overlapped``.
        try:
            file = _handle_entry(hFile)[0]
        except TypeError:  # no such handle (None[0]) or not a handle at all (unhashable)
            file = None
        if not isinstance(file, FileObject):
            file = _file(hFile)
        views = as_buffers(buffers, size, writable)
        ov = lpOverlapped
        if (ov.__class__ is OVERLAPPED and not ov.hEvent) or (
            routine is not None and isinstance(ov, Overlapped)
        ):
            # ReadFileEx/WriteFileEx: hEvent is "free for the application's use" and is never
            # resolved, whatever it holds (Wine keeps a semaphore there) [MS:ReadFileEx]
            # [W:k32/file.c:test_async_file_errors].
            if isinstance(ov, OVERLAPPED):
                issue_offset(ov)
            ov.event = None
            ov.skip_port = False
        else:
            ov = bind_overlapped(ov)
        status, count = call(file, views, ov, routine)
    except Win32Error as exc:
        # Synchronous handle: *lpCount = bytes moved (ERROR_MORE_DATA: the partial count),
        # but 0 whenever an OVERLAPPED was passed: its InternalHigh has the count
        # [W:k32/pipe.c:test_ReadFile].
        if (
            lpCount is not None
            and isinstance(exc, IoError)
            and lpOverlapped is None
            and not file_is_overlapped(hFile)
        ):
            lpCount.value = exc.bytes_transferred
        fail(exc)
        return False
    if status == STATUS_PENDING:
        set_last_error(_ERROR_IO_PENDING)
        return routine is not None  # ReadFileEx/WriteFileEx: TRUE = accepted
    if status:  # a warning: completed with data but reported as a failure (ERROR_MORE_DATA)
        set_last_error(ntstatus_to_winerror(status))
        return routine is not None
    if lpCount is not None:
        lpCount.value = count
    return True


def file_is_overlapped(handle: int) -> bool:
    """Whether ``handle`` names an overlapped file object (False for bad handles)."""
    try:
        return _file(handle).overlapped
    except Win32Error:
        return False


def _ReadFile(
    hFile: int,
    lpBuffer: Any,
    nNumberOfBytesToRead: int,
    lpNumberOfBytesRead: Ref[int] | None,
    lpOverlapped: Any,
) -> bool:
    """[MS:ReadFile] -> core ``read_file``. (The Python function: the reference, and what runs
    whenever the C accelerator's ``ReadFile`` does not take the hot shape itself.)"""
    cls = lpBuffer.__class__
    try:
        whole = (cls is bytearray and len(lpBuffer) == nNumberOfBytesToRead) or (
            cls is memoryview and lpBuffer.nbytes == nNumberOfBytesToRead
        )
    except ValueError:  # a released memoryview: ``_io`` reports ERROR_INVALID_USER_BUFFER
        whole = False
    if whole:
        # The hot case (one whole buffer): try the page-cache fast path before normalising
        # anything (``DiskFile.read_now``, whose syscall checks that the buffer is writable
        # and contiguous); every other outcome takes the general path. The handle lookup and
        # the hEvent binding are inlined for the commonest shape (a valid handle, an
        # OVERLAPPED without hEvent): each call saved is ~5 % here.
        try:
            file = _handle_entry(hFile)[0]
        except TypeError:  # no such plain handle (tag bits, closed...) or not a handle at all
            file = None
        if (
            file.__class__ is DiskFile
            and file.cached_reads
            and isinstance(lpOverlapped, OVERLAPPED)
            and not lpOverlapped.hEvent
        ):
            # ``issue_offset`` without its frame and masks for an offset under 1 GiB (compared
            # with a one-digit int constant: CPython 3.11 specialises that). A negative or
            # non-integer Offset is refused by ``read_now`` or its syscall, as a bad buffer is,
            # and the general path then reports it or reads at its DWORD value.
            low = lpOverlapped.Offset
            try:
                if lpOverlapped.OffsetHigh or not low <= 0x3FFFFFFF:
                    issue_offset(lpOverlapped)
                else:
                    lpOverlapped.offset = low
            except (TypeError, Win32Error):
                return _io(read_file, hFile, lpBuffer, nNumberOfBytesToRead, True,
                           lpNumberOfBytesRead, lpOverlapped)  # fmt: skip
            lpOverlapped.event = None
            lpOverlapped.skip_port = False
            fast = file.read_now((lpBuffer,), lpOverlapped, None)
            if fast == 0:
                if lpNumberOfBytesRead is not None:
                    lpNumberOfBytesRead.value = lpOverlapped.information
                return True
            return _read_file_after(
                hFile, lpBuffer, nNumberOfBytesToRead, lpNumberOfBytesRead, lpOverlapped, fast
            )
        if (
            file.__class__ is DiskFile
            and file.direct
            and file.overlapped
            and isinstance(lpOverlapped, OVERLAPPED)  # subclasses too, as bind_overlapped
            and not lpOverlapped.hEvent
        ):
            # FILE_FLAG_NO_BUFFERING: the core's O_DIRECT hot path (``DiskFile.start_read``:
            # pinned once, one request, submitted at once), which always pends; the general
            # path rebuilt the buffer list and the request through three layers (QD1: the
            # read reaches the device that much later).
            return _disk_io(file, lpBuffer, lpOverlapped, lpNumberOfBytesRead)
        if (
            file.__class__ is Socket
            and file.overlapped
            and lpOverlapped.__class__ is OVERLAPPED
            and not lpOverlapped.hEvent
            and (cls is bytearray or (not lpBuffer.readonly and lpBuffer.c_contiguous))
        ):
            return _socket_io(file.start_read, lpBuffer, lpOverlapped, lpNumberOfBytesRead)
    return _io(
        read_file, hFile, lpBuffer, nNumberOfBytesToRead, True, lpNumberOfBytesRead, lpOverlapped
    )


def _read_file_after(
    hFile: int,
    lpBuffer: Any,
    nNumberOfBytesToRead: int,
    lpNumberOfBytesRead: Ref[int] | None,
    lpOverlapped: Any,
    fast: int | None,
) -> bool:
    """ReadFile's hot shape once ``read_now`` did not finish the read (``fast``: None or
    WOULD_BLOCK): the general path. Shared with the C accelerator's ReadFile."""
    call = _after(fast)
    return _io(call, hFile, lpBuffer, nNumberOfBytesToRead, True, lpNumberOfBytesRead, lpOverlapped)


#: [MS:ReadFile]: the C accelerator's (``winaio._io._fastio``) when it was built - the hot shape
#: of ``_ReadFile`` (a cached read into one whole buffer, an OVERLAPPED without hEvent) in one
#: call, everything else by ``_ReadFile`` - else ``_ReadFile`` (docs/design.md "Cached reads").
ReadFile = alias_read_file(_ReadFile, OVERLAPPED, _handle_entry, _read_file_after)


def _disk_io(file: DiskFile, buffer: Any, ov: OVERLAPPED, lpCount: Ref[int] | None) -> bool:
    """ReadFile's hot shape on an overlapped FILE_FLAG_NO_BUFFERING file (one whole buffer,
    an OVERLAPPED without hEvent): ``DiskFile.start_read``, with ``_io``'s BOOL + last-error
    protocol (pending: FALSE + ERROR_IO_PENDING; done at once: TRUE, or FALSE and the warning;
    refused: FALSE and the error, ``*lpCount`` 0)."""
    if lpCount is not None:
        lpCount.value = 0
    ov.event = None
    ov.skip_port = False
    try:
        issue_offset(ov)
        done = file.start_read(buffer, ov)
    except Win32Error as exc:
        fail(exc)
        return False
    if not done:
        set_last_error(_ERROR_IO_PENDING)
        return False
    status = ov.status
    if status:
        set_last_error(ntstatus_to_winerror(status))
        return False
    if lpCount is not None:
        lpCount.value = ov.information
    return True


def _socket_io(
    start_io: Callable[[Any, Overlapped], bool],
    buffer: Any,
    ov: OVERLAPPED,
    lpCount: Ref[int] | None,
) -> bool:
    """ReadFile/WriteFile's hot shape on an overlapped socket (one whole buffer, an OVERLAPPED
    without hEvent): the core's ``Socket.start_read``/``start_write`` (their immediate fast
    path, or their general path: the same request ``_io`` would issue)."""
    ov.event = None
    ov.skip_port = False
    try:
        done = start_io(buffer, ov)
    except Win32Error as exc:
        if lpCount is not None:
            lpCount.value = 0  # an OVERLAPPED was passed: its InternalHigh has the count
        fail(exc)
        return False
    if lpCount is not None:
        lpCount.value = ov.information if done else 0
    if not done:
        set_last_error(_ERROR_IO_PENDING)
    return done


def _after(fast: int | None) -> Callable[..., tuple[int, int]]:
    def call(file: Any, views: Any, ov: Any, routine: CompletionRoutine | None) -> tuple[int, int]:
        return read_file_after(file, views, ov, routine, fast)

    return call


def WriteFile(
    hFile: int,
    lpBuffer: Any,
    nNumberOfBytesToWrite: int,
    lpNumberOfBytesWritten: Ref[int] | None,
    lpOverlapped: Any,
) -> bool:
    """[MS:WriteFile] -> core ``write_file``."""
    cls = lpBuffer.__class__
    if (
        (cls is bytes or cls is bytearray or cls is memoryview)
        and lpOverlapped.__class__ is OVERLAPPED
        and not lpOverlapped.hEvent
    ):
        # The hot shape on a socket (one whole buffer): the core's ``Socket.start_write``.
        try:
            file = _handle_entry(hFile)[0]
        except TypeError:  # no such plain handle (tag bits, closed...) or not a handle at all
            file = None
        try:
            size = lpBuffer.nbytes if cls is memoryview else len(lpBuffer)
        except ValueError:  # a released memoryview: ``_io`` reports ERROR_INVALID_USER_BUFFER
            size = -1
        if file.__class__ is Socket and file.overlapped and size == nNumberOfBytesToWrite:
            return _socket_io(file.start_write, lpBuffer, lpOverlapped, lpNumberOfBytesWritten)
    args = (hFile, lpBuffer, nNumberOfBytesToWrite, False, lpNumberOfBytesWritten, lpOverlapped)
    return _io(write_file, *args)


def ReadFileEx(
    hFile: int,
    lpBuffer: Any,
    nNumberOfBytesToRead: int,
    lpOverlapped: Any,
    lpCompletionRoutine: CompletionRoutine,
) -> bool:
    """[MS:ReadFileEx] -> core ``read_file`` with a completion routine (an APC to this thread)."""
    args = (hFile, lpBuffer, nNumberOfBytesToRead, True, None, lpOverlapped)
    return _io(read_file, *args, lpCompletionRoutine) and _accepted()


def WriteFileEx(
    hFile: int,
    lpBuffer: Any,
    nNumberOfBytesToWrite: int,
    lpOverlapped: Any,
    lpCompletionRoutine: CompletionRoutine,
) -> bool:
    """[MS:WriteFileEx] -> core ``write_file`` with a completion routine."""
    args = (hFile, lpBuffer, nNumberOfBytesToWrite, False, None, lpOverlapped)
    return _io(write_file, *args, lpCompletionRoutine) and _accepted()


def _accepted() -> bool:
    # ReadFileEx/WriteFileEx return TRUE with last-error ERROR_SUCCESS when the request was
    # accepted, whether it is pending or already done [MS:ReadFileEx].
    set_last_error(0)
    return True


def ReadFileScatter(
    hFile: int,
    aSegmentArray: Sequence[Any],
    nNumberOfBytesToRead: int,
    lpReserved: object,
    lpOverlapped: Any,
) -> bool:
    """[MS:ReadFileScatter] -> core ``read_file`` on several buffers (overlapped handles only)."""
    if not file_is_overlapped(hFile) and _check_handle(hFile):
        fail(Win32Error(WinError.ERROR_INVALID_PARAMETER, "scatter needs an overlapped handle"))
        return False
    segments, size = list(aSegmentArray), nNumberOfBytesToRead
    entry = _handle_entry(hFile & ~3) if isinstance(hFile, int) and hFile > 0 else None
    if entry is not None and isinstance(lpOverlapped, Overlapped):
        file = entry[0]
        if isinstance(file, DiskFile) and file.direct:  # later segments stay untouched
            if isinstance(lpOverlapped, OVERLAPPED):
                try:
                    issue_offset(lpOverlapped)
                except Win32Error as exc:
                    fail(exc)
                    return False
            segments, size = clip_past_eof(file.fd, segments, size, lpOverlapped.offset)
    return _io(read_file, hFile, segments, size, True, None, lpOverlapped)


def WriteFileGather(
    hFile: int,
    aSegmentArray: Sequence[Any],
    nNumberOfBytesToWrite: int,
    lpReserved: object,
    lpOverlapped: Any,
) -> bool:
    """[MS:WriteFileGather] -> core ``write_file`` on several buffers (overlapped handles only)."""
    if not file_is_overlapped(hFile) and _check_handle(hFile):
        fail(Win32Error(WinError.ERROR_INVALID_PARAMETER, "gather needs an overlapped handle"))
        return False
    args = (hFile, list(aSegmentArray), nNumberOfBytesToWrite, False, None, lpOverlapped)
    return _io(write_file, *args)


def _check_handle(handle: int) -> bool:
    try:
        _file(handle)
    except Win32Error:
        return False
    return True


def CancelIo(hFile: int) -> bool:
    """[MS:CancelIo] -> core ``cancel_io`` (the calling thread's requests)."""
    try:
        cancel_io(_file(hFile))
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def CancelIoEx(hFile: int, lpOverlapped: Any) -> bool:
    """[MS:CancelIoEx] -> core ``cancel_io_ex`` (any thread's; ERROR_NOT_FOUND if none)."""
    try:
        cancel_io_ex(_file(hFile), lpOverlapped)
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def CancelSynchronousIo(hThread: int) -> bool:
    """[MS:CancelSynchronousIo] -> core ``cancel_synchronous_io``."""
    try:
        cancel_synchronous_io(HANDLE_TABLE.get(hThread, KThread).state)
    except Win32Error as exc:
        fail(exc)
        return False
    return True
