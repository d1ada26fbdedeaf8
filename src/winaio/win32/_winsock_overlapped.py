"""Win32 aliases: Winsock's overlapped requests - WSARecv, WSASend (and their C accelerator),
AcceptEx, ConnectEx, WSAGetOverlappedResult.

Each adapts one core call (``Socket.recv_op``/``send_op``/``start_read``/``start_write``,
``start_accept``, ``connect_op``, ``get_overlapped_result``) to Winsock's conventions: SOCKET_ERROR
or FALSE with WSA_IO_PENDING for a request that pends, out-parameters written only when it
finished inside the call, WSA* codes through WSAGetLastError (``_winsock``: the error mapping, the
socket handles, the blocking calls).

Invariant: ``WSARecv``/``WSASend``/``WSAGetLastError`` are the C accelerator's functions
(``_fastwsa.c``) when it was built, configured here together (the C WSAGetLastError reads the
same per-thread slot their hot shape writes); the Python functions (``_WSARecv``, ``_WSASend``,
``_winsock._WSAGetLastError``) stay the reference and take every shape the C does not
(``_accel.use(False)`` sends every call to them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._io import _accel
from .._io._files import FileObject
from .._io._issue import start
from .._io._netevents import mode_of
from .._io._overlapped import STATUS_PENDING, Overlapped, get_overlapped_result
from .._io._requests import as_buffers
from .._io._sockets import Socket
from .._io._sync import run_sync
from .._io._winsock_ext import check_connectable, check_not_accepting
from .._kernel._dispatcher import ThreadState
from .._kernel._threads import _tls, current_thread_state
from ..codes import WinError, ntstatus_to_winerror
from ..errors import IoError, Win32Error
from ._base import Ref, seconds, set_last_error
from ._base import handle_entry as _handle_entry
from ._overlapped import OVERLAPPED, bind_overlapped
from ._winsock import (
    _WIN_WSA,
    SOCKET_ERROR,
    WSA_IO_PENDING,
    WSAEFAULT,
    WSAEINVAL,
    WsaRoutine,
    _sock,
    _sync,
    _wsa_fail,
    _WSAGetLastError,
)
from ._wsa_status import wsa_error_of_status

try:
    from .._io import _fastio
except ImportError:  # not built (no C compiler): the Python functions run
    _fastio = None  # type: ignore[assignment]

__all__ = [
    "AcceptEx",
    "ConnectEx",
    "WSAGetLastError",
    "WSAGetOverlappedResult",
    "WSARecv",
    "WSASend",
]


def _wsabufs(lpBuffers: Any, dwBufferCount: int, writable: bool) -> list[memoryview]:
    """The first ``dwBufferCount`` WSABUFs (Python buffers) as byte views; the hot shape (one
    whole bytearray) without loops.

    Raises:
        Win32Error: WSAEINVAL for a receive into no buffer at all (checked before the array,
            [W:ws2_32/sock.c:test_empty_recv]); WSAEFAULT for a missing or short buffer array;
            ERROR_INVALID_USER_BUFFER for something that is not a buffer (or a read-only one
            for a receive).
    """
    if dwBufferCount == 1 and lpBuffers.__class__ is list and lpBuffers:
        first = lpBuffers[0]
        if first.__class__ is bytearray:
            return [memoryview(first)]
        return as_buffers(first, None, writable)
    if writable and dwBufferCount <= 0:
        raise Win32Error(WSAEINVAL, f"a receive into {dwBufferCount} buffers")
    try:
        buffers = list(lpBuffers)
    except TypeError:
        raise Win32Error(WSAEFAULT, "lpBuffers is not a WSABUF array") from None
    if dwBufferCount < 0 or dwBufferCount > len(buffers):
        raise Win32Error(WSAEFAULT, f"dwBufferCount {dwBufferCount} > {len(buffers)} buffers")
    return as_buffers(buffers[:dwBufferCount], None, writable)


def _wsa_io(
    receive: bool,
    s: int,
    lpBuffers: Any,
    dwBufferCount: int,
    flags: int,
    lpOverlapped: Any,
    lpCompletionRoutine: WsaRoutine | None,
) -> int | None:
    """The body of WSARecv/WSASend: the byte count when the request finished inside the call,
    None when it pends. Of what the caller passed, only the OVERLAPPED's Internal is written
    (STATUS_PENDING, as ws2_32 does before the AFD request [W:ws2_32/socket.c:WS2_recv_base]).

    Raises:
        Win32Error: the request failed at once (then no notification happens at all).
    """
    try:  # the commonest shape inlined: a plain socket handle, an OVERLAPPED without hEvent
        sock = _handle_entry(s)[0]
    except TypeError:  # no such handle (None[0]) or not a handle at all (unhashable)
        sock = None
    if sock.__class__ is not Socket:
        sock = _sock(s)
    views = _wsabufs(lpBuffers, dwBufferCount, receive)
    ov = lpOverlapped
    if (ov.__class__ is OVERLAPPED and not ov.hEvent) or (
        lpCompletionRoutine is not None and sock.overlapped and isinstance(ov, Overlapped)
    ):
        # With a completion routine hEvent is ignored and free for the application [MS:WSARecv].
        ov.event = None
        ov.skip_port = False
    else:
        ov = bind_overlapped(ov)
    make = sock.recv_op if receive else sock.send_op
    if ov is None:
        # A blocking call; the completion routine is ignored without overlapped I/O [MS:WSARecv].
        return _sync(make(views, Overlapped(), flags))
    if not sock.overlapped:
        return _blocking_with_overlapped(make(views, Overlapped(), flags), ov)
    routine = None
    if lpCompletionRoutine is not None:
        if sock.port is not None:
            # "Using completion function on socket associated with completion port is not
            # allowed" [W:ws2_32/sock.c:test_WSARecv]: WSAEINVAL, and no notification.
            raise Win32Error(WSAEINVAL, "completion routine on a port-bound socket")
        routine = _routine(lpCompletionRoutine)
    if receive:
        status = start(sock.recv_op(views, ov, flags, routine))
    else:
        status = start(sock.send_op(views, ov, flags, routine))
    if status == STATUS_PENDING:
        return None
    if status:  # a warning: finished with data but reported as a failure (WSAEMSGSIZE)
        raise Win32Error(ntstatus_to_winerror(status))
    count: int = ov.information
    return count


def _blocking_with_overlapped(op: Any, ov: Overlapped) -> int:
    """An OVERLAPPED on a non-overlapped socket: the call blocks until done, whatever FIONBIO
    says ("With a non-overlapped socket, WSARecv() always blocks when passed an overlapped
    structure" [W:ws2_32/sock.c:test_nonblocking_async_recv]), and the OVERLAPPED receives the
    result (Internal, InternalHigh, its event) like any completed request.

    Raises:
        Win32Error: the request failed (the OVERLAPPED holds its status too).
    """
    if ov.event is not None:
        ov.event.reset()  # spec §4.2: the request's event is reset when it is issued
    status, information = run_sync(op)
    ov.status, ov.information = status, information
    if ov.event is not None:
        ov.event.set()
    if status:
        raise Win32Error(ntstatus_to_winerror(status))
    return information


def _routine(routine: WsaRoutine | None) -> Callable[[int, int, Any], object] | None:
    if routine is None:
        return None
    if not callable(routine):  # a bad pointer (else its APC fails in a later alertable wait)
        raise Win32Error(WSAEFAULT, "lpCompletionRoutine is not callable")

    def adapter(error: int, transferred: int, overlapped: Any) -> object:
        # LPWSAOVERLAPPED_COMPLETION_ROUTINE(dwError, cbTransferred, lpOverlapped, dwFlags).
        return routine(_WIN_WSA.get(error, error), transferred if not error else 0, overlapped, 0)

    return adapter


def _out(ref: Any, name: str) -> None:
    """An out-parameter the call will write (a ``Ref``, or anything with a ``value``: a
    ctypes integer): else WSAEFAULT, before any I/O (a bad pointer to Winsock); None is
    NULL (the caller's check where NULL is refused)."""
    if ref is not None and not hasattr(ref, "value"):
        raise Win32Error(WSAEFAULT, f"{name} is not an out-parameter")


def _WSARecv(
    s: int,
    lpBuffers: Any,
    dwBufferCount: int,
    lpNumberOfBytesRecvd: Ref[int] | None,
    lpFlags: Ref[int],
    lpOverlapped: Any,
    lpCompletionRoutine: WsaRoutine | None,
) -> int:
    """[MS:WSARecv] -> core ``Socket.recv_op``.

    Out-parameters are written only when the receive finished inside the call (0 returned):
    ``*lpNumberOfBytesRecvd`` (untouched when pending or failing [W:ws2_32/socket.c]) and
    ``*lpFlags``, which then holds the output flags: MSG_PARTIAL for a partial message of a
    message-oriented socket, else 0 [MS:WSARecv]. Success sets the last error to 0
    [W:ws2_32/sock.c:test_WSARecv].
    """
    if (
        lpOverlapped.__class__ is OVERLAPPED
        and not lpOverlapped.hEvent
        and dwBufferCount == 1
        and lpCompletionRoutine is None
        and lpBuffers.__class__ is list
        and len(lpBuffers) == 1
        and lpFlags.__class__ is Ref
        and not lpFlags.value
        and (lpNumberOfBytesRecvd is None or lpNumberOfBytesRecvd.__class__ is Ref)
    ):
        # The hot shape inlined (a plain overlapped socket handle, one WSABUF, no flags, an
        # OVERLAPPED without hEvent, no routine): the core's ``Socket.start_read``, whose
        # immediate fast path (or its general path) is exactly this call's.
        try:
            sock = _handle_entry(s)[0]
        except TypeError:  # no such handle (None[0]) or not a handle at all (unhashable)
            sock = None
        if sock.__class__ is Socket and sock.overlapped:
            lpOverlapped.event = None
            lpOverlapped.skip_port = False
            try:
                done = sock.start_read(lpBuffers[0], lpOverlapped)
            except Win32Error as exc:
                return _wsa_fail(exc)
            ts = current_thread_state()
            if not done:
                ts.last_error = WSA_IO_PENDING
                return SOCKET_ERROR
            if lpNumberOfBytesRecvd is not None:
                lpNumberOfBytesRecvd.value = lpOverlapped.information
            lpFlags.value = 0
            ts.last_error = 0
            return 0
    try:
        if lpFlags is None:
            raise Win32Error(WSAEFAULT, "lpFlags is NULL")
        _out(lpFlags, "lpFlags")
        _out(lpNumberOfBytesRecvd, "lpNumberOfBytesRecvd")
        count = _wsa_io(True, s, lpBuffers, dwBufferCount, lpFlags.value, lpOverlapped,
                        lpCompletionRoutine)  # fmt: skip
    except Win32Error as exc:
        return _wsa_fail(exc)
    if count is None:
        set_last_error(WSA_IO_PENDING)
        return SOCKET_ERROR
    if lpNumberOfBytesRecvd is not None:
        lpNumberOfBytesRecvd.value = count
    lpFlags.value = 0  # stream sockets never report MSG_PARTIAL
    set_last_error(0)
    return 0


def _WSASend(
    s: int,
    lpBuffers: Any,
    dwBufferCount: int,
    lpNumberOfBytesSent: Ref[int] | None,
    dwFlags: int,
    lpOverlapped: Any,
    lpCompletionRoutine: WsaRoutine | None,
) -> int:
    """[MS:WSASend] -> core ``Socket.send_op``.

    ``*lpNumberOfBytesSent`` is written only when the send finished inside the call (untouched
    when pending or failing [W:ws2_32/socket.c:WS2_sendto]); success sets the last error to 0.
    """
    if (
        lpOverlapped.__class__ is OVERLAPPED
        and not lpOverlapped.hEvent
        and dwBufferCount == 1
        and not dwFlags
        and lpCompletionRoutine is None
        and lpBuffers.__class__ is list
        and len(lpBuffers) == 1
        and (lpNumberOfBytesSent is None or lpNumberOfBytesSent.__class__ is Ref)
    ):
        # The hot shape inlined, as in WSARecv: ``Socket.start_write``.
        try:
            sock = _handle_entry(s)[0]
        except TypeError:
            sock = None
        if sock.__class__ is Socket and sock.overlapped:
            lpOverlapped.event = None
            lpOverlapped.skip_port = False
            try:
                done = sock.start_write(lpBuffers[0], lpOverlapped)
            except Win32Error as exc:
                return _wsa_fail(exc)
            ts = current_thread_state()
            if not done:
                ts.last_error = WSA_IO_PENDING
                return SOCKET_ERROR
            if lpNumberOfBytesSent is not None:
                lpNumberOfBytesSent.value = lpOverlapped.information
            ts.last_error = 0
            return 0
    try:
        _out(lpNumberOfBytesSent, "lpNumberOfBytesSent")
        count = _wsa_io(False, s, lpBuffers, dwBufferCount, dwFlags, lpOverlapped,
                        lpCompletionRoutine)  # fmt: skip
    except Win32Error as exc:
        return _wsa_fail(exc)
    if count is None:
        set_last_error(WSA_IO_PENDING)
        return SOCKET_ERROR
    if lpNumberOfBytesSent is not None:
        lpNumberOfBytesSent.value = count
    set_last_error(0)
    return 0


#: [MS:WSARecv] / [MS:WSASend] / [MS:WSAGetLastError]: the C accelerator's (``_fastwsa.c``) when
#: it was built - the hot shape of ``_WSARecv`` / ``_WSASend`` (a plain overlapped Socket handle,
#: one buffer, no flags, an OVERLAPPED without hEvent, no routine) in one call, every other call
#: by the Python function, which stays the reference (``_accel.use(False)`` sends every call to
#: it). A Win32-style echo's C=1 round trip: 43.5K -> 38.3K instructions (callgrind).
WSARecv = _WSARecv
WSASend = _WSASend
WSAGetLastError = _WSAGetLastError
if _fastio is not None:
    WSARecv, WSASend, WSAGetLastError = _fastio.configure_wsa(
        _WSARecv, _WSASend, _WSAGetLastError, Socket, OVERLAPPED, Ref, ThreadState,
        _handle_entry, _tls, current_thread_state, _wsa_fail, Win32Error, WSA_IO_PENDING,
        SOCKET_ERROR,
    )  # fmt: skip
    _accel.register(_fastio.wsa_set_enabled)


def _bool_call(op_of: Callable[[], Any], lpCount: Ref[int] | None, ov: Overlapped) -> bool:
    if lpCount is not None:
        lpCount.value = 0
    try:
        status = start(op_of())
    except Win32Error as exc:
        _wsa_fail(exc)
        return False
    if status == STATUS_PENDING:
        set_last_error(WSA_IO_PENDING)
        return False
    if lpCount is not None:
        lpCount.value = ov.information
    return True


def AcceptEx(
    sListenSocket: int,
    sAcceptSocket: int,
    lpOutputBuffer: Any,
    dwReceiveDataLength: int,
    dwLocalAddressLength: int,
    dwRemoteAddressLength: int,
    lpdwBytesReceived: Ref[int] | None,
    lpOverlapped: Any,
) -> bool:
    """[MS:AcceptEx] -> core ``Socket.start_accept`` into the pre-created ``sAcceptSocket``.

    ``lpOutputBuffer`` receives the first data, then the local and the remote address areas
    (read them with GetAcceptExSockaddrs). Errors at once, no notification
    [W:ws2_32/sock.c:test_AcceptEx]: WSAENOTSOCK for a bad handle; ERROR_INVALID_PARAMETER
    without an OVERLAPPED; WSAEINVAL when the listener is not listening or the accept socket is
    UDP, bound, connected or already being accepted into; WSAEFAULT for no buffer or a remote
    area of 0. An area too small for its address fails the request with
    ERROR_INSUFFICIENT_BUFFER once a client connects (the client is not accepted). Internal is
    STATUS_PENDING after any call, failed ones included (ws2_32 writes it first).
    """
    if isinstance(lpOverlapped, Overlapped):
        lpOverlapped.status = STATUS_PENDING
    try:
        listener, target = _sock(sListenSocket), _sock(sAcceptSocket)
        ov = bind_overlapped(lpOverlapped)
        if ov is None:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "AcceptEx needs an OVERLAPPED")
        done = listener.start_accept(
            target, ov, lpOutputBuffer, receive_size=dwReceiveDataLength,
            address_sizes=(dwLocalAddressLength, dwRemoteAddressLength),
        )  # fmt: skip
    except Win32Error as exc:
        # *lpdwBytesReceived stays untouched by a parameter check, is 0 once issued.
        if isinstance(exc, IoError) and lpdwBytesReceived is not None:
            lpdwBytesReceived.value = 0
        _wsa_fail(exc)
        return False
    if lpdwBytesReceived is not None:
        lpdwBytesReceived.value = ov.information if done else 0
    if not done:
        set_last_error(WSA_IO_PENDING)
    return done


def ConnectEx(
    s: int,
    name: Any,
    lpSendBuffer: Any,
    dwSendDataLength: int,
    lpdwBytesSent: Ref[int] | None,
    lpOverlapped: Any,
) -> bool:
    """[MS:ConnectEx] -> core ``Socket.connect_op`` (the socket must be bound)."""
    try:
        sock = _sock(s)
        ov = bind_overlapped(lpOverlapped)
        if ov is None:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "ConnectEx needs an OVERLAPPED")
        ov.status = STATUS_PENDING  # a ConnectEx failing at once leaves Internal pending
        check_not_accepting(sock)
        check_connectable(sock, True)
        data = as_buffers(lpSendBuffer, dwSendDataLength, False)[0] if lpSendBuffer else None
    except Win32Error as exc:
        _wsa_fail(exc)
        return False
    mode_of(sock).connected_by_ex = True
    return _bool_call(lambda: sock.connect_op(name, ov, data), lpdwBytesSent, ov)


