"""Win32 aliases: the rest of the Winsock surface an overlapped server uses - datagrams
(WSASendTo/WSARecvFrom, sendto/recvfrom), the Microsoft extensions (DisconnectEx, TransmitFile,
GetAcceptExSockaddrs and WSAIoctl's SIO_GET_EXTENSION_FUNCTION_POINTER), socket options,
ioctlsocket, WSAEventSelect and its WSA*Event helpers, and select.

Conventions as in ``_winsock``: handles are socket handles, addresses Python tuples (as for
bind/connect), WSA error codes through WSAGetLastError. The core is ``winaio._io._winsock_ext``
(requests), ``_sockopts`` (options) and ``_netevents`` (modes, network events, select).
"""

from __future__ import annotations

import socket as _socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._io._files import FileObject, start
from .._io._netevents import (
    FD_ACCEPT,
    FD_CLOSE,
    FD_CONNECT,
    FD_OOB,
    FD_READ,
    FD_WRITE,
    event_select,
    select_sockets,
    take_network_events,
)
from .._io._overlapped import STATUS_PENDING, Overlapped
from .._io._sockopts import (
    SO_ACCEPTCONN,
    SO_BROADCAST,
    SO_DEBUG,
    SO_DONTLINGER,
    SO_DONTROUTE,
    SO_ERROR,
    SO_EXCLUSIVEADDRUSE,
    SO_KEEPALIVE,
    SO_LINGER,
    SO_OOBINLINE,
    SO_RCVBUF,
    SO_RCVTIMEO,
    SO_REUSEADDR,
    SO_SNDBUF,
    SO_SNDTIMEO,
    SO_TYPE,
    SO_UPDATE_ACCEPT_CONTEXT,
    SO_UPDATE_CONNECT_CONTEXT,
    TCP_NODELAY,
    bytes_readable,
    get_option,
    set_nonblocking,
    set_option,
)
from .._io._streams import Socket
from .._io._winsock_ext import (
    TF_DISCONNECT,
    TF_REUSE_SOCKET,
    DisconnectOp,
    ImmediateOp,
    RecvFromOp,
    SendToOp,
    TransmitFileOp,
    decode_sockaddr,
    is_connected,
    sockaddr_size,
)
from .._kernel._handles import HANDLE_TABLE
from .._kernel._objects import Event
from ..codes import WinError, ntstatus_to_winerror
from ..errors import Win32Error
from ._base import Ref, set_last_error
from ._io import bind_overlapped
from ._sync import CloseHandle, CreateEvent, ResetEvent, SetEvent, WaitForMultipleObjectsEx
from ._winsock import (
    SOCKET_ERROR,
    WSA_IO_PENDING,
    AcceptEx,
    ConnectEx,
    WsaRoutine,
    _routine,
    _sock,
    _sync,
    _wsa_fail,
    _wsabufs,
)

__all__ = [
    "FD_ACCEPT",
    "FD_CLOSE",
    "FD_CONNECT",
    "FD_MAX_EVENTS",
    "FD_OOB",
    "FD_READ",
    "FD_WRITE",
    "FIONBIO",
    "FIONREAD",
    "MSG_OOB",
    "MSG_PARTIAL",
    "MSG_PEEK",
    "SIO_GET_EXTENSION_FUNCTION_POINTER",
    "SOL_SOCKET_WINSOCK",
    "SO_ACCEPTCONN",
    "SO_BROADCAST",
    "SO_DEBUG",
    "SO_DONTLINGER",
    "SO_DONTROUTE",
    "SO_ERROR",
    "SO_EXCLUSIVEADDRUSE",
    "SO_KEEPALIVE",
    "SO_LINGER",
    "SO_OOBINLINE",
    "SO_RCVBUF",
    "SO_RCVTIMEO",
    "SO_REUSEADDR",
    "SO_SNDBUF",
    "SO_SNDTIMEO",
    "SO_TYPE",
    "SO_UPDATE_ACCEPT_CONTEXT",
    "SO_UPDATE_CONNECT_CONTEXT",
    "TCP_NODELAY",
    "TF_DISCONNECT",
    "TF_REUSE_SOCKET",
    "TF_USE_DEFAULT_WORKER",
    "TF_USE_KERNEL_APC",
    "TF_USE_SYSTEM_THREAD",
    "TF_WRITE_BEHIND",
    "WSAEADDRINUSE",
    "WSAEDESTADDRREQ",
    "WSAEISCONN",
    "WSAEMSGSIZE",
    "WSANOTINITIALISED",
    "WSAVERNOTSUPPORTED",
    "WSAENOPROTOOPT",
    "WSAENOTCONN",
    "WSAEOPNOTSUPP",
    "WSAESHUTDOWN",
    "WSAETIMEDOUT",
    "WSAID_ACCEPTEX",
    "WSAID_CONNECTEX",
    "WSAID_DISCONNECTEX",
    "WSAID_GETACCEPTEXSOCKADDRS",
    "WSAID_TRANSMITFILE",
    "WSA_INFINITE",
    "WSA_INVALID_EVENT",
    "WSA_MAXIMUM_WAIT_EVENTS",
    "WSA_WAIT_EVENT_0",
    "WSA_WAIT_FAILED",
    "WSA_WAIT_IO_COMPLETION",
    "WSA_WAIT_TIMEOUT",
    "LINGER",
    "TIMEVAL",
    "TRANSMIT_FILE_BUFFERS",
    "WSADATA",
    "WSANETWORKEVENTS",
    "DisconnectEx",
    "FD_ISSET",
    "GetAcceptExSockaddrs",
    "TransmitFile",
    "WSACleanup",
    "WSACloseEvent",
    "WSACreateEvent",
    "WSAEnumNetworkEvents",
    "WSAEventSelect",
    "WSAIoctl",
    "WSARecvFrom",
    "WSAResetEvent",
    "WSASendTo",
    "WSASetEvent",
    "WSAStartup",
    "WSAWaitForMultipleEvents",
    "getsockopt",
    "ioctlsocket",
    "recvfrom",
    "select",
    "sendto",
    "setsockopt",
]

