"""The named-pipe namespace: CreateNamedPipe, CreateFile on a pipe, WaitNamedPipe.

Facts encoded here (Wine ``server/named_pipe.c``, [W:k32/pipe.c], [MS:CreateNamedPipeW]):
- Names are process-local (a documented deviation) and, like NPFS names, not case-sensitive:
  ``\\\\.\\PiPe\\A`` and ``\\\\.\\pipe\\a`` are one pipe. Any character may follow the prefix.
- The first CreateNamedPipe fixes the pipe's access, type, buffer sizes and default timeout.
  Later instances must ask for the same access (else ERROR_ACCESS_DENIED, also for
  FILE_FLAG_FIRST_PIPE_INSTANCE on an existing name); more instances than the limit ->
  ERROR_PIPE_BUSY [W:k32/pipe.c:test_CreateNamedPipe_instances_must_match].
- A client takes the instance at the head of the pipe's listener FIFO: instances join it when
  created and when they listen again after DisconnectNamedPipe; a pending ConnectNamedPipe does
  not move an instance forward [W:k32/pipe.c:test_multiple_instances]. None listening ->
  ERROR_PIPE_BUSY; no such pipe -> ERROR_FILE_NOT_FOUND.
- WaitNamedPipe returns at once when an instance listens; otherwise it waits (a non-alertable
  kernel wait) until one is created or listens again, up to the timeout (NMPWAIT_USE_DEFAULT_WAIT
  = the pipe's default timeout, 50 ms when that was 0) -> ERROR_SEM_TIMEOUT
  [W:k32/pipe.c:test_wait_pipe].
- Buffer sizes are the quotas: a write that does not fit pends until the reader makes room; a
  size of 0 means every write waits for its reader (NPFS charges the write quota first,
  [MS:CreateNamedPipeW] remarks).
"""

from __future__ import annotations

from .._kernel._objects import Event
from .._kernel._wait import wait_for_one
from ..codes import WaitCode, WinError
from ..errors import Win32Error
from ._pipe_queue import LOCK
from ._pipes import (
    PIPE_ACCESS_DUPLEX,
    PIPE_ACCESS_INBOUND,
    PIPE_ACCESS_OUTBOUND,
    PIPE_NOWAIT,
    PIPE_READMODE_MESSAGE,
    PIPE_TYPE_MESSAGE,
    NamedPipe,
    PipeEnd,
    connect_client,
)

__all__ = [
    "FILE_FLAG_FIRST_PIPE_INSTANCE",
    "PIPE_UNLIMITED_INSTANCES",
    "create_named_pipe",
    "open_named_pipe",
    "pipe_name",
    "wait_named_pipe",
]

PIPE_UNLIMITED_INSTANCES = 255
FILE_FLAG_FIRST_PIPE_INSTANCE = 0x00080000
_FILE_FLAG_OVERLAPPED = 0x40000000
#: NMPWAIT_USE_DEFAULT_WAIT with a pipe created with a default timeout of 0 (winbase.h).
DEFAULT_TIMEOUT = 0.05
_PREFIX = "\\\\.\\pipe\\"

_NAMES: dict[str, NamedPipe] = {}


def pipe_name(path: str) -> str | None:
    """The pipe name of a ``\\\\.\\pipe\\name`` path (case-insensitive prefix), else None."""
    if path[: len(_PREFIX)].lower() == _PREFIX:
        return path[len(_PREFIX) :]
    return None


def create_named_pipe(
    name: str,
    open_mode: int,
    pipe_mode: int,
    max_instances: int,
    out_size: int = 0,
    in_size: int = 0,
    default_timeout: float | None = None,
) -> PipeEnd:
    """CreateNamedPipe: a new server instance of pipe ``name`` (listening at once).

    Args:
        default_timeout: seconds WaitNamedPipe(NMPWAIT_USE_DEFAULT_WAIT) waits (None: 50 ms).

    Raises:
        Win32Error: ERROR_INVALID_PARAMETER (bad mode/count), ERROR_ACCESS_DENIED (access differs
            from the existing instances, or FILE_FLAG_FIRST_PIPE_INSTANCE on an existing name),
            ERROR_PIPE_BUSY (max instances reached).
    """
    access = open_mode & PIPE_ACCESS_DUPLEX
    if not access or not 1 <= max_instances <= PIPE_UNLIMITED_INSTANCES:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "pipe access or instance count")
    if out_size < 0 or in_size < 0:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "negative buffer size")
    message = bool(pipe_mode & PIPE_TYPE_MESSAGE)
    if pipe_mode & PIPE_READMODE_MESSAGE and not message:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "message read mode on a byte pipe")
    key = name.casefold()
    with LOCK:
        pipe = _NAMES.get(key)
        if pipe is None:
            pipe = _NAMES[key] = NamedPipe(
                name,
                _NAMES,
                access=access,
                message=message,
                max_instances=max_instances,
                out_size=out_size,
                in_size=in_size,
                default_timeout=default_timeout or DEFAULT_TIMEOUT,
            )
            if max_instances == PIPE_UNLIMITED_INSTANCES:
                pipe.max_instances = None
        elif open_mode & FILE_FLAG_FIRST_PIPE_INSTANCE or pipe.access != access:
            raise Win32Error(WinError.ERROR_ACCESS_DENIED, f"pipe {name!r} exists")
        elif pipe.max_instances is not None and len(pipe.instances) >= pipe.max_instances:
            raise Win32Error(WinError.ERROR_PIPE_BUSY, f"pipe {name!r}: all instances exist")
        end = PipeEnd(
            pipe,
            is_server=True,
            overlapped=bool(open_mode & _FILE_FLAG_OVERLAPPED),
            read=bool(access & PIPE_ACCESS_INBOUND),
            write=bool(access & PIPE_ACCESS_OUTBOUND),
        )
        end.read_message = bool(pipe_mode & PIPE_READMODE_MESSAGE)
        end.nowait = bool(pipe_mode & PIPE_NOWAIT)
        pipe.instances.append(end)
        pipe.listen(end)
    return end


