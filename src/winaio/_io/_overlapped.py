"""OVERLAPPED: the caller-owned record of one asynchronous request (win32-async-spec §1.4, §4.3).

Facts encoded here:
- ``status`` is OVERLAPPED.Internal (an NTSTATUS): STATUS_PENDING (0x103) while the request runs;
  ``information`` is InternalHigh (bytes transferred). A new OVERLAPPED holds zeros.
  HasOverlappedIoCompleted(o) is ``o.Internal != STATUS_PENDING`` [MS:HasOverlappedIoCompleted].
- The event is the request's notification channel E; the low-bit trick ``hEvent | 1`` ("signal the
  event but post no completion packet") is ``skip_port`` here [MS:GetQueuedCompletionStatus].
- GetOverlappedResultEx has an exact algorithm (spec §4.3), implemented by
  :func:`get_overlapped_result`: no wait and no handle validation when the status is final;
  ERROR_IO_INCOMPLETE for a zero timeout; otherwise wait on the event (or the file object when
  there is none); a status still pending after a satisfied wait counts as success; the byte count
  is reported even on failure.

The object's identity is the Win32 ``lpOverlapped`` pointer: completion packets and completion
routines hand back this very object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._kernel import _wait
from .._kernel._dispatcher import DispatcherObject
from .._kernel._objects import Event
from ..codes import NtStatus, WaitCode, WinError, ntstatus_to_winerror
from ..errors import IoError, Win32Error

if TYPE_CHECKING:
    from ._files import FileObject

__all__ = ["STATUS_PENDING", "Overlapped", "get_overlapped_result", "is_error", "is_warning"]

STATUS_PENDING = int(NtStatus.STATUS_PENDING)
_WAIT_OBJECT_0 = int(WaitCode.WAIT_OBJECT_0)


def is_error(status: int) -> bool:
    """NTSTATUS severity "error" (0xC...): the request failed."""
    return status >= 0xC0000000


def is_warning(status: int) -> bool:
    """NTSTATUS severity "warning" (0x8...): completed with data, reported as a failure."""
    return 0x80000000 <= status < 0xC0000000


class Overlapped:
    """An OVERLAPPED structure.

    Args:
        offset: the file offset for positioned I/O (Offset | OffsetHigh << 32).
        event: the request's event (E); None to signal the file object instead.
        skip_port: the ``hEvent | 1`` rule: complete without posting to a completion port.
    """

    __slots__ = ("__weakref__", "event", "information", "offset", "skip_port", "status")

    def __init__(
        self, offset: int = 0, event: Event | None = None, *, skip_port: bool = False
    ) -> None:
        self.status = 0
        self.information = 0
        self.offset = offset
        self.event = event
        self.skip_port = skip_port

    @property
    def pending(self) -> bool:
        """True while the request runs (``not HasOverlappedIoCompleted``)."""
        return self.status == STATUS_PENDING

    @property
    def error(self) -> int:
        """The Win32 error of the final status (0 on success)."""
        return ntstatus_to_winerror(self.status)

    def result(
        self,
        file: FileObject | None = None,
        timeout: float | None = 0,
        *,
        alertable: bool = False,
    ) -> int:
        """GetOverlappedResultEx: the byte count of a finished request.

        Args:
            file: the file object to wait on when the OVERLAPPED has no event.
            timeout: seconds to wait for completion (None = forever, 0 = do not wait).
            alertable: run APCs while waiting (then raise WAIT_IO_COMPLETION).

        Raises:
            Win32Error: ERROR_IO_INCOMPLETE (still running, no wait), WAIT_TIMEOUT /
                WAIT_IO_COMPLETION (the wait ended first), or the request's own error
                (ERROR_HANDLE_EOF, ERROR_OPERATION_ABORTED, ERROR_MORE_DATA...).
        """
        return get_overlapped_result(self, file, timeout, alertable)[0]

    def __repr__(self) -> str:
        return (
            f"<Overlapped status=0x{self.status:X} information={self.information} "
            f"offset={self.offset}>"
        )


def get_overlapped_result(
    ov: Overlapped, waitable: DispatcherObject | None, timeout: float | None, alertable: bool
) -> tuple[int, int]:
    """The exact algorithm of spec §4.3. Returns (bytes, status); raises on failure.

    The raised IoError carries ``bytes_transferred`` (InternalHigh), which the alias layer reports
    through lpNumberOfBytesTransferred even on failure.
    """
    status = ov.status
    if status == STATUS_PENDING:
        if timeout is not None and timeout <= 0:
            raise Win32Error(WinError.ERROR_IO_INCOMPLETE)
        target = ov.event if ov.event is not None else waitable
        if target is None:
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, "nothing to wait on")
        code = _wait.wait_for_one(target, timeout, alertable)
        if code != _WAIT_OBJECT_0:
            raise Win32Error(code)
        status = ov.status
        if status == STATUS_PENDING:
            status = 0  # the event was signaled by someone else: report success (spec §4.3)
    information = ov.information
    if status >= 0x80000000:
        # NT_SUCCESS decides, as in kernel32: informational statuses (STATUS_NOTIFY_ENUM_DIR:
        # a ReadDirectoryChangesW overflow) are successes with their byte count.
        raise IoError(ntstatus_to_winerror(status), information)
    return information, status


def overlapped_of(obj: Any) -> Overlapped:
    """Check that ``obj`` is an OVERLAPPED (the alias layer's lpOverlapped)."""
    if not isinstance(obj, Overlapped):
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"{obj!r} is not an OVERLAPPED")
    return obj
