"""Win32 aliases: the Winsock subset used with overlapped I/O (WSARecv, WSASend, AcceptEx...).

Sockets are file objects (``winaio._io._sockets.Socket``): their handles work with ReadFile,
CreateIoCompletionPort, CancelIoEx and the completion modes. Plain calls (connect, accept, send,
recv) block like Winsock's default blocking sockets, through synchronous requests.

WSAGetLastError() is GetLastError() (one per-thread value, as on Windows); Winsock functions
report WSA* codes: ERROR_NETNAME_DELETED reads as WSAECONNRESET, ERROR_INVALID_HANDLE as
WSAENOTSOCK [MS:Windows Sockets Error Codes].
"""

from __future__ import annotations

import errno as _errno
import socket as _socket
from collections.abc import Callable
from typing import Any

from .._io import _accel
from .._io._files import FileObject
from .._io._issue import run_sync, start
from .._io._netevents import inherit_modes, mode_of, run_socket_call
from .._io._ops import AcceptOp, ConnectOp, StreamReadOp, StreamWriteOp
from .._io._overlapped import STATUS_PENDING, Overlapped, get_overlapped_result
from .._io._requests import as_buffers
from .._io._sockets import Socket, create_socket
from .._io._winsock_ext import (
    check_connectable,
    check_not_accepting,
    shutdown_socket,
)
from .._kernel._dispatcher import ThreadState
from .._kernel._handles import HANDLE_TABLE
from .._kernel._threads import _tls, current_thread_state
from ..codes import WinError, ntstatus_to_winerror
from ..errors import IoError, Win32Error
from ._base import Ref, fail, seconds, set_last_error
from ._base import handle_entry as _handle_entry
from ._io import OVERLAPPED, bind_overlapped
from ._wsa_status import wsa_error_of_status

try:
    from .._io import _fastio
except ImportError:  # not built (no C compiler): the Python functions run
    _fastio = None  # type: ignore[assignment]

__all__ = [
    "AF_INET",
    "AF_INET6",
    "AF_UNIX",
    "INVALID_SOCKET",
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "SD_BOTH",
    "SD_RECEIVE",
    "SD_SEND",
    "SOCKET_ERROR",
    "SOCK_DGRAM",
    "SOCK_STREAM",
    "SOL_SOCKET",
    "SOMAXCONN",
    "WSAECONNREFUSED",
    "WSAECONNRESET",
    "WSAEFAULT",
    "WSAEINVAL",
    "WSAENOTSOCK",
    "WSAEWOULDBLOCK",
    "WSA_FLAG_OVERLAPPED",
    "WSA_IO_INCOMPLETE",
    "WSA_IO_PENDING",
    "WSA_OPERATION_ABORTED",
    "AcceptEx",
    "ConnectEx",
    "WSAGetLastError",
    "WSAGetOverlappedResult",
    "WSARecv",
    "WSASend",
    "WSASetLastError",
    "WSASocket",
    "WSASocketW",
    "accept",
    "bind",
    "closesocket",
    "connect",
    "getpeername",
    "getsockname",
    "listen",
    "recv",
    "send",
    "shutdown",
    "socket",
]

AF_INET, AF_INET6, AF_UNIX = _socket.AF_INET, _socket.AF_INET6, _socket.AF_UNIX
SOCK_STREAM, SOCK_DGRAM = _socket.SOCK_STREAM, _socket.SOCK_DGRAM
IPPROTO_TCP, IPPROTO_UDP = _socket.IPPROTO_TCP, _socket.IPPROTO_UDP
SOL_SOCKET = _socket.SOL_SOCKET
SOMAXCONN = _socket.SOMAXCONN
SD_RECEIVE, SD_SEND, SD_BOTH = 0, 1, 2
INVALID_SOCKET = -1
SOCKET_ERROR = -1
WSA_FLAG_OVERLAPPED = 0x01
WSA_IO_PENDING = 997
WSA_IO_INCOMPLETE = 996
WSA_OPERATION_ABORTED = 995
WSAEFAULT = 10014
WSAEINVAL = 10022
WSAEWOULDBLOCK = 10035
WSAENOTSOCK = 10038
WSAECONNRESET = 10054
WSAECONNREFUSED = 10061

