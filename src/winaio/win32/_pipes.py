"""Win32 aliases: anonymous and named pipes.

Each function adapts one core call (``winaio._io._pipes`` / ``_pipe_names`` / ``_streams``) to
Win32 conventions. Out-parameters are :class:`Ref` boxes and stay untouched on failure.
"""

from __future__ import annotations

import getpass
from typing import Any

from .._io._anon_pipes import (
    anonymous_pipe_info,
    create_anonymous_pipe,
    is_anonymous_pipe,
    peek_anonymous_pipe,
)
from .._io._files import FileObject
from .._io._issue import start
from .._io._overlapped import STATUS_PENDING, Overlapped, is_error, is_warning
from .._io._pipe_names import (
    FILE_FLAG_FIRST_PIPE_INSTANCE,
    call_named_pipe,
    create_named_pipe,
    pipe_name,
    wait_named_pipe,
)
from .._io._pipes import PIPE_NOWAIT, PIPE_READMODE_MESSAGE, PipeEnd
from .._io._requests import as_buffers
from .._io._sync import run_sync
from .._kernel._handles import HANDLE_TABLE
from ..codes import WinError, ntstatus_to_winerror
from ..errors import IoError, Win32Error
from ._base import Ref, dword, fail, integer, seconds, set_last_error
from ._overlapped import bind_overlapped

__all__ = [
    "FILE_FLAG_FIRST_PIPE_INSTANCE",
    "NMPWAIT_NOWAIT",
    "NMPWAIT_USE_DEFAULT_WAIT",
    "NMPWAIT_WAIT_FOREVER",
    "PIPE_ACCEPT_REMOTE_CLIENTS",
    "PIPE_ACCESS_DUPLEX",
    "PIPE_ACCESS_INBOUND",
    "PIPE_ACCESS_OUTBOUND",
    "PIPE_CLIENT_END",
    "PIPE_NOWAIT",
    "PIPE_READMODE_BYTE",
    "PIPE_READMODE_MESSAGE",
    "PIPE_REJECT_REMOTE_CLIENTS",
    "PIPE_SERVER_END",
    "PIPE_TYPE_BYTE",
    "PIPE_TYPE_MESSAGE",
    "PIPE_UNLIMITED_INSTANCES",
    "PIPE_WAIT",
    "CallNamedPipe",
    "CallNamedPipeW",
    "ConnectNamedPipe",
    "CreateNamedPipe",
    "CreateNamedPipeW",
    "CreatePipe",
    "DisconnectNamedPipe",
    "GetNamedPipeClientProcessId",
    "GetNamedPipeHandleState",
    "GetNamedPipeHandleStateW",
    "GetNamedPipeInfo",
    "GetNamedPipeServerProcessId",
    "PeekNamedPipe",
    "SetNamedPipeHandleState",
    "TransactNamedPipe",
    "WaitNamedPipe",
    "WaitNamedPipeW",
]

PIPE_ACCESS_INBOUND = 0x1
PIPE_ACCESS_OUTBOUND = 0x2
PIPE_ACCESS_DUPLEX = 0x3
PIPE_TYPE_BYTE = 0x0
PIPE_TYPE_MESSAGE = 0x4
PIPE_READMODE_BYTE = 0x0
PIPE_WAIT = 0x0
PIPE_ACCEPT_REMOTE_CLIENTS = 0x0
PIPE_REJECT_REMOTE_CLIENTS = 0x8
PIPE_UNLIMITED_INSTANCES = 255
PIPE_CLIENT_END = 0x0
PIPE_SERVER_END = 0x1
NMPWAIT_USE_DEFAULT_WAIT = 0x00000000
NMPWAIT_NOWAIT = 0x00000001
NMPWAIT_WAIT_FOREVER = 0xFFFFFFFF
_PIPE_MODES = PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_NOWAIT | PIPE_REJECT_REMOTE_CLIENTS


def _end(handle: int) -> PipeEnd:
    return HANDLE_TABLE.get(handle, PipeEnd, pseudo=False)


def _anonymous(handle: int) -> FileObject | None:
    """The anonymous pipe end behind ``handle``, or None for a named pipe end.

    Raises:
        Win32Error: ERROR_INVALID_HANDLE for anything else.
    """
    file = HANDLE_TABLE.get(handle, FileObject, pseudo=False)
    if isinstance(file, PipeEnd):
        return None
    if not is_anonymous_pipe(file):
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, "not a pipe handle")
    return file


