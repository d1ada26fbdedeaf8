"""Win32 aliases: anonymous and named pipes.

Each function adapts one core call (``winaio._io._pipes`` / ``_streams``) to Win32 conventions.
"""

from __future__ import annotations

from typing import Any

from .._io._files import run_sync, start
from .._io._overlapped import STATUS_PENDING, Overlapped
from .._io._pipes import (
    PIPE_NOWAIT,
    PIPE_READMODE_MESSAGE,
    PipeEnd,
    create_named_pipe,
    pipe_name,
)
from .._io._streams import create_pipe
from .._kernel._handles import HANDLE_TABLE
from ..codes import WinError, ntstatus_to_winerror
from ..errors import Win32Error
from ._base import Ref, fail
from ._io import bind_overlapped

__all__ = [
    "PIPE_ACCESS_DUPLEX",
    "PIPE_ACCESS_INBOUND",
    "PIPE_ACCESS_OUTBOUND",
    "PIPE_NOWAIT",
    "PIPE_READMODE_BYTE",
    "PIPE_READMODE_MESSAGE",
    "PIPE_TYPE_BYTE",
    "PIPE_TYPE_MESSAGE",
    "PIPE_UNLIMITED_INSTANCES",
    "PIPE_WAIT",
    "ConnectNamedPipe",
    "CreateNamedPipe",
    "CreateNamedPipeW",
    "CreatePipe",
    "DisconnectNamedPipe",
    "PeekNamedPipe",
    "SetNamedPipeHandleState",
]

PIPE_ACCESS_INBOUND = 0x1
PIPE_ACCESS_OUTBOUND = 0x2
PIPE_ACCESS_DUPLEX = 0x3
PIPE_TYPE_BYTE = 0x0
PIPE_TYPE_MESSAGE = 0x4
PIPE_READMODE_BYTE = 0x0
PIPE_WAIT = 0x0
PIPE_UNLIMITED_INSTANCES = 255


def _end(handle: int) -> PipeEnd:
    return HANDLE_TABLE.get(handle, PipeEnd, pseudo=False)


def CreatePipe(
    hReadPipe: Ref[int], hWritePipe: Ref[int], lpPipeAttributes: object, nSize: int
) -> bool:
    """[MS:CreatePipe] -> core ``create_pipe`` (synchronous handles, like Windows)."""
    read_end, write_end = create_pipe(overlapped=False, size=nSize)
    hReadPipe.value = HANDLE_TABLE.insert(read_end)
    hWritePipe.value = HANDLE_TABLE.insert(write_end)
    return True


def CreateNamedPipe(
    lpName: str,
    dwOpenMode: int,
    dwPipeMode: int,
    nMaxInstances: int,
    nOutBufferSize: int,
    nInBufferSize: int,
    nDefaultTimeOut: int,
    lpSecurityAttributes: object,
) -> int:
    """[MS:CreateNamedPipeW] -> core ``create_named_pipe``; INVALID_HANDLE_VALUE on failure."""
    try:
        name = pipe_name(lpName)
        if not name:
            raise Win32Error(WinError.ERROR_INVALID_NAME, f"{lpName!r} is not \\\\.\\pipe\\name")
        end = create_named_pipe(
            name, dwOpenMode, dwPipeMode, nMaxInstances, nOutBufferSize, nInBufferSize
        )
    except Win32Error as exc:
        fail(exc)
        return -1
    return HANDLE_TABLE.insert(end)


CreateNamedPipeW = CreateNamedPipe


def ConnectNamedPipe(hNamedPipe: int, lpOverlapped: Any) -> bool:
    """[MS:ConnectNamedPipe] -> core ``PipeEnd.connect_request`` (pending until a client)."""
    try:
        end = _end(hNamedPipe)
        ov = bind_overlapped(lpOverlapped)
        if ov is not None and end.overlapped:
            status = start(end.connect_request(ov))
        else:
            status, _ = run_sync(end.connect_request(ov or Overlapped()))
            if status:
                raise Win32Error(ntstatus_to_winerror(status))
    except Win32Error as exc:
        fail(exc)
        return False
    if status == STATUS_PENDING:
        fail(Win32Error(WinError.ERROR_IO_PENDING))
        return False
    return True


def DisconnectNamedPipe(hNamedPipe: int) -> bool:
    """[MS:DisconnectNamedPipe] -> core ``PipeEnd.disconnect``."""
    try:
        _end(hNamedPipe).disconnect()
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def SetNamedPipeHandleState(
    hNamedPipe: int,
    lpMode: Ref[int] | None,
    lpMaxCollectionCount: object = None,
    lpCollectDataTimeout: object = None,
) -> bool:
    """[MS:SetNamedPipeHandleState] -> core ``PipeEnd.set_mode``."""
    try:
        end = _end(hNamedPipe)
        if lpMode is not None:
            mode = lpMode.value
            end.set_mode(bool(mode & PIPE_READMODE_MESSAGE), bool(mode & PIPE_NOWAIT))
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def PeekNamedPipe(
    hNamedPipe: int,
    lpBuffer: Any,
    nBufferSize: int,
    lpBytesRead: Ref[int] | None,
    lpTotalBytesAvail: Ref[int] | None,
    lpBytesLeftThisMessage: Ref[int] | None,
) -> bool:
    """[MS:PeekNamedPipe] -> core ``PipeEnd.peek``."""
    try:
        data, total, left = _end(hNamedPipe).peek(nBufferSize if lpBuffer is not None else 0)
    except Win32Error as exc:
        fail(exc)
        return False
    if lpBuffer is not None:
        memoryview(lpBuffer).cast("B")[: len(data)] = data
    for ref, value in ((lpBytesRead, len(data)), (lpTotalBytesAvail, total),
                       (lpBytesLeftThisMessage, left)):  # fmt: skip
        if ref is not None:
            ref.value = value
    return True
