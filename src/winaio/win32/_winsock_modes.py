"""Win32 aliases: Winsock modes and readiness - WSAStartup/WSACleanup, socket options,
ioctlsocket, WSAEventSelect with its WSA*Event helpers, and select.

Conventions as in ``_winsock``. The core is ``winaio._io._sockopts`` (options, FIONBIO/FIONREAD)
and ``winaio._io._netevents`` (modes, network events, select).
"""

from dataclasses import dataclass, field
from typing import Any

from .._io._files import FileObject
from .._io._netevents import (
    FD_ACCEPT,
    FD_CLOSE,
    FD_CONNECT,
    FD_OOB,
    FD_READ,
    FD_WRITE,
    SELECT_CLOSED,
    event_select,
    select_sockets,
    take_network_events,
)
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
from .._kernel._handles import HANDLE_TABLE
from .._kernel._objects import Event
from ..codes import WinError
from ..errors import Win32Error
from ._base import Ref, set_last_error
from ._sync import CloseHandle, CreateEvent, ResetEvent, SetEvent, WaitForMultipleObjectsEx
from ._winsock import (
    SOCKET_ERROR,
    _sock,
    _wsa_fail,
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
    "WSANOTINITIALISED",
    "WSAVERNOTSUPPORTED",
    "WSAENOPROTOOPT",
    "WSAETIMEDOUT",
    "WSA_INFINITE",
    "WSA_INVALID_EVENT",
    "WSA_MAXIMUM_WAIT_EVENTS",
    "WSA_WAIT_EVENT_0",
    "WSA_WAIT_FAILED",
    "WSA_WAIT_IO_COMPLETION",
    "WSA_WAIT_TIMEOUT",
    "LINGER",
    "TIMEVAL",
    "WSADATA",
    "WSANETWORKEVENTS",
    "FD_ISSET",
    "WSACleanup",
    "WSACloseEvent",
    "WSACreateEvent",
    "WSAEnumNetworkEvents",
    "WSAEventSelect",
    "WSAResetEvent",
    "WSASetEvent",
    "WSAStartup",
    "WSAWaitForMultipleEvents",
    "getsockopt",
    "ioctlsocket",
    "select",
    "setsockopt",
]

SOL_SOCKET_WINSOCK = 0xFFFF
FD_MAX_EVENTS = 10
FIONBIO = 0x8004667E
FIONREAD = 0x4004667F
WSAENOPROTOOPT = 10042
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
_WSAEFAULT, _WSAEINVAL, _WSAENOTSOCK = 10014, 10022, 10038


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


# ---------------------------------------------------------------------- options


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
    # Only the error codes of the events reported are written; the others keep what the
    # caller had there [W:ws2_32/sock.c:test_WSAEnumNetworkEvents].
    codes = lpNetworkEvents.iErrorCode
    if not isinstance(codes, list) or len(codes) < FD_MAX_EVENTS:
        codes = lpNetworkEvents.iErrorCode = [0] * FD_MAX_EVENTS
    for bit in range(FD_MAX_EVENTS):
        if record.bits & (1 << bit):
            codes[bit] = record.errors[bit]
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
    that is not a socket (the sets untouched), or for one closed during the call that was not in
    the read set. A socket given twice is listed once; the same list may be passed for several
    sets. APCs run while it waits. ``nfds`` is ignored, as on Windows
    [W:ws2_32/sock.c:test_select]."""
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
        entries: list[tuple[int, int]] = []  # (handle, set bit) in the order of the sets
        for bit, handles in zip((1, 2, 4), sets, strict=True):
            for h in handles or ():
                files[h] = _sock(h)
                wants[files[h]] = wants.get(files[h], 0) | bit
                entries.append((h, bit))
        read_input = list(readfds) if readfds is not None else ()
        ready = select_sockets(wants, seconds)
    except Win32Error as exc:
        return _wsa_fail(exc)
    # ws2_32's own bookkeeping [W:ws2_32/socket.c:select]: the sets may be one list, so all
    # are cleared first; a socket is listed once per set and counted once per set it is in; a
    # socket closed while selected counts as readable if it was in the read set, else the call
    # fails with WSAENOTSOCK (the sets then stay empty).
    for handles in sets:
        if handles is not None:
            handles.clear()
    total = 0
    closed = False
    for h, bit in entries:
        got = ready.get(files[h], 0)
        flags = (got & bit) | (got & SELECT_CLOSED)
        if flags & (1 | SELECT_CLOSED) and h in read_input:
            total += _add_to_set(h, readfds)
            flags &= ~SELECT_CLOSED
        if flags & SELECT_CLOSED:
            closed = True
        if flags & 2:
            total += _add_to_set(h, writefds)
        if flags & 4:
            total += _add_to_set(h, exceptfds)
    if closed:
        set_last_error(_WSAENOTSOCK)
        return SOCKET_ERROR
    return total


def _add_to_set(h: int, handles: list[int] | None) -> int:
    if handles is None or h in handles:
        return 0
    handles.append(h)
    return 1