SOL_SOCKET_WINSOCK = 0xFFFF
FD_MAX_EVENTS = 10
FIONBIO = 0x8004667E
FIONREAD = 0x4004667F
SIO_GET_EXTENSION_FUNCTION_POINTER = 0xC8000006
MSG_OOB, MSG_PEEK, MSG_PARTIAL = 0x1, 0x2, 0x8000
TF_WRITE_BEHIND, TF_USE_DEFAULT_WORKER, TF_USE_SYSTEM_THREAD, TF_USE_KERNEL_APC = 0x4, 0, 0x10, 0x20
WSAEOPNOTSUPP = 10045
WSAEMSGSIZE = 10040
WSAEDESTADDRREQ = 10039
WSAENOPROTOOPT = 10042
WSAEADDRINUSE = 10048
WSAEISCONN = 10056
WSAENOTCONN = 10057
WSAESHUTDOWN = 10058
WSAETIMEDOUT = 10060
WSA_INVALID_EVENT = 0
WSAVERNOTSUPPORTED = 10092
WSANOTINITIALISED = 10093
WSA_MAXIMUM_WAIT_EVENTS = 64
WSA_INFINITE = 0xFFFFFFFF
WSA_WAIT_EVENT_0 = 0
WSA_WAIT_IO_COMPLETION = 0xC0
WSA_WAIT_TIMEOUT = 258
WSA_WAIT_FAILED = 0xFFFFFFFF
_WSAEFAULT, _WSAEINVAL = 10014, 10022
_TF_KNOWN = (
    TF_DISCONNECT | TF_REUSE_SOCKET | TF_WRITE_BEHIND | TF_USE_SYSTEM_THREAD | (TF_USE_KERNEL_APC)
)

WSAID_ACCEPTEX = uuid.UUID("b5367df1-cbac-11cf-95ca-00805f48a192")
WSAID_CONNECTEX = uuid.UUID("25a207b9-ddf3-4660-8ee9-76e58c74063e")
WSAID_DISCONNECTEX = uuid.UUID("7fda2e11-8630-436f-a031-f536a6eec157")
WSAID_TRANSMITFILE = uuid.UUID("b5367df0-cbac-11cf-95ca-00805f48a192")
WSAID_GETACCEPTEXSOCKADDRS = uuid.UUID("b5367df2-cbac-11cf-95ca-00805f48a192")


@dataclass
class TRANSMIT_FILE_BUFFERS:  # noqa: N801 - the Win32 structure name
    """[MS:TRANSMIT_FILE_BUFFERS]: bytes sent before and after the file."""

    Head: Any = None
    HeadLength: int = 0
    Tail: Any = None
    TailLength: int = 0


@dataclass
class LINGER:
    """[MS:linger]: SO_LINGER's value."""

    l_onoff: int = 0
    l_linger: int = 0


@dataclass
class TIMEVAL:
    """[MS:timeval]: select's time-out."""

    tv_sec: int = 0
    tv_usec: int = 0


@dataclass
class WSANETWORKEVENTS:
    """[MS:WSANETWORKEVENTS]: the recorded FD_* bits and an error code per FD_*_BIT."""

    lNetworkEvents: int = 0
    iErrorCode: list[int] = field(default_factory=lambda: [0] * FD_MAX_EVENTS)