def _store(*pairs: tuple[Ref[Any] | None, Any]) -> None:
    for ref, value in pairs:
        if ref is not None:
            ref.value = value


def CreatePipe(
    hReadPipe: Ref[int], hWritePipe: Ref[int], lpPipeAttributes: object, nSize: int
) -> bool:
    """[MS:CreatePipe] -> core ``create_anonymous_pipe`` (synchronous handles, like Windows);
    PeekNamedPipe and GetNamedPipeInfo work on both ends [W:k32/pipe.c:test_CreatePipe]."""
    read_end, write_end = create_anonymous_pipe(nSize)
    hReadPipe.value = HANDLE_TABLE.insert(read_end)
    hWritePipe.value = HANDLE_TABLE.insert(write_end)
    return True


def CreateNamedPipe(
    lpName: str | None,
    dwOpenMode: int,
    dwPipeMode: int,
    nMaxInstances: int,
    nOutBufferSize: int,
    nInBufferSize: int,
    nDefaultTimeOut: int,
    lpSecurityAttributes: object,
) -> int:
    """[MS:CreateNamedPipeW] -> core ``create_named_pipe``; INVALID_HANDLE_VALUE on failure.

    NULL name -> ERROR_PATH_NOT_FOUND, a name outside ``\\\\.\\pipe\\`` -> ERROR_INVALID_NAME
    [W:k32/pipe.c:test_CreateNamedPipe].
    """
    try:
        if lpName is None:
            raise Win32Error(WinError.ERROR_PATH_NOT_FOUND, "NULL pipe name")
        name = pipe_name(lpName)
        if not name:
            raise Win32Error(WinError.ERROR_INVALID_NAME, f"{lpName!r} is not \\\\.\\pipe\\name")
        if dwPipeMode & ~_PIPE_MODES:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"pipe mode 0x{dwPipeMode:X}")
        timeout = (nDefaultTimeOut & 0xFFFFFFFF) / 1000.0 or None
        end = create_named_pipe(
            name, dwOpenMode, dwPipeMode, nMaxInstances, nOutBufferSize, nInBufferSize, timeout
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
            status, _ = run_sync(end.connect_request(Overlapped()))
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
    lpMaxCollectionCount: Ref[int] | None = None,
    lpCollectDataTimeout: Ref[int] | None = None,
) -> bool:
    """[MS:SetNamedPipeHandleState] -> core ``PipeEnd.set_mode``.

    The collection parameters only exist for remote byte pipes; they must be NULL here
    (ERROR_INVALID_PARAMETER), as must mode bits other than PIPE_READMODE_MESSAGE | PIPE_NOWAIT.
    """
    try:
        end = _end(hNamedPipe)
        if lpMaxCollectionCount is not None or lpCollectDataTimeout is not None:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "local pipes collect no data")
        if lpMode is not None:
            mode = int(lpMode.value)
            if mode & ~(PIPE_READMODE_MESSAGE | PIPE_NOWAIT):
                raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"mode 0x{mode:X}")
            end.set_mode(bool(mode & PIPE_READMODE_MESSAGE), bool(mode & PIPE_NOWAIT))
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def GetNamedPipeHandleState(
    hNamedPipe: int,
    lpState: Ref[int] | None,
    lpCurInstances: Ref[int] | None,
    lpMaxCollectionCount: Ref[int] | None,
    lpCollectDataTimeout: Ref[int] | None,
    lpUserName: Ref[str] | None,
    nMaxUserNameSize: int,
) -> bool:
    """[MS:GetNamedPipeHandleStateW] -> core ``PipeEnd.mode``.

    lpMaxCollectionCount/lpCollectDataTimeout must be NULL for local pipes and lpUserName for
    client ends (ERROR_INVALID_PARAMETER) [W:k32/pipe.c:test_NamedPipeHandleState]; the user
    name is the account running this process, cut to nMaxUserNameSize - 1 characters.
    """
    try:
        end = _end(hNamedPipe)
        if lpMaxCollectionCount is not None or lpCollectDataTimeout is not None:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "local pipes collect no data")
        if lpUserName is not None and not end.is_server:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "user name on a client end")
        message, nowait, instances = end.mode()
        user = getpass.getuser() if lpUserName is not None else ""
        if lpUserName is not None and len(user) >= nMaxUserNameSize:
            raise Win32Error(WinError.ERROR_INSUFFICIENT_BUFFER, "user name buffer too small")
    except (Win32Error, OSError) as exc:
        fail(exc if isinstance(exc, Win32Error) else Win32Error(WinError.ERROR_GEN_FAILURE))
        return False
    state = (PIPE_READMODE_MESSAGE if message else 0) | (PIPE_NOWAIT if nowait else 0)
    _store((lpState, state), (lpCurInstances, instances), (lpUserName, user))
    return True