def WSAGetOverlappedResult(
    s: int, lpOverlapped: Any, lpcbTransfer: Ref[int], fWait: bool, lpdwFlags: Ref[int] | None
) -> bool:
    """[MS:WSAGetOverlappedResult] -> core ``get_overlapped_result``. The socket is checked
    first (WSAENOTSOCK); a failed request's status is reported through Winsock's own table
    (``_wsa_status``) [W:ws2_32/sock.c:test_WSAGetOverlappedResult]."""
    try:
        sock = _sock(s)
        ov = bind_overlapped(lpOverlapped)
        assert ov is not None
        must_wait = ov.pending and ov.event is None and fWait
        waitable: FileObject | None = sock if must_wait else None
        count, _ = get_overlapped_result(ov, waitable, seconds(0xFFFFFFFF if fWait else 0), False)
    except IoError as exc:
        lpcbTransfer.value = exc.bytes_transferred
        set_last_error(wsa_error_of_status(lpOverlapped.status))
        return False
    except Win32Error as exc:
        _wsa_fail(exc)
        return False
    lpcbTransfer.value = count
    if lpdwFlags is not None:
        lpdwFlags.value = 0
    status = ov.status  # Windows 10 1809+ reports a success status's own code
    set_last_error(0 if status == STATUS_PENDING else wsa_error_of_status(status))
    return True