_ERRNO_WSA = {
    _errno.EINVAL: WSAEINVAL,
    _errno.EBADF: WSAENOTSOCK,
    _errno.EFAULT: WSAEFAULT,
    _errno.EAGAIN: WSAEWOULDBLOCK,
    _errno.EINPROGRESS: 10036,
    _errno.EALREADY: 10037,
    _errno.EMSGSIZE: 10040,
    _errno.EAFNOSUPPORT: 10047,
    _errno.EADDRINUSE: 10048,
    _errno.EADDRNOTAVAIL: 10049,
    _errno.ENETUNREACH: 10051,
    _errno.EOPNOTSUPP: 10045,
    _errno.ECONNABORTED: 10053,
    _errno.ECONNRESET: WSAECONNRESET,
    _errno.EISCONN: 10056,
    _errno.ENOTCONN: 10057,
    _errno.ESHUTDOWN: 10058,
    _errno.ETIMEDOUT: 10060,
    _errno.ECONNREFUSED: WSAECONNREFUSED,
    _errno.EPIPE: 10058,
}
_WIN_WSA: dict[int, int] = {
    WinError.ERROR_NETNAME_DELETED: WSAECONNRESET,
    WinError.ERROR_INVALID_HANDLE: WSAENOTSOCK,
    WinError.ERROR_CONNECTION_REFUSED: WSAECONNREFUSED,
    WinError.ERROR_CONNECTION_ABORTED: 10053,
    WinError.ERROR_BROKEN_PIPE: 10058,
    WinError.ERROR_PIPE_NOT_CONNECTED: 10057,
    WinError.ERROR_CONNECTION_ACTIVE: 10056,
    WinError.ERROR_NETWORK_UNREACHABLE: 10051,
    WinError.ERROR_HOST_UNREACHABLE: 10065,
    WinError.ERROR_ADDRESS_ALREADY_ASSOCIATED: 10048,
    WinError.ERROR_CANT_WAIT: WSAEWOULDBLOCK,  # a non-blocking socket's call would wait
    WinError.ERROR_SEM_TIMEOUT: 10060,  # SO_RCVTIMEO / SO_SNDTIMEO elapsed: WSAETIMEDOUT
    WinError.ERROR_MORE_DATA: 10040,  # a datagram larger than the buffers: WSAEMSGSIZE
    WinError.ERROR_NOT_SUPPORTED: 10045,  # STATUS_NOT_SUPPORTED: WSAEOPNOTSUPP
}

WsaRoutine = Callable[[int, int, Any, int], object]
_INVALID_PARAMETER = 0xC000000D  # STATUS_INVALID_PARAMETER


def _wsa_fail(exc: BaseException) -> int:
    """Record the WSA error for ``exc`` and return SOCKET_ERROR."""
    if isinstance(exc, Win32Error):
        code = _WIN_WSA.get(exc.winerror, exc.winerror)
    elif isinstance(exc, OSError):
        code = _ERRNO_WSA.get(exc.errno or 0, 10022)
    else:
        code = 10022
    set_last_error(code)
    return SOCKET_ERROR


def _sock(handle: int) -> Socket:
    return HANDLE_TABLE.get(handle, Socket, pseudo=False)


def _WSAGetLastError() -> int:
    """[MS:WSAGetLastError]: the thread's last error (the same value as GetLastError)."""
    return current_thread_state().last_error


def WSASetLastError(iError: int) -> None:
    """[MS:WSASetLastError]."""
    set_last_error(iError)