GetNamedPipeHandleStateW = GetNamedPipeHandleState


def GetNamedPipeInfo(
    hNamedPipe: int,
    lpFlags: Ref[int] | None,
    lpOutBufferSize: Ref[int] | None,
    lpInBufferSize: Ref[int] | None,
    lpMaxInstances: Ref[int] | None,
) -> bool:
    """[MS:GetNamedPipeInfo] -> core ``PipeEnd.info`` (sizes as given to CreateNamedPipe;
    PIPE_UNLIMITED_INSTANCES for an unlimited pipe) [W:k32/pipe.c:test_GetNamedPipeInfo]."""
    try:
        anonymous = _anonymous(hNamedPipe)
        if anonymous is not None:
            flags, out_size, in_size, max_instances = anonymous_pipe_info(anonymous)
        else:
            info = _end(hNamedPipe).info()
            flags, out_size, in_size = info.flags, info.out_size, info.in_size
            # NPFS counts an unlimited pipe as 0xFFFFFFFF instances; the Win32 call reports
            # PIPE_UNLIMITED_INSTANCES [MS:GetNamedPipeInfo].
            max_instances = min(info.max_instances, PIPE_UNLIMITED_INSTANCES)
    except Win32Error as exc:
        fail(exc)
        return False
    _store(
        (lpFlags, flags),
        (lpOutBufferSize, out_size),
        (lpInBufferSize, in_size),
        (lpMaxInstances, max_instances),
    )
    return True


def _process_id(handle: int, ref: Ref[int] | None, client: bool) -> bool:
    try:
        end = _end(handle)
        if ref is None:
            raise Win32Error(WinError.ERROR_INSUFFICIENT_BUFFER, "NULL process id pointer")
        client_pid, server_pid = end.process_ids()
        pid = client_pid if client else server_pid
        if pid is None:
            raise Win32Error(WinError.ERROR_NOT_FOUND, "no client is connected")
    except Win32Error as exc:
        fail(exc)
        return False
    ref.value = pid
    return True


def GetNamedPipeClientProcessId(Pipe: int, ClientProcessId: Ref[int] | None) -> bool:
    """[MS:GetNamedPipeClientProcessId] -> core ``PipeEnd.process_ids`` (this process: names
    are process-local); ERROR_NOT_FOUND on a server without a client."""
    return _process_id(Pipe, ClientProcessId, True)


def GetNamedPipeServerProcessId(Pipe: int, ServerProcessId: Ref[int] | None) -> bool:
    """[MS:GetNamedPipeServerProcessId] -> core ``PipeEnd.process_ids``."""
    return _process_id(Pipe, ServerProcessId, False)


def WaitNamedPipe(lpNamedPipeName: str, nTimeOut: int) -> bool:
    """[MS:WaitNamedPipeW] -> core ``wait_named_pipe`` (NMPWAIT_USE_DEFAULT_WAIT: the pipe's
    default timeout; ERROR_SEM_TIMEOUT when no instance listened in time)."""
    try:
        name = pipe_name(lpNamedPipeName)
        if not name:
            raise Win32Error(WinError.ERROR_FILE_NOT_FOUND, f"{lpNamedPipeName!r} is no pipe")
        ms = dword(nTimeOut, "nTimeOut")
        wait_named_pipe(name, True if ms == NMPWAIT_USE_DEFAULT_WAIT else seconds(ms))
    except Win32Error as exc:
        fail(exc)
        return False
    return True


WaitNamedPipeW = WaitNamedPipe