@dataclass
class WSADATA:
    """[MS:WSADATA]: what WSAStartup reports."""

    wVersion: int = 0
    wHighVersion: int = 0
    szDescription: str = ""
    szSystemStatus: str = ""


_startups = [0]


def WSAStartup(wVersionRequested: int, lpWSAData: WSADATA | None) -> int:
    """[MS:WSAStartup]: returns 0 or the error code itself (not through WSAGetLastError).
    Versions 1.0 to 2.2 are accepted (higher ones get 2.2); below 1.0 -> WSAVERNOTSUPPORTED;
    no WSADATA -> WSAEFAULT. Every Winsock function works without it (there is no library to
    load); the count is kept for WSACleanup."""
    major, minor = wVersionRequested & 0xFF, (wVersionRequested >> 8) & 0xFF
    if lpWSAData is None:
        return _WSAEFAULT
    lpWSAData.wHighVersion = 0x0202
    lpWSAData.szDescription = "WinSock 2.0"
    lpWSAData.szSystemStatus = "Running"
    if major < 1:
        lpWSAData.wVersion = 0x0202
        return WSAVERNOTSUPPORTED
    lpWSAData.wVersion = 0x0202 if (major, minor) > (2, 2) else wVersionRequested & 0xFFFF
    _startups[0] += 1
    return 0


def WSACleanup() -> int:
    """[MS:WSACleanup]: 0, or SOCKET_ERROR with WSANOTINITIALISED without a matching
    WSAStartup [W:ws2_32/sock.c:test_WithoutWSAStartup].

    Deviation: the last WSACleanup does not close the process's sockets (Windows does,
    [W:ws2_32/sock.c:test_WithWSAStartup]); they stay usable file objects.
    """
    if _startups[0] <= 0:
        set_last_error(WSANOTINITIALISED)
        return SOCKET_ERROR
    _startups[0] -= 1
    return 0


# ---------------------------------------------------------------------- datagrams


def _issue(
    sock: Socket,
    make: Callable[[Overlapped, Any], Any],
    lpOverlapped: Any,
    lpCompletionRoutine: WsaRoutine | None,
) -> int | None:
    """Issue a request: the byte count when it finished inside the call, None when it pends.

    Raises:
        Win32Error: it failed at once (no notification).
    """
    ov = bind_overlapped(lpOverlapped)
    if ov is None or not sock.overlapped:
        return _sync(make(Overlapped(), None))
    routine = None
    if lpCompletionRoutine is not None:
        if sock.port is not None:
            raise Win32Error(_WSAEINVAL, "completion routine on a port-bound socket")
        routine = _routine(lpCompletionRoutine)
    status = start(make(ov, routine))
    if status == STATUS_PENDING:
        return None
    if status:
        raise Win32Error(ntstatus_to_winerror(status))
    count: int = ov.information
    return count


def _destination(sock: Socket, lpTo: Any, iTolen: int) -> Any:
    py = sock.sock
    assert py is not None
    if py.type == _socket.SOCK_STREAM:
        return None  # ignored on connection-oriented sockets [MS:WSASendTo]
    if lpTo is None:
        if not is_connected(py):
            raise Win32Error(WSAEDESTADDRREQ, "no destination address")
        return None
    if iTolen < sockaddr_size(py.family):
        raise Win32Error(_WSAEFAULT, f"iTolen {iTolen} is smaller than the address")
    return lpTo


def WSASendTo(
    s: int,
    lpBuffers: Any,
    dwBufferCount: int,
    lpNumberOfBytesSent: Ref[int] | None,
    dwFlags: int,
    lpTo: Any,
    iTolen: int,
    lpOverlapped: Any,
    lpCompletionRoutine: WsaRoutine | None,
) -> int:
    """[MS:WSASendTo] -> core ``SendToOp`` (a datagram to ``lpTo``, an address tuple).

    As WSASend; besides [W:ws2_32/sock.c:test_WSASendTo]: a NULL ``lpNumberOfBytesSent`` without
    an OVERLAPPED is WSAEFAULT; the first send binds an unbound socket; ``iTolen`` smaller than the
    family's SOCKADDR is WSAEFAULT; no destination on an unconnected datagram socket is
    WSAEDESTADDRREQ. ``lpTo`` is ignored on stream sockets.
    """
    try:
        sock = _sock(s)
        if lpOverlapped is None and lpNumberOfBytesSent is None:
            raise Win32Error(_WSAEFAULT, "lpNumberOfBytesSent is NULL")
        views = _wsabufs(lpBuffers, dwBufferCount, False)
        address = _destination(sock, lpTo, iTolen)

        def make(ov: Overlapped, routine: Any) -> SendToOp:
            return SendToOp(sock, ov, views, address, dwFlags, routine)

        count = _issue(sock, make, lpOverlapped, lpCompletionRoutine)
    except Win32Error as exc:
        return _wsa_fail(exc)
    if count is None:
        set_last_error(WSA_IO_PENDING)
        return SOCKET_ERROR
    if lpNumberOfBytesSent is not None:
        lpNumberOfBytesSent.value = count
    set_last_error(0)
    return 0


