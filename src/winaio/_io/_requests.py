"""ReadFile/WriteFile-level requests: the same call on overlapped and synchronous handles.

Rules (win32-async-spec §4.1, §4.4, §5):
- Overlapped handle: an OVERLAPPED is required (else ERROR_INVALID_PARAMETER); the request is
  issued (``_files.start``) and its status at return time is reported: STATUS_PENDING, success,
  or a warning (completed with data, e.g. ERROR_MORE_DATA).
- Synchronous handle: the call blocks (non-alertably) until done; an OVERLAPPED only supplies the
  offset and receives Internal/InternalHigh. Reading at end of file with a NULL OVERLAPPED
  succeeds with 0 bytes; with an OVERLAPPED it fails with ERROR_HANDLE_EOF and Internal =
  STATUS_END_OF_FILE. Disk reads/writes without an OVERLAPPED use and move the file pointer.
- Completion routines (ReadFileEx/WriteFileEx, WSARecv/WSASend with a routine) need an
  overlapped handle; the OVERLAPPED's event is ignored ("free for the caller").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from .._kernel._objects import Event
from ..codes import NtStatus, WinError, ntstatus_to_winerror
from ..errors import IoError, Win32Error
from ._backend import OpKind
from ._files import FileObject, request_cancel
from ._interrupts import interrupt
from ._issue import start
from ._ops import CompletionRoutine, Operation
from ._overlapped import Overlapped, get_overlapped_result, is_error, is_warning
from ._sync import run_sync

__all__ = ["as_buffers", "issue", "read_file", "read_file_after", "write_file"]

_EOF = int(NtStatus.STATUS_END_OF_FILE)
_CANCELLED = int(NtStatus.STATUS_CANCELLED)
_PENDING = int(NtStatus.STATUS_PENDING)


class _OpFactory(Protocol):
    def __call__(
        self,
        buffers: Sequence[memoryview],
        overlapped: Overlapped,
        routine: CompletionRoutine | None = None,
    ) -> Operation: ...


def as_buffers(buffers: Any, size: int | None, writable: bool) -> list[memoryview]:
    """Normalise one buffer or a list of buffers to byte memoryviews, cut to ``size`` bytes.

    Raises:
        Win32Error: ERROR_INVALID_USER_BUFFER for a buffer that is not writable when it must
            be, ERROR_INVALID_PARAMETER for a size larger than the buffers.
    """
    cls = type(buffers)
    # The hot cases: one plain byte buffer, taken whole.
    if cls is bytearray:
        if size is None or size == len(buffers):
            return [memoryview(buffers)]
    elif cls is memoryview:
        try:
            whole = (
                (size is None or size == len(buffers))
                and buffers.ndim == 1
                and buffers.format == "B"
                and not (writable and buffers.readonly)
                and buffers.c_contiguous
            )
        except ValueError:  # released (memoryview.release()): no memory behind it any more
            raise Win32Error(WinError.ERROR_INVALID_USER_BUFFER, "released buffer") from None
        if whole:
            return [buffers]
    if not isinstance(buffers, list | tuple):
        if buffers is None:
            return _null_buffer(size, writable)
        # One buffer: no loops.
        view = _byte_view(buffers)
        if writable and view.readonly:
            raise Win32Error(WinError.ERROR_INVALID_USER_BUFFER, "read-only buffer for a read")
        if size is None or size == len(view):
            return [view]
        if size < 0 or size > len(view):
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"{size} bytes > {len(view)}")
        return [view[:size]]
    items = buffers
    views = []
    for item in items:
        view = _byte_view(item)
        if writable and view.readonly:
            raise Win32Error(WinError.ERROR_INVALID_USER_BUFFER, "read-only buffer for a read")
        views.append(view)
    if size is None:
        return views
    total = sum(len(v) for v in views)
    if size < 0 or size > total:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"{size} bytes > buffer of {total}")
    out: list[memoryview] = []
    for view in views:
        if size <= 0:
            break
        out.append(view[:size])
        size -= len(out[-1])
    return out


def _null_buffer(size: int | None, writable: bool) -> list[memoryview]:
    """A NULL buffer: fine for 0 bytes; otherwise the kernel faults on it, which reads report
    as ERROR_NOACCESS and writes as ERROR_INVALID_USER_BUFFER [W:k32/file.c:test_read_write]."""
    if not size:
        return [memoryview(bytearray())]
    if writable:
        raise Win32Error(WinError.ERROR_NOACCESS, "NULL buffer")
    raise Win32Error(WinError.ERROR_INVALID_USER_BUFFER, "NULL buffer")


def _byte_view(buffer: Any) -> memoryview:
    """A 1-D byte view of one buffer (ERROR_INVALID_USER_BUFFER: not contiguous, released,
    or not a buffer at all)."""
    try:
        view = memoryview(buffer)
        if not view.c_contiguous:
            raise Win32Error(WinError.ERROR_INVALID_USER_BUFFER, "buffer is not contiguous")
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
    except (TypeError, ValueError) as exc:
        raise Win32Error(WinError.ERROR_INVALID_USER_BUFFER, str(exc)) from None
    return view


def issue(
    file: FileObject,
    factory: _OpFactory,
    buffers: Sequence[memoryview],
    overlapped: Overlapped | None,
    routine: CompletionRoutine | None,
) -> tuple[int, int]:
    """Issue one read or write. Returns (status at return, bytes known now).

    Raises:
        IoError: immediate failure (overlapped handles) or any failure (synchronous handles).
        Win32Error: ERROR_INVALID_PARAMETER for a missing OVERLAPPED on an overlapped handle, a
            completion routine on a synchronous one or one that is not callable.
    """
    if file.overlapped:
        if overlapped is None:
            if not file.waits_without_overlapped:
                raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "no OVERLAPPED (overlapped)")
            return _wait_without_overlapped(factory, buffers)
        if routine is not None:
            if not callable(routine):  # (else its APC would fail in a later alertable wait)
                raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "the routine is not callable")
            overlapped.event = None  # ReadFileEx ignores hEvent (spec §5)
            overlapped.skip_port = False
        op = factory(buffers, overlapped, routine)
        status = start(op)
        return status, (overlapped.information if status != NtStatus.STATUS_PENDING else 0)
    if routine is not None:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "completion routine on a sync handle")
    positioned = file.seekable and overlapped is None
    # A private IOSB: the user's OVERLAPPED only gives the offset and receives the result,
    # and stays untouched when CancelSynchronousIo aborts the call (#106).
    own = Overlapped(file.position if overlapped is None else overlapped.offset)
    op = factory(buffers, own)
    status, information = run_sync(op)
    if overlapped is not None and status != _CANCELLED:
        if is_error(status) and not op.submitted and op.kind is not OpKind.FILE:
            # Failed at once (a pipe in the wrong state...): Internal = STATUS_PENDING was the
            # only write, InternalHigh stays untouched [W:k32/pipe.c:test_ReadFile].
            overlapped.status = _PENDING
        else:
            overlapped.status, overlapped.information = status, information
    if positioned:
        file.position += information
    elif file.seekable:
        file.position = own.offset + information
    if status == _EOF and overlapped is None:
        return 0, 0  # synchronous read at end of file: TRUE, 0 bytes (spec §4.4)
    if is_error(status) or is_warning(status):
        raise IoError(ntstatus_to_winerror(status), information)
    return status, information


def _wait_without_overlapped(factory: _OpFactory, buffers: Sequence[memoryview]) -> tuple[int, int]:
    # A named pipe needs no offset: NtReadFile/NtWriteFile pend and kernel32 waits on the
    # handle, so a NULL OVERLAPPED on an overlapped instance blocks like a synchronous call
    # [W:k32/pipe.c:test_overlapped]. No ApcContext is passed: no completion packet.
    status, information = run_sync(factory(buffers, Overlapped(skip_port=True)))
    if is_error(status) or is_warning(status):
        raise IoError(ntstatus_to_winerror(status), information)
    return status, information


def read_file(
    file: Any,
    buffers: Sequence[memoryview],
    overlapped: Overlapped | None = None,
    routine: CompletionRoutine | None = None,
) -> tuple[int, int]:
    """ReadFile / ReadFileScatter / ReadFileEx on any file object (see :func:`issue`)."""
    status = None
    if overlapped is not None and file.overlapped:
        read_now = getattr(file, "read_now", None)
        if read_now is not None:
            status = read_now(buffers, overlapped, routine)
            if status == 0:
                return 0, overlapped.information
    return read_file_after(file, buffers, overlapped, routine, status)


def read_file_after(
    file: Any,
    buffers: Sequence[memoryview],
    overlapped: Overlapped | None,
    routine: CompletionRoutine | None,
    fast: int | None,
) -> tuple[int, int]:
    """The rest of :func:`read_file` once ``read_now`` said ``fast`` (None: not applicable,
    else tried and would block: the request object then pends at once)."""
    try:
        factory = file.read_op
    except AttributeError:
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{file!r} cannot be read") from None
    tried = fast is not None
    return issue(file, _tried(factory) if tried else factory, buffers, overlapped, routine)


def _tried(factory: Any) -> _OpFactory:
    def tried_factory(
        buffers: Sequence[memoryview],
        overlapped: Overlapped,
        routine: CompletionRoutine | None = None,
    ) -> Operation:
        op: Operation = factory(buffers, overlapped, routine, tried=True)
        return op

    return tried_factory


def write_file(
    file: Any,
    buffers: Sequence[memoryview],
    overlapped: Overlapped | None = None,
    routine: CompletionRoutine | None = None,
) -> tuple[int, int]:
    """WriteFile / WriteFileGather / WriteFileEx on any file object (see :func:`issue`)."""
    try:
        factory = file.write_op
    except AttributeError:
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{file!r} cannot be written") from None
    return issue(file, factory, buffers, overlapped, routine)


class RequestMethods:
    """Pythonic request methods shared by every readable/writable file object.

    ``start_read``/``start_write`` issue an overlapped request and say whether it finished
    inside the call (True) or is pending (False); the OVERLAPPED (its event, the file object,
    the completion port, or the completion routine) reports the end. ``read``/``write`` issue a
    request and wait for it (non-alertably), on any handle.
    """

    __slots__ = ()

    def start_read(
        self,
        buffer: Any,
        overlapped: Overlapped,
        *,
        size: int | None = None,
        routine: CompletionRoutine | None = None,
    ) -> bool:
        """ReadFile(Ex) into ``buffer`` (one writable buffer or a list: ReadFileScatter).

        Raises:
            IoError: the request failed at once (no notification happens).
        """
        status, _ = read_file(self, as_buffers(buffer, size, True), overlapped, routine)
        return status != _PENDING

    def start_write(
        self,
        data: Any,
        overlapped: Overlapped,
        *,
        size: int | None = None,
        routine: CompletionRoutine | None = None,
    ) -> bool:
        """WriteFile(Ex) of ``data`` (one buffer or a list: WriteFileGather)."""
        status, _ = write_file(self, as_buffers(data, size, False), overlapped, routine)
        return status != _PENDING

    def read(self, buffer: Any, offset: int = 0, timeout: float | None = None) -> int:
        """Read into ``buffer`` and wait for the result; returns the byte count.

        Raises:
            IoError: the request failed (ERROR_HANDLE_EOF, ERROR_BROKEN_PIPE...).
        """
        return self._wait(read_file, as_buffers(buffer, None, True), offset, timeout)

    def write(self, data: Any, offset: int = 0, timeout: float | None = None) -> int:
        """Write ``data`` and wait for the result; returns the byte count."""
        return self._wait(write_file, as_buffers(data, None, False), offset, timeout)

    def _wait(
        self, call: Any, buffers: list[memoryview], offset: int, timeout: float | None
    ) -> int:
        file: FileObject = self  # type: ignore[assignment]
        if not file.overlapped:
            return int(call(file, buffers, None if not file.seekable else Overlapped(offset))[1])
        ov = Overlapped(offset, Event(manual_reset=True))
        call(file, buffers, ov)
        try:
            return get_overlapped_result(ov, None, timeout, False)[0]
        except Win32Error as exc:
            if exc.winerror in (WinError.ERROR_IO_INCOMPLETE, 258):
                # Timed out: cancel, and keep the buffers until the request is really over.
                for op in file.pending_ops():
                    if op.overlapped is ov:
                        request_cancel(op)
                get_overlapped_result(ov, None, None, False)
            raise
        except BaseException as exc:
            # Interrupted (Ctrl-C): the same, so that the request does not outlive its call
            # (what came later would go to a buffer nobody reads any more: review8).
            if interrupt(exc):
                for op in file.pending_ops():
                    if op.overlapped is ov:
                        request_cancel(op)
                try:
                    get_overlapped_result(ov, None, None, False)
                except Exception:
                    pass  # (cancelled, or its own result: the interrupt is what goes on)
            raise