def TransactNamedPipe(
    hNamedPipe: int,
    lpInBuffer: Any,
    nInBufferSize: int,
    lpOutBuffer: Any,
    nOutBufferSize: int,
    lpBytesRead: Ref[int] | None,
    lpOverlapped: Any,
) -> bool:
    """[MS:TransactNamedPipe] -> core ``PipeEnd.transact_request`` (message read mode only:
    ERROR_BAD_PIPE; data already queued: ERROR_PIPE_BUSY) [W:k32/pipe.c:test_TransactNamedPipe].
    """
    if lpBytesRead is not None:
        lpBytesRead.value = 0
    try:
        end = _end(hNamedPipe)
        data = b"".join(as_buffers(lpInBuffer, nInBufferSize, False)) if nInBufferSize else b""
        out = as_buffers(lpOutBuffer, nOutBufferSize, True) if nOutBufferSize else []
        buffer = out[0] if len(out) == 1 else memoryview(bytearray(0))
        if len(out) > 1:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "one output buffer")
        ov = bind_overlapped(lpOverlapped)
        if ov is not None and end.overlapped:
            status = start(end.transact_request(data, buffer, ov))
            if status == STATUS_PENDING:
                set_last_error(WinError.ERROR_IO_PENDING)
                return False
            count = ov.information
        else:
            status, count = run_sync(end.transact_request(data, buffer, Overlapped()))
            if ov is not None:
                ov.status, ov.information = status, count
    except Win32Error as exc:
        fail(exc)
        return False
    if lpBytesRead is not None and (ov is None or not status):
        lpBytesRead.value = count
    if is_error(status) or is_warning(status):
        fail(IoError(ntstatus_to_winerror(status), count))
        return False
    return True


def CallNamedPipe(
    lpNamedPipeName: str,
    lpInBuffer: Any,
    nInBufferSize: int,
    lpOutBuffer: Any,
    nOutBufferSize: int,
    lpBytesRead: Ref[int] | None,
    nTimeOut: int,
) -> bool:
    """[MS:CallNamedPipeW] -> core ``call_named_pipe``: connect (waiting up to nTimeOut for a
    free instance), message read mode, one transaction, close."""
    try:
        name = pipe_name(lpNamedPipeName)
        if not name:
            raise Win32Error(WinError.ERROR_FILE_NOT_FOUND, f"{lpNamedPipeName!r} is no pipe")
        data = b"".join(as_buffers(lpInBuffer, nInBufferSize, False)) if nInBufferSize else b""
        out = as_buffers(lpOutBuffer, nOutBufferSize, True)[0] if nOutBufferSize else None
        ms = dword(nTimeOut, "nTimeOut")
        timeout = True if ms == NMPWAIT_USE_DEFAULT_WAIT else seconds(ms)
        reply, complete = call_named_pipe(name, data, nOutBufferSize, timeout)
    except Win32Error as exc:
        fail(exc)
        return False
    if out is not None:
        out[: len(reply)] = reply
    if lpBytesRead is not None:
        lpBytesRead.value = len(reply)
    if not complete:
        set_last_error(WinError.ERROR_MORE_DATA)
        return False
    return True


CallNamedPipeW = CallNamedPipe


def PeekNamedPipe(
    hNamedPipe: int,
    lpBuffer: Any,
    nBufferSize: int,
    lpBytesRead: Ref[int] | None,
    lpTotalBytesAvail: Ref[int] | None,
    lpBytesLeftThisMessage: Ref[int] | None,
) -> bool:
    """[MS:PeekNamedPipe] -> core ``PipeEnd.peek``.

    Message pipes show only the head message; *lpBytesLeftThisMessage is that message's length
    minus the bytes copied, as a DWORD - so on byte pipes it is ``-bytes copied`` modulo 2**32,
    exactly as Windows reports it [W:k32/pipe.c:test_CreateNamedPipe]. Anonymous pipes too:
    the read end peeks without consuming; the write end -> ERROR_ACCESS_DENIED.
    """
    try:
        anonymous = _anonymous(hNamedPipe)
        size = integer(nBufferSize, "nBufferSize") if lpBuffer is not None else 0
        view = as_buffers(lpBuffer, size, True)[0] if size > 0 else None
        if anonymous is not None:
            data, total = peek_anonymous_pipe(anonymous, size)
            message_length = 0  # a byte pipe
        else:
            data, total, message_length = _end(hNamedPipe).peek(size)
    except Win32Error as exc:
        fail(exc)
        return False
    if view is not None:
        view[: len(data)] = data
    left = (message_length - len(data)) & 0xFFFFFFFF
    _store((lpBytesRead, len(data)), (lpTotalBytesAvail, total), (lpBytesLeftThisMessage, left))
    return True