def _address_sink(
    sock: Socket, lpFrom: Ref[Any] | None, lpFromlen: Ref[int] | None
) -> Callable[[Any, int], None]:
    py = sock.sock
    assert py is not None
    size = sockaddr_size(py.family)
    if lpFrom is not None and (lpFromlen is None or lpFromlen.value < size):
        raise Win32Error(_WSAEFAULT, "lpFromlen is NULL or smaller than the address")

    def sink(address: Any, _flags: int) -> None:
        if lpFrom is not None and lpFromlen is not None and address is not None:
            lpFrom.value = address
            lpFromlen.value = size

    return sink


def _check_receivable(sock: Socket) -> None:
    py = sock.sock
    assert py is not None
    if py.type == _socket.SOCK_DGRAM:
        name = py.getsockname()
        if isinstance(name, tuple) and name[1] == 0:
            raise Win32Error(_WSAEINVAL, "the datagram socket is not bound")


def WSARecvFrom(
    s: int,
    lpBuffers: Any,
    dwBufferCount: int,
    lpNumberOfBytesRecvd: Ref[int] | None,
    lpFlags: Ref[int] | None,
    lpFrom: Ref[Any] | None,
    lpFromlen: Ref[int] | None,
    lpOverlapped: Any,
    lpCompletionRoutine: WsaRoutine | None,
) -> int:
    """[MS:WSARecvFrom] -> core ``RecvFromOp``; ``*lpFrom`` gets the sender's address tuple and
    ``*lpFromlen`` its SOCKADDR size when the datagram arrives (for an overlapped call, at
    completion).

    Errors at once: NULL ``lpFlags`` or a ``lpFromlen`` smaller than the address -> WSAEFAULT;
    an unbound datagram socket -> WSAEINVAL [MS:recvfrom]. A datagram larger than the buffers
    fills them and fails with WSAEMSGSIZE (overlapped: completes with STATUS_BUFFER_OVERFLOW).
    """
    try:
        sock = _sock(s)
        if lpFlags is None:
            raise Win32Error(_WSAEFAULT, "lpFlags is NULL")
        views = _wsabufs(lpBuffers, dwBufferCount, True)
        sink = _address_sink(sock, lpFrom, lpFromlen)
        _check_receivable(sock)
        flags = lpFlags.value

        def make(ov: Overlapped, routine: Any) -> RecvFromOp:
            return RecvFromOp(sock, ov, views, sink, flags, routine)

        count = _issue(sock, make, lpOverlapped, lpCompletionRoutine)
    except Win32Error as exc:
        return _wsa_fail(exc)
    if count is None:
        set_last_error(WSA_IO_PENDING)
        return SOCKET_ERROR
    if lpNumberOfBytesRecvd is not None:
        lpNumberOfBytesRecvd.value = count
    lpFlags.value = 0
    set_last_error(0)
    return 0


def sendto(s: int, buf: Any, len: int, flags: int, to: Any, tolen: int) -> int:
    """[MS:sendto] (blocking) -> core ``SendToOp``; bytes sent or SOCKET_ERROR."""
    sent = Ref(0)
    data = memoryview(buf)[:len] if buf is not None else buf
    if WSASendTo(s, [data], 1, sent, flags, to, tolen, None, None):
        return SOCKET_ERROR
    return sent.value


def recvfrom(
    s: int, buf: Any, len: int, flags: int, from_: Ref[Any] | None, fromlen: Ref[int] | None
) -> int:
    """[MS:recvfrom] (blocking) -> core ``RecvFromOp``: fills the first ``len`` bytes of
    ``buf``; bytes received or SOCKET_ERROR."""
    got, fl = Ref(0), Ref(flags)
    try:
        view = memoryview(buf).cast("B")[:len]
    except TypeError:
        set_last_error(_WSAEFAULT)
        return SOCKET_ERROR
    if WSARecvFrom(s, [view], 1, got, fl, from_, fromlen, None, None):
        return SOCKET_ERROR
    return got.value


# ---------------------------------------------------------------------- extensions


def _bool_result(count: int | None, lpCount: Ref[int] | None = None) -> bool:
    if count is None:
        set_last_error(WSA_IO_PENDING)
        return False
    if lpCount is not None:
        lpCount.value = count
    set_last_error(0)
    return True