def WSASocket(
    af: int, type: int, protocol: int, lpProtocolInfo: object, g: int, dwFlags: int
) -> int:
    """[MS:WSASocketW] -> core ``create_socket``; overlapped only with WSA_FLAG_OVERLAPPED."""
    try:
        sock = create_socket(af, type, protocol, overlapped=bool(dwFlags & WSA_FLAG_OVERLAPPED))
    except Win32Error as exc:
        fail(exc)
        return INVALID_SOCKET
    return HANDLE_TABLE.insert(sock)


WSASocketW = WSASocket


def socket(af: int, type: int, protocol: int) -> int:
    """[MS:socket] -> core ``create_socket`` (socket() handles are overlapped on Windows)."""
    return WSASocket(af, type, protocol, None, 0, WSA_FLAG_OVERLAPPED)


def _call(handle: int, method: str, *args: Any) -> Any:
    try:
        return getattr(_sock(handle), method)(*args)
    except (Win32Error, OSError) as exc:
        return _wsa_fail(exc)


def bind(s: int, name: Any) -> int:
    """[MS:bind] -> core ``Socket.bind``; 0 or SOCKET_ERROR."""
    result = _call(s, "bind", name)
    return 0 if result is None else int(result)


def listen(s: int, backlog: int) -> int:
    """[MS:listen] -> core ``Socket.listen``; 0 or SOCKET_ERROR. An unbound socket is
    WSAEINVAL (Linux would bind it to an ephemeral port), a datagram one WSAEOPNOTSUPP
    [W:ws2_32/sock.c:test_listen]."""
    try:
        sock = _sock(s)
        py = sock.sock
        if py is not None and py.type == _socket.SOCK_STREAM and not _bound(py):
            raise Win32Error(WSAEINVAL, "listen on an unbound socket")
        sock.listen(backlog)
    except (Win32Error, OSError) as exc:
        return _wsa_fail(exc)
    return 0


def _bound(py: _socket.socket) -> bool:
    try:
        name = py.getsockname()
    except OSError:
        return False
    return not isinstance(name, tuple) or name[1] != 0


def shutdown(s: int, how: int) -> int:
    """[MS:shutdown] -> core ``shutdown_socket``; 0 or SOCKET_ERROR. WSAENOTCONN for an
    unconnected stream socket or a listener, WSAEINVAL for another ``how``; unconnected datagram
    sockets shut down fine. After SD_RECEIVE new receives fail WSAESHUTDOWN while those already
    pending complete with the data that arrives [W:ws2_32/sock.c:test_shutdown].

    Deviation: data arriving after SD_RECEIVE does not reset the connection (Windows resets it
    when no receive is pending); Linux has no such mode, so the data is kept and the peer sees
    no reset.
    """
    try:
        shutdown_socket(_sock(s), how)
    except (Win32Error, OSError) as exc:
        return _wsa_fail(exc)
    return 0


def getsockname(s: int) -> Any:
    """[MS:getsockname] -> core ``Socket.getsockname``; SOCKET_ERROR on failure: WSAEINVAL for
    an unbound socket (Linux reports the wildcard address with port 0)
    [W:ws2_32/sock.c:test_getsockname]."""
    try:
        sock = _sock(s)
        name = sock.getsockname()
        if isinstance(name, tuple) and name[1] == 0:
            raise Win32Error(WSAEINVAL, "the socket is not bound")
    except (Win32Error, OSError) as exc:
        return _wsa_fail(exc)
    set_last_error(0)
    return name


def getpeername(s: int) -> Any:
    """[MS:getpeername] -> core ``Socket.getpeername``; SOCKET_ERROR on failure. A socket
    that was shut down still answers with its peer once the connection has closed
    [W:ws2_32/sock.c:test_shutdown]."""
    try:
        sock = _sock(s)
        try:
            return sock.getpeername()
        except OSError as exc:
            mode = sock.winsock
            if exc.errno == _errno.ENOTCONN and mode is not None and mode.peer is not None:
                return mode.peer
            raise
    except (Win32Error, OSError) as exc:
        return _wsa_fail(exc)


