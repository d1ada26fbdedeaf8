"""Win32 aliases: the Winsock requests beside WSARecv/WSASend - datagrams (WSASendTo/WSARecvFrom,
sendto/recvfrom) and the Microsoft extensions (DisconnectEx, TransmitFile, GetAcceptExSockaddrs,
and WSAIoctl, which hands out their function pointers).

Conventions as in ``_winsock``: handles are socket handles, addresses Python tuples (as for
bind/connect), WSA error codes through WSAGetLastError. The core is ``winaio._io._winsock_ext``.
"""

import socket as _socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._io._files import FileObject
from .._io._issue import start
from .._io._overlapped import STATUS_PENDING, Overlapped
from .._io._sockets import Socket
from .._io._sockopts import (
    bytes_readable,
    set_nonblocking,
)
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
from ..codes import NtStatus, WinError, ntstatus_to_winerror
from ..errors import Win32Error
from ._base import Ref, set_last_error
from ._overlapped import bind_overlapped
from ._winsock import (
    SOCKET_ERROR,
    WSA_IO_PENDING,
    WsaRoutine,
    _sock,
    _sync,
    _wsa_fail,
)
from ._winsock_modes import FIONBIO, FIONREAD
from ._winsock_overlapped import AcceptEx, ConnectEx, _routine, _wsabufs

__all__ = [
    "MSG_OOB",
    "MSG_PARTIAL",
    "MSG_PEEK",
    "SIO_GET_EXTENSION_FUNCTION_POINTER",
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
    "WSAENOTCONN",
    "WSAEOPNOTSUPP",
    "WSAESHUTDOWN",
    "WSAID_ACCEPTEX",
    "WSAID_CONNECTEX",
    "WSAID_DISCONNECTEX",
    "WSAID_GETACCEPTEXSOCKADDRS",
    "WSAID_TRANSMITFILE",
    "TRANSMIT_FILE_BUFFERS",
    "DisconnectEx",
    "GetAcceptExSockaddrs",
    "TransmitFile",
    "WSAIoctl",
    "WSARecvFrom",
    "WSASendTo",
    "recvfrom",
    "sendto",
]

SIO_GET_EXTENSION_FUNCTION_POINTER = 0xC8000006
MSG_OOB, MSG_PEEK, MSG_PARTIAL = 0x1, 0x2, 0x8000
TF_WRITE_BEHIND, TF_USE_DEFAULT_WORKER, TF_USE_SYSTEM_THREAD, TF_USE_KERNEL_APC = 0x4, 0, 0x10, 0x20
WSAEOPNOTSUPP = 10045
WSAEMSGSIZE = 10040
WSAEDESTADDRREQ = 10039
WSAEADDRINUSE = 10048
WSAEISCONN = 10056
WSAENOTCONN = 10057
WSAESHUTDOWN = 10058
_WSAEFAULT, _WSAEINVAL = 10014, 10022
_SUCCESS_STATUS, _NOT_SUPPORTED = 0, int(NtStatus.STATUS_NOT_SUPPORTED)
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


def _wsa_result(count: int | None, lpCount: Ref[int] | None) -> int:
    """A WSA request's return: SOCKET_ERROR + WSA_IO_PENDING when pending; else 0, the count
    written and the last error cleared."""
    if count is None:
        set_last_error(WSA_IO_PENDING)
        return SOCKET_ERROR
    if lpCount is not None:
        lpCount.value = count
    set_last_error(0)
    return 0


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
    return _wsa_result(count, lpNumberOfBytesSent)


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
    if count is not None:
        lpFlags.value = 0
    return _wsa_result(count, lpNumberOfBytesRecvd)


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
        if lpcbBytesReturned is None:
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
            lpcbBytesReturned.value = 0
            set_nonblocking(sock, bool(value))
        elif dwIoControlCode == FIONREAD:
            if lpvOutBuffer is None or cbOutBuffer < 4:
                raise Win32Error(_WSAEFAULT, "FIONREAD needs a u_long")
            result = bytes_readable(sock)
            size = 4
        else:
            ov = bind_overlapped(lpOverlapped)
            if ov is not None and sock.overlapped:
                # The request is issued and fails: notified like any failed request.
                _notify_control(sock, ov, lpCompletionRoutine, _NOT_SUPPORTED)
                set_last_error(WSA_IO_PENDING)
                return SOCKET_ERROR
            lpcbBytesReturned.value = 0
            raise Win32Error(WSAEOPNOTSUPP, f"control code {dwIoControlCode:#x}")
        if lpvOutBuffer is not None and size:
            lpvOutBuffer.value = result
        lpcbBytesReturned.value = size
        ov = bind_overlapped(lpOverlapped)
        if ov is not None and sock.overlapped:
            _notify_control(sock, ov, lpCompletionRoutine, _SUCCESS_STATUS)
    except Win32Error as exc:
        return _wsa_fail(exc)
    set_last_error(0)
    return 0


def _notify_control(sock: Any, ov: Any, routine: WsaRoutine | None, status: int) -> None:
    """Notify a control's OVERLAPPED (event, port packet or routine): 0 bytes and ``status``,
    as the request finished [W:ws2_32/sock.c:test_fionbio, test_unsupported_ioctls]."""
    op = ImmediateOp(sock, ov, 0, status)
    if routine is not None:
        op.routine = _routine(routine)
    if start(op) == STATUS_PENDING:
        op.complete(status, 0)


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