def DisconnectEx(s: int, lpOverlapped: Any, dwFlags: int, dwReserved: int) -> bool:
    """[MS:DisconnectEx] -> core ``DisconnectOp``: the sending side ends (the peer reads the end
    of the stream; this side still receives, and connect() says WSAEISCONN); TF_REUSE_SOCKET
    closes both sides and the handle can be accepted or connected into again.

    [W:ws2_32/sock.c:test_DisconnectEx]: WSAENOTSOCK for a bad handle, WSAENOTCONN when not
    connected (at once); with an OVERLAPPED it always pends (FALSE + ERROR_IO_PENDING);
    without one it returns TRUE, also a second time. WSAEINVAL for ``dwReserved`` != 0 or flags
    other than TF_REUSE_SOCKET.

    Deviation: TF_REUSE_SOCKET gives the handle a fresh socket of the same kind (a Linux
    socket cannot be connected twice); options set on the old one are not carried over.
    """
    try:
        sock = _sock(s)
        if dwReserved or dwFlags & ~TF_REUSE_SOCKET:
            raise Win32Error(_WSAEINVAL, "dwReserved must be 0; only TF_REUSE_SOCKET")
        py = sock.sock
        assert py is not None
        if not is_connected(py):
            raise Win32Error(WSAENOTCONN, "not connected")
        reuse = bool(dwFlags & TF_REUSE_SOCKET)
        count = _issue(
            sock,
            lambda ov, _r: DisconnectOp(sock, ov, reuse, defer=lpOverlapped is not None),
            lpOverlapped,
            None,
        )
    except Win32Error as exc:
        _wsa_fail(exc)
        return False
    return _bool_result(count)


def _transmit_buffers(buffers: TRANSMIT_FILE_BUFFERS | None) -> tuple[bytes, bytes]:
    if buffers is None:
        return b"", b""

    def part(data: Any, length: int) -> bytes:
        if not length:
            return b""
        if data is None:
            raise Win32Error(_WSAEFAULT, "a TRANSMIT_FILE_BUFFERS pointer is NULL")
        raw = bytes(memoryview(data).cast("B"))
        if length < 0 or length > len(raw):
            raise Win32Error(_WSAEFAULT, "a TRANSMIT_FILE_BUFFERS length exceeds its buffer")
        return raw[:length]

    return part(buffers.Head, buffers.HeadLength), part(buffers.Tail, buffers.TailLength)


def TransmitFile(
    hSocket: int,
    hFile: int | None,
    nNumberOfBytesToWrite: int,
    nNumberOfBytesPerSend: int,
    lpOverlapped: Any,
    lpTransmitBuffers: TRANSMIT_FILE_BUFFERS | None,
    dwFlags: int,
) -> bool:
    """[MS:TransmitFile] -> core ``TransmitFileOp`` (os.sendfile): the head buffer, the file's
    bytes (``nNumberOfBytesToWrite``, 0 = to the end; from the OVERLAPPED's offset, or the file
    pointer, which then advances) and the tail buffer; the byte count is their sum. TF_DISCONNECT
    ends the connection afterwards (TF_REUSE_SOCKET as for DisconnectEx); the TF_USE_* hints are
    accepted. ``nNumberOfBytesPerSend`` is a hint too.

    [W:ws2_32/sock.c:test_TransmitFile]: WSAENOTSOCK for a bad socket, WSAENOTCONN for an
    unconnected (or UDP) socket; no file and no buffers sends nothing (TRUE); with an OVERLAPPED
    it always pends. A bad ``hFile`` fails with ERROR_INVALID_HANDLE (winaio's choice; the page
    names no code).
    """
    try:
        sock = _sock(hSocket)
        py = sock.sock
        assert py is not None
        if not is_connected(py):
            raise Win32Error(WSAENOTCONN, "not connected")
        if dwFlags & ~_TF_KNOWN:
            raise Win32Error(_WSAEINVAL, f"dwFlags {dwFlags:#x}")
        head, tail = _transmit_buffers(lpTransmitBuffers)
    except Win32Error as exc:
        _wsa_fail(exc)
        return False
    try:
        source = HANDLE_TABLE.get(hFile, FileObject, pseudo=False) if hFile else None
    except Win32Error:
        set_last_error(WinError.ERROR_INVALID_HANDLE)
        return False
    count = nNumberOfBytesToWrite if nNumberOfBytesToWrite > 0 else -1
    ops: list[TransmitFileOp] = []

    def make(ov: Overlapped, _routine: Any) -> TransmitFileOp:
        overlapped = lpOverlapped is not None
        offset = ov.offset if overlapped else (source.position if source is not None else 0)
        op = TransmitFileOp(sock, ov, source, offset, count, head, tail, dwFlags, overlapped)
        ops.append(op)
        return op

    try:
        sent = _issue(sock, make, lpOverlapped, None)
    except Win32Error as exc:
        _wsa_fail(exc)
        return False
    if lpOverlapped is None and source is not None and ops:
        source.position = ops[0].offset
    return _bool_result(sent)


