"""Win32 aliases: the OVERLAPPED structure and the results of overlapped requests
(HasOverlappedIoCompleted, GetOverlappedResult(Ex)).

``OVERLAPPED`` is the core's ``Overlapped`` with the Win32 fields; :func:`bind_overlapped` resolves
its hEvent handle and its offset when a request is issued or waited for, as Windows does. Every
alias that takes an lpOverlapped goes through it (``_io``, ``_files``, ``_pipes``, the Winsock
modules).

Invariant: Offset/OffsetHigh are plain fields read once per request (``issue_offset``), each
as a DWORD, into the core's ``offset``; hEvent's low bit set means "no completion packet"
(``skip_port``).
"""

from __future__ import annotations

from typing import Any

from .._io._files import FileObject
from .._io._overlapped import STATUS_PENDING, Overlapped, get_overlapped_result
from .._kernel._handles import HANDLE_TABLE
from .._kernel._objects import Event
from ..codes import Access, WinError
from ..errors import IoError, Win32Error
from ._base import Ref, fail, seconds

__all__ = [
    "OVERLAPPED",
    "GetOverlappedResult",
    "GetOverlappedResultEx",
    "HasOverlappedIoCompleted",
]

_EVENT_MODIFY_STATE = int(Access.EVENT_MODIFY_STATE)
_DWORD = 0xFFFFFFFF


class OVERLAPPED(Overlapped):
    """The OVERLAPPED structure [MS:OVERLAPPED]; its identity is the lpOverlapped pointer.

    Fields: Internal (status), InternalHigh (bytes), Offset, OffsetHigh, hEvent (a handle whose
    low bit set means "no completion packet").

    Offset and OffsetHigh are plain fields, as in C: a function that issues a request reads
    them then, as Windows does, each as a DWORD (modulo 2**32), into the core's ``offset``
    (``issue_offset``). A property setter cost ~1.9K instructions per assignment, the largest
    single cost of a ReadFile loop (docs/design.md "The alias layer").
    """

    __slots__ = ("Offset", "OffsetHigh", "hEvent")

    def __init__(self, Offset: int = 0, OffsetHigh: int = 0, hEvent: int = 0) -> None:
        super().__init__(((OffsetHigh & _DWORD) << 32) | (Offset & _DWORD))
        self.Offset = Offset
        self.OffsetHigh = OffsetHigh
        self.hEvent = hEvent

    @property
    def Internal(self) -> int:
        """OVERLAPPED.Internal: the NTSTATUS (STATUS_PENDING while running)."""
        return self.status

    @Internal.setter
    def Internal(self, value: int) -> None:
        self.status = value

    @property
    def InternalHigh(self) -> int:
        """OVERLAPPED.InternalHigh: bytes transferred."""
        return self.information

    @InternalHigh.setter
    def InternalHigh(self, value: int) -> None:
        self.information = value


def issue_offset(ov: OVERLAPPED) -> None:
    """Read Offset/OffsetHigh into the core's ``offset`` (when a request is issued).

    The hot paths inline the same expression. Raises:
        Win32Error: ERROR_INVALID_PARAMETER when a field is not an integer.
    """
    try:
        high = ov.OffsetHigh
        ov.offset = ((high & _DWORD) << 32) | (ov.Offset & _DWORD) if high else ov.Offset & _DWORD
    except TypeError:
        raise Win32Error(
            WinError.ERROR_INVALID_PARAMETER, "OVERLAPPED.Offset/OffsetHigh must be integers"
        ) from None


def bind_overlapped(lpOverlapped: Any) -> Overlapped | None:
    """Resolve an OVERLAPPED's hEvent (at issue/wait time, as Windows does) and its offset for
    the core."""
    if lpOverlapped is None:
        return None
    if isinstance(lpOverlapped, OVERLAPPED):
        issue_offset(lpOverlapped)
        handle = lpOverlapped.hEvent
        lpOverlapped.event = (
            HANDLE_TABLE.get(handle, Event, _EVENT_MODIFY_STATE) if handle else None
        )
        lpOverlapped.skip_port = bool(handle and handle & 1)  # (None: NULL, as in ReadFile)
        return lpOverlapped
    if isinstance(lpOverlapped, Overlapped):
        return lpOverlapped
    raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"{lpOverlapped!r} is not an OVERLAPPED")


def HasOverlappedIoCompleted(lpOverlapped: Overlapped) -> bool:
    """[MS:HasOverlappedIoCompleted]: Internal != STATUS_PENDING -> core ``Overlapped.pending``."""
    return lpOverlapped.status != STATUS_PENDING


def GetOverlappedResult(
    hFile: int, lpOverlapped: Any, lpNumberOfBytesTransferred: Ref[int], bWait: bool
) -> bool:
    """[MS:GetOverlappedResult] -> core ``get_overlapped_result``."""
    timeout = 0xFFFFFFFF if bWait else 0
    return GetOverlappedResultEx(hFile, lpOverlapped, lpNumberOfBytesTransferred, timeout, False)


def GetOverlappedResultEx(
    hFile: int,
    lpOverlapped: Any,
    lpNumberOfBytesTransferred: Ref[int],
    dwMilliseconds: int,
    bAlertable: bool,
) -> bool:
    """[MS:GetOverlappedResultEx] -> core ``get_overlapped_result`` (spec §4.3)."""
    try:
        ov = bind_overlapped(lpOverlapped)
        if ov is None:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "no OVERLAPPED")
        # The handle is only used (and validated) when there is something to wait on it for.
        timeout = seconds(dwMilliseconds)
        must_wait = ov.pending and ov.event is None and timeout != 0
        waitable = HANDLE_TABLE.get(hFile, FileObject, pseudo=False) if must_wait else None
        count, _ = get_overlapped_result(ov, waitable, timeout, bool(bAlertable))
    except IoError as exc:
        lpNumberOfBytesTransferred.value = exc.bytes_transferred
        fail(exc)
        return False
    except Win32Error as exc:
        fail(exc)
        return False
    lpNumberOfBytesTransferred.value = count
    return True