def open_named_pipe(
    name: str, *, read: bool, write: bool, overlapped: bool, set_state: bool | None = None
) -> PipeEnd:
    """CreateFile(``\\\\.\\pipe\\name``): connect a client to the first listening instance.

    ``set_state``: the handle has FILE_WRITE_ATTRIBUTES (default: it has write access).

    Raises:
        Win32Error: ERROR_FILE_NOT_FOUND (no such pipe), ERROR_PIPE_BUSY (no instance listens),
            ERROR_ACCESS_DENIED (asked for a direction the pipe does not offer).
    """
    with LOCK:
        pipe = _NAMES.get(name.casefold())
        if pipe is None:
            raise Win32Error(WinError.ERROR_FILE_NOT_FOUND, f"no pipe named {name!r}")
        if (read and not pipe.access & PIPE_ACCESS_OUTBOUND) or (
            write and not pipe.access & PIPE_ACCESS_INBOUND
        ):
            raise Win32Error(WinError.ERROR_ACCESS_DENIED, "direction not offered by the pipe")
        if not pipe.listeners:
            raise Win32Error(WinError.ERROR_PIPE_BUSY, f"pipe {name!r}: no instance listens")
        client = PipeEnd(pipe, is_server=False, overlapped=overlapped, read=read, write=write)
        if set_state is not None:
            client.can_set_state = set_state
        pending = connect_client(pipe.listeners[0], client)
    for op in pending:
        op.complete(0, 0)
    return client


def wait_named_pipe(name: str, timeout: float | bool | None = True) -> None:
    """WaitNamedPipe: return once an instance of ``name`` listens.

    Args:
        timeout: seconds, None to wait forever, True for the pipe's default timeout.

    Raises:
        Win32Error: ERROR_FILE_NOT_FOUND (no such pipe), ERROR_SEM_TIMEOUT (none listened in time).
    """
    with LOCK:
        pipe = _NAMES.get(name.casefold())
        if pipe is None:
            raise Win32Error(WinError.ERROR_FILE_NOT_FOUND, f"no pipe named {name!r}")
        if pipe.listeners:
            return
        seconds = pipe.default_timeout if timeout is True else timeout
        waiter = Event(manual_reset=True)
        pipe.waiters.append(waiter)
    try:
        code = wait_for_one(waiter, None if seconds is None else float(seconds), False)
    finally:
        with LOCK:
            if waiter in pipe.waiters:
                pipe.waiters.remove(waiter)
    if code != WaitCode.WAIT_OBJECT_0:
        raise Win32Error(WinError.ERROR_SEM_TIMEOUT, f"no instance of {name!r} listened in time")


def call_named_pipe(
    name: str, data: bytes, size: int, timeout: float | bool | None = True
) -> tuple[bytes, bool]:
    """CallNamedPipe: connect (waiting up to ``timeout`` for a free instance, see
    :func:`wait_named_pipe`), switch to message read mode, send ``data`` and read one reply of
    at most ``size`` bytes, then close. Returns (reply, whether the whole reply fit).

    Raises:
        Win32Error: ERROR_FILE_NOT_FOUND, ERROR_SEM_TIMEOUT, ERROR_BAD_PIPE (byte-type pipe),
            ERROR_BROKEN_PIPE...
    """
    try:
        client = open_named_pipe(name, read=True, write=True, overlapped=False)
    except Win32Error as exc:
        if exc.winerror != WinError.ERROR_PIPE_BUSY:
            raise
        wait_named_pipe(name, timeout)
        client = open_named_pipe(name, read=True, write=True, overlapped=False)
    try:
        client.set_mode(True, None)
        return client.transact(data, size)
    finally:
        client._last_handle_closed()  # no handle was ever made for it