def GetAcceptExSockaddrs(
    lpOutputBuffer: Any,
    dwReceiveDataLength: int,
    dwLocalAddressLength: int,
    dwRemoteAddressLength: int,
    LocalSockaddr: Ref[Any] | None,
    LocalSockaddrLength: Ref[int] | None,
    RemoteSockaddr: Ref[Any] | None,
    RemoteSockaddrLength: Ref[int] | None,
) -> None:
    """[MS:GetAcceptExSockaddrs]: the addresses AcceptEx wrote after the received data, as
    address tuples and SOCKADDR sizes. A local area of 0 leaves the local out-parameters
    untouched, and the remote area then starts right after the data
    [W:ws2_32/sock.c:test_AcceptEx]."""
    data = bytes(memoryview(lpOutputBuffer).cast("B"))
    areas = (
        (dwReceiveDataLength, dwLocalAddressLength, LocalSockaddr, LocalSockaddrLength),
        (dwReceiveDataLength + dwLocalAddressLength, dwRemoteAddressLength, RemoteSockaddr,
         RemoteSockaddrLength),
    )  # fmt: skip
    for start_at, size, addr_out, len_out in areas:
        if size < 8 or start_at + 4 > len(data):
            continue
        length = int.from_bytes(data[start_at : start_at + 4], "little", signed=True)
        raw = data[start_at + 4 : start_at + 4 + max(length, 0)]
        if length <= 0 or len(raw) < length:
            continue
        if addr_out is not None:
            addr_out.value = decode_sockaddr(raw)[1]
        if len_out is not None:
            len_out.value = length


def _guid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        return uuid.UUID(value)
    if isinstance(value, bytes | bytearray) and len(value) >= 16:
        return uuid.UUID(bytes_le=bytes(value[:16]))
    return None


def WSAIoctl(
    s: int,
    dwIoControlCode: int,
    lpvInBuffer: Any,
    cbInBuffer: int,
    lpvOutBuffer: Ref[Any] | None,
    cbOutBuffer: int,
    lpcbBytesReturned: Ref[int] | None,
    lpOverlapped: Any,
    lpCompletionRoutine: WsaRoutine | None,
) -> int:
    """[MS:WSAIoctl]: SIO_GET_EXTENSION_FUNCTION_POINTER (``lpvInBuffer`` a WSAID_* GUID -
    uuid.UUID, string or its 16 bytes; ``*lpvOutBuffer`` receives the function: AcceptEx,
    ConnectEx, DisconnectEx, TransmitFile or GetAcceptExSockaddrs), FIONBIO (``lpvInBuffer``
    the u_long) and FIONREAD (``*lpvOutBuffer`` the byte count). They finish inside the call;
    with an OVERLAPPED its event, port packet or completion routine is still notified.

    Errors: WSAENOTSOCK; WSAEFAULT for a missing/short in or out buffer, or no
    ``lpcbBytesReturned`` without an OVERLAPPED; WSAEINVAL for an unknown GUID; WSAEOPNOTSUPP
    for another control code.

    Deviation: only these three controls; SIO_* queries (routing, keep-alive values, WSARecvMsg
    and the other extension GUIDs) answer WSAEOPNOTSUPP / WSAEINVAL.
    """
    try:
        sock = _sock(s)
        result: Any = None
        size = 0
        if lpcbBytesReturned is None and lpOverlapped is None:
            raise Win32Error(_WSAEFAULT, "lpcbBytesReturned is NULL")
        if dwIoControlCode == SIO_GET_EXTENSION_FUNCTION_POINTER:
            guid = _guid(lpvInBuffer)
            if guid is None or cbInBuffer < 16:
                raise Win32Error(_WSAEFAULT, "lpvInBuffer is not a GUID")
            if lpvOutBuffer is None or cbOutBuffer < 8:
                raise Win32Error(_WSAEFAULT, "the out buffer cannot hold a function pointer")
            result = _extension(guid)
            size = 8
        elif dwIoControlCode == FIONBIO:
            if lpvInBuffer is None or cbInBuffer < 4:
                raise Win32Error(_WSAEFAULT, "FIONBIO needs a u_long")
            value = lpvInBuffer.value if isinstance(lpvInBuffer, Ref) else lpvInBuffer
            set_nonblocking(sock, bool(value))
        elif dwIoControlCode == FIONREAD:
            if lpvOutBuffer is None or cbOutBuffer < 4:
                raise Win32Error(_WSAEFAULT, "FIONREAD needs a u_long")
            result = bytes_readable(sock)
            size = 4
        else:
            raise Win32Error(WSAEOPNOTSUPP, f"control code {dwIoControlCode:#x}")
        if lpvOutBuffer is not None and size:
            lpvOutBuffer.value = result
        if lpcbBytesReturned is not None:
            lpcbBytesReturned.value = size
        ov = bind_overlapped(lpOverlapped)
        if ov is not None and sock.overlapped:
            op = ImmediateOp(sock, ov, size)
            if lpCompletionRoutine is not None:
                op.routine = _routine(lpCompletionRoutine)
            start(op)
    except Win32Error as exc:
        return _wsa_fail(exc)
    set_last_error(0)
    return 0