def closesocket(s: int) -> int:
    """[MS:closesocket] -> core ``HandleTable.close`` (pending requests are aborted)."""
    try:
        _sock(s)
        HANDLE_TABLE.close(s)
    except Win32Error as exc:
        return _wsa_fail(exc)
    return 0


def _sync(op: Any) -> int:
    # Winsock's blocking calls wait alertably (APCs run, the call goes on) [W:ws2_32/sock.c:
    # test_accept]; sockets with modes (FIONBIO, time-outs, WSAEventSelect) go through
    # _netevents.
    status, information = run_sync(op, True) if op.file.winsock is None else run_socket_call(op)
    if status:
        # STATUS_INVALID_PARAMETER is WSAEINVAL to Winsock (recv(MSG_OOB) on an SO_OOBINLINE
        # socket [W:ws2_32/sock.c:test_select]), not ERROR_INVALID_PARAMETER.
        raise Win32Error(
            WSAEINVAL if status == _INVALID_PARAMETER else ntstatus_to_winerror(status)
        )
    return information


def connect(s: int, name: Any) -> int:
    """[MS:connect] (blocking) -> core ``ConnectOp`` run synchronously; 0 or SOCKET_ERROR."""
    try:
        sock = _sock(s)
        check_not_accepting(sock)
        check_connectable(sock, False)
        _sync(ConnectOp(sock, Overlapped(), name, None))
    except Win32Error as exc:
        return _wsa_fail(exc)
    return 0


def accept(s: int) -> int:
    """[MS:accept] (blocking) -> core ``AcceptOp`` into a new socket; INVALID_SOCKET on failure.
    The new socket has the listener's options, time-outs and blocking mode
    [W:ws2_32/sock.c:test_accept_inheritance] and its WSAEventSelect association (the same
    event and events [MS:accept]). The wait is alertable (APCs run, the call goes on)
    [W:ws2_32/sock.c:test_accept]."""
    try:
        listener = _sock(s)
        sock = listener.sock
        assert sock is not None
        new = create_socket(sock.family, sock.type, sock.proto)
        _sync(AcceptOp(listener, new, Overlapped(), None))
        inherit_modes(listener, new)
    except Win32Error as exc:
        _wsa_fail(exc)
        return INVALID_SOCKET
    return HANDLE_TABLE.insert(new)


def send(s: int, buf: Any, flags: int) -> int:
    """[MS:send] (blocking) -> core ``StreamWriteOp`` run synchronously; bytes or SOCKET_ERROR.
    The wait is alertable (APCs run, the call goes on).

    Deviation: on a non-blocking socket Linux may take part of a large send; send then returns
    that count (which [MS:send] allows) where Windows buffers the whole send or refuses it with
    WSAEWOULDBLOCK [W:ws2_32/sock.c:test_send_buffering].
    """
    try:
        return _sync(
            StreamWriteOp(_sock(s), Overlapped(), as_buffers(buf, None, False), None, flags)
        )
    except Win32Error as exc:
        return _wsa_fail(exc)


def recv(s: int, buf: Any, len: int, flags: int) -> int:
    """[MS:recv] (blocking) -> core ``StreamReadOp`` run synchronously: fills the first ``len``
    bytes of the caller's writable buffer ``buf``; returns the byte count (0 after a graceful
    close) or SOCKET_ERROR. The wait is alertable (APCs run, the call goes on).

    Deviation: after a MSG_OOB read, enabling SO_OOBINLINE makes Linux deliver the next urgent
    byte twice in the normal stream (a kernel quirk Wine's test_select works around); Windows
    delivers it once.
    """
    try:
        views = as_buffers(buf, len, True)
        return _sync(StreamReadOp(_sock(s), Overlapped(), views, None, flags))
    except Win32Error as exc:
        return _wsa_fail(exc)


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
