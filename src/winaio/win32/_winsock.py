"""Win32 aliases: Winsock's sockets - creation, the blocking calls (connect, accept, send, recv...),
the last error and the mapping of errors to WSA* codes.

Sockets are file objects (``winaio._io._sockets.Socket``): their handles work with ReadFile,
CreateIoCompletionPort, CancelIoEx and the completion modes. Plain calls (connect, accept, send,
recv) block like Winsock's default blocking sockets, through synchronous requests. The overlapped
requests (WSARecv, WSASend, AcceptEx, ConnectEx, WSAGetOverlappedResult) are
``_winsock_overlapped``; the datagram calls and Microsoft's extensions ``_winsock_ext``.

WSAGetLastError() is GetLastError() (one per-thread value, as on Windows); Winsock functions
report WSA* codes: ERROR_NETNAME_DELETED reads as WSAECONNRESET, ERROR_INVALID_HANDLE as
WSAENOTSOCK [MS:Windows Sockets Error Codes] (:func:`_wsa_fail`, shared by the sibling modules).
"""

from __future__ import annotations

import errno as _errno
import socket as _socket
from collections.abc import Callable
from typing import Any

from .._io._netevents import inherit_modes, run_socket_call
from .._io._overlapped import Overlapped
from .._io._requests import as_buffers
from .._io._sockets import Socket, create_socket
from .._io._stream_ops import AcceptOp, ConnectOp, StreamReadOp, StreamWriteOp
from .._io._sync import run_sync
from .._io._winsock_ext import (
    check_connectable,
    check_not_accepting,
    shutdown_socket,
)
from .._kernel._handles import HANDLE_TABLE
from .._kernel._threads import current_thread_state
from ..codes import WinError, ntstatus_to_winerror
from ..errors import Win32Error
from ._base import fail, set_last_error

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