def _extension(guid: uuid.UUID) -> Callable[..., Any]:
    table: dict[uuid.UUID, Callable[..., Any]] = {
        WSAID_ACCEPTEX: AcceptEx,
        WSAID_CONNECTEX: ConnectEx,
        WSAID_DISCONNECTEX: DisconnectEx,
        WSAID_TRANSMITFILE: TransmitFile,
        WSAID_GETACCEPTEXSOCKADDRS: GetAcceptExSockaddrs,
    }
    found = table.get(guid)
    if found is None:
        raise Win32Error(_WSAEINVAL, f"no extension function {guid}")
    return found


def ioctlsocket(s: int, cmd: int, argp: Ref[int] | None) -> int:
    """[MS:ioctlsocket]: FIONBIO (``*argp`` != 0: non-blocking) and FIONREAD (``*argp`` = bytes
    a receive would return). WSAEFAULT for a NULL ``argp`` [W:ws2_32/sock.c:test_ioctlsocket];
    WSAEINVAL to leave non-blocking mode while WSAEventSelect is active [MS:ioctlsocket], and for
    any other command (winaio's choice).

    Deviation: SIOCATMARK is not supported (WSAEINVAL).
    """
    try:
        sock = _sock(s)
        if argp is None:
            raise Win32Error(_WSAEFAULT, "argp is NULL")
        if cmd & 0xFFFFFFFF == FIONBIO:
            set_nonblocking(sock, bool(argp.value))
        elif cmd & 0xFFFFFFFF == FIONREAD:
            argp.value = bytes_readable(sock)
        else:
            raise Win32Error(_WSAEINVAL, f"ioctlsocket command {cmd:#x}")
    except Win32Error as exc:
        return _wsa_fail(exc)
    return 0


def setsockopt(s: int, level: int, optname: int, optval: Any, optlen: int) -> int:
    """[MS:setsockopt] -> core ``set_option`` (Winsock numbering: SOL_SOCKET_WINSOCK 0xFFFF -
    the Linux ``SOL_SOCKET`` is accepted too - and the SO_* values of this module). ``optval``:
    an int/BOOL, its bytes, or a LINGER. WSAENOPROTOOPT for an unknown option, WSAEINVAL for an
    unknown level, WSAEFAULT for a NULL or short value.

    Deviation: the SOL_SOCKET options of this module and IPPROTO_TCP/TCP_NODELAY only; the
    IPPROTO_IP/IPPROTO_IPV6 levels answer WSAEINVAL and other options WSAENOPROTOOPT.
    """
    try:
        set_option(_sock(s), level, optname, optval, optlen)
    except Win32Error as exc:
        return _wsa_fail(exc)
    return 0


def getsockopt(
    s: int, level: int, optname: int, optval: Ref[Any] | None, optlen: Ref[int] | None
) -> int:
    """[MS:getsockopt] -> core ``get_option``: ``*optval`` gets an int (SO_LINGER: a LINGER) and
    ``*optlen`` its size (4). WSAEFAULT for NULL pointers or ``*optlen`` < 4.

    Deviation: the options setsockopt knows, plus SO_ERROR, SO_TYPE and SO_ACCEPTCONN.
    """
    try:
        sock = _sock(s)
        if optval is None or optlen is None or optlen.value < 4:
            raise Win32Error(_WSAEFAULT, "optval/optlen NULL or optlen < 4")
        value = get_option(sock, level, optname)
    except Win32Error as exc:
        return _wsa_fail(exc)
    optval.value = LINGER(*value) if isinstance(value, tuple) else value
    optlen.value = 4
    return 0


# ---------------------------------------------------------------------- network events


