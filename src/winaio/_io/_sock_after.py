"""What the sockets' immediate paths do past their syscall, other than an immediate success
(``_sockets``: ``Socket.start_read``/``start_write``; win32-async-spec §10): the continuations
that the Python methods and the C accelerator (``_fastsock.c``, configured with these very
functions by ``_sockets``) both call, so that the two implementations cannot drift.

Invariants: a receive that would block arms ``poll(0)``-first on its socket and pends through
the socket's ``_pend`` (``_sockets``' module docstring); an immediate failure raises with no
notification, the socket's reset/shut-down state applied as ``try_now`` applies it; a partial
send's rest is registered as a request (``submit_tried``) before the caller releases the send
claim.
"""

from __future__ import annotations

import select
from typing import TYPE_CHECKING, Any, NoReturn

from ..codes import WinError, ntstatus_to_winerror
from ..errors import IoError, Win32Error
from ._fd_users import FdUsers
from ._interrupts import cut_at_entry, interrupt
from ._issue import submit_tried
from ._stream_ops import StreamWriteOp, read_failed, stream_end, write_failed

if TYPE_CHECKING:
    from ._overlapped import Overlapped
    from ._sockets import Socket

_POLLIN = select.POLLIN


def _left(users: FdUsers) -> None:
    """``users.left()`` (a fast path counted out of a closing socket's descriptor), made again
    when a Ctrl-C cut it at its entry: else a close deferred to this user never happens."""
    try:
        users.left()
    except BaseException as exc:
        if interrupt(exc) and cut_at_entry(exc, FdUsers.left):
            users.left()
        raise


def _closed_error() -> Win32Error:
    """The error of a fast path on a closed socket (as ``_files.start``)."""
    return Win32Error(WinError.ERROR_INVALID_HANDLE, "the socket is closed")


def _recv_blocked(file: Socket, overlapped: Overlapped, view: memoryview) -> bool:
    """A fast-path receive would block: the socket asks ``poll(0)`` first from now on
    (``_sockets``' module docstring), and the request pends (``_pend``). Returns False."""
    poller = file._recv_poller
    if poller is None:
        poller = select.poll()
        try:
            poller.register(file.fd, _POLLIN)
        except (ValueError, OSError):  # closed by another thread meanwhile
            poller = None
        file._recv_poller = poller
    if poller is not None:
        file._recv_ready = poller.poll
        file._recv_misses = 1
    file._pend(file, overlapped, view)
    return False


def _recv_failed(file: Socket, errno: int) -> NoReturn:
    """A fast-path receive failed at once (errno): the socket state as ``try_now``, no
    notification."""
    raise IoError(ntstatus_to_winerror(read_failed(file, errno)[0])) from None


def _recv_end(file: Socket) -> None:
    """A fast-path receive read 0 bytes: a graceful close (success), or a reset that stays
    reset (raises)."""
    status = stream_end(file)[0]
    if status:
        raise IoError(ntstatus_to_winerror(status))


def _send_failed(file: Socket, errno: int) -> NoReturn:
    """A fast-path send failed at once (errno): as ``try_now``, no notification."""
    raise IoError(ntstatus_to_winerror(write_failed(file, errno))) from None


def _rest_request(
    file: Socket, overlapped: Overlapped, data: Any, n: int, nbytes: int
) -> StreamWriteOp:
    """The request for the rest of a send the socket took ``n`` of ``nbytes`` of: the bytes
    past ``n``, counted as sent ``n`` (``_send_rest``'s, not registered)."""
    view = data if data.__class__ is memoryview else memoryview(data)
    op = StreamWriteOp(file, overlapped, (view[n:],))
    op.sent, op.nbytes = n, nbytes
    return op


def _send_rest(file: Socket, overlapped: Overlapped, data: Any, n: int, nbytes: int) -> bool:
    """The socket took ``n`` of ``nbytes`` (its buffer is full): the rest waits for room as a
    request object, registered before the caller releases the send claim. Returns False."""
    op: StreamWriteOp | None = None
    try:
        op = _rest_request(file, overlapped, data, n, nbytes)
        submit_tried(op)
    except BaseException as exc:
        # (Ctrl-C: the n bytes are sent; a rest not registered yet is built and submitted
        # again, once - a cut anywhere in ``_rest_request`` leaves ``op`` None, one at
        # ``submit_tried``'s entry leaves it unregistered; a registered one is
        # ``submit_tried``'s to finish)
        if interrupt(exc) and (op is None or not op.registered):
            op = _rest_request(file, overlapped, data, n, nbytes)
            submit_tried(op)
        raise
    return False