def WSAEventSelect(s: int, hEventObject: int, lNetworkEvents: int) -> int:
    """[MS:WSAEventSelect] -> core ``event_select``: record the FD_* events of
    ``lNetworkEvents`` and set ``hEventObject``; the socket becomes non-blocking. 0 events (or
    no event) cancels the association, the socket staying non-blocking.

    Deviation: only the synchronous calls (send/recv/accept/connect and WSARecv/WSASend without
    an OVERLAPPED) re-enable FD_READ/FD_WRITE/FD_ACCEPT; overlapped requests on the socket do
    not. FD_QOS/FD_GROUP_QOS/FD_ROUTING_INTERFACE_CHANGE/FD_ADDRESS_LIST_CHANGE are never
    recorded.
    """
    try:
        sock = _sock(s)
        event = HANDLE_TABLE.get(hEventObject, Event, pseudo=False) if hEventObject else None
        event_select(sock, event, lNetworkEvents & 0x3F)
    except Win32Error as exc:
        if exc.winerror == WinError.ERROR_INVALID_HANDLE and hEventObject:
            exc = Win32Error(_WSAEINVAL, "hEventObject is not an event")
        return _wsa_fail(exc)
    return 0


def WSAEnumNetworkEvents(
    s: int, hEventObject: int, lpNetworkEvents: WSANETWORKEVENTS | None
) -> int:
    """[MS:WSAEnumNetworkEvents] -> core ``take_network_events``: the events recorded since the
    last call (then cleared), with their error codes; ``hEventObject`` (optional) is reset."""
    try:
        sock = _sock(s)
        if lpNetworkEvents is None:
            raise Win32Error(_WSAEFAULT, "lpNetworkEvents is NULL")
        event = HANDLE_TABLE.get(hEventObject, Event, pseudo=False) if hEventObject else None
        record = take_network_events(sock, event)
    except Win32Error as exc:
        return _wsa_fail(exc)
    lpNetworkEvents.lNetworkEvents = record.bits
    lpNetworkEvents.iErrorCode = list(record.errors)
    return 0


def WSACreateEvent() -> int:
    """[MS:WSACreateEvent]: a manual-reset, nonsignaled, unnamed event (CreateEvent)."""
    return CreateEvent(None, True, False, None)


def WSACloseEvent(hEvent: int) -> bool:
    """[MS:WSACloseEvent] -> CloseHandle."""
    return CloseHandle(hEvent)


def WSASetEvent(hEvent: int) -> bool:
    """[MS:WSASetEvent] -> SetEvent."""
    return SetEvent(hEvent)


def WSAResetEvent(hEvent: int) -> bool:
    """[MS:WSAResetEvent] -> ResetEvent."""
    return ResetEvent(hEvent)


def WSAWaitForMultipleEvents(
    cEvents: int, lphEvents: Any, fWaitAll: bool, dwTimeout: int, fAlertable: bool
) -> int:
    """[MS:WSAWaitForMultipleEvents] -> WaitForMultipleObjectsEx (the same return values:
    WSA_WAIT_EVENT_0 + i, WSA_WAIT_TIMEOUT, WSA_WAIT_IO_COMPLETION, WSA_WAIT_FAILED)."""
    return WaitForMultipleObjectsEx(cEvents, list(lphEvents or ()), fWaitAll, dwTimeout,
                                    fAlertable)  # fmt: skip


def FD_ISSET(s: int, fdset: Any) -> bool:
    """[MS:FD_ISSET]: the macro over select's lists (handle in the list)."""
    return fdset is not None and s in fdset


def select(
    nfds: int,
    readfds: list[int] | None,
    writefds: list[int] | None,
    exceptfds: list[int] | None,
    timeout: TIMEVAL | None,
) -> int:
    """[MS:select] -> core ``select_sockets``. The fd_sets are lists of socket handles, kept in
    place to the ready ones; ``timeout`` None waits forever. Returns the number of ready
    (socket, set) pairs, 0 on time-out. Readable: data, a pending connection, or the peer's
    close; writable: connected with room; except: out-of-band data or a failed connect.
    WSAEINVAL when all three sets are empty or the time-out is negative; WSAENOTSOCK for a handle
    that is not a socket. ``nfds`` is ignored, as on Windows."""
    sets = (readfds, writefds, exceptfds)
    try:
        if not any(sets):
            raise Win32Error(_WSAEINVAL, "all three sets are empty")
        seconds = None
        if timeout is not None:
            if timeout.tv_sec < 0 or timeout.tv_usec < 0:
                raise Win32Error(_WSAEINVAL, "negative time-out")
            seconds = timeout.tv_sec + timeout.tv_usec / 1e6
        wants: dict[FileObject, int] = {}
        files: dict[int, FileObject] = {}
        for bit, handles in zip((1, 2, 4), sets, strict=True):
            for h in handles or ():
                files[h] = _sock(h)
                wants[files[h]] = wants.get(files[h], 0) | bit
        ready = select_sockets(wants, seconds)
    except Win32Error as exc:
        return _wsa_fail(exc)
    total = 0
    for bit, handles in zip((1, 2, 4), sets, strict=True):
        if handles is None:
            continue
        handles[:] = [h for h in handles if ready.get(files[h], 0) & bit]
        total += len(handles)
    return total
