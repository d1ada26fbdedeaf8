"""Winsock modes and readiness, ported from Wine's ``dlls/ws2_32/tests/sock.c`` and MS Learn,
through ``winaio.win32`` on both I/O backends: ioctlsocket (FIONBIO, FIONREAD), non-blocking
calls, SO_RCVTIMEO, socket options, WSAEventSelect and its helpers, select, WSAStartup/WSACleanup,
and closed or wrong-type handles for every new call.
"""

from __future__ import annotations

import socket as pysocket

import pytest

import winaio.win32 as w

SENTINEL = 0xDEADBEEF


# ---------------------------------------------------------------------- ioctlsocket, modes


def test_ioctlsocket(io) -> None:
    # [W:ws2_32/sock.c:test_ioctlsocket] (NULL argp -> WSAEFAULT; FIONREAD) [MS:ioctlsocket]
    client, server = io.socket_pair()
    for cmd in (w.FIONBIO, w.FIONREAD):
        assert w.ioctlsocket(server, cmd, None) == w.SOCKET_ERROR
        assert w.WSAGetLastError() == w.WSAEFAULT
    avail = w.Ref(SENTINEL)
    assert w.ioctlsocket(server, w.FIONREAD, avail) == 0 and avail.value == 0
    assert w.send(client, b"abcdef", 0) == 6
    assert w.select(0, [server], None, None, w.TIMEVAL(5, 0)) == 1
    assert w.ioctlsocket(server, w.FIONREAD, avail) == 0 and avail.value == 6
    assert w.ioctlsocket(server, 0x1234, avail) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEINVAL
    assert w.ioctlsocket(w.INVALID_SOCKET, w.FIONREAD, avail) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAENOTSOCK


def test_nonblocking_socket_calls(io) -> None:
    # [MS:ioctlsocket] (FIONBIO) [W:ws2_32/sock.c:test_AcceptEx] (set_blocking(FALSE) then
    # accept/recv fail with WSAEWOULDBLOCK instead of waiting)
    lst, addr = io.listener()
    assert w.ioctlsocket(lst, w.FIONBIO, w.Ref(1)) == 0
    assert w.accept(lst) == w.INVALID_SOCKET
    assert w.WSAGetLastError() == w.WSAEWOULDBLOCK
    c = io.tcp_socket()
    assert w.ioctlsocket(c, w.FIONBIO, w.Ref(1)) == 0
    r = w.connect(c, addr)
    if r != 0:
        assert w.WSAGetLastError() == w.WSAEWOULDBLOCK
    wr = [c]
    assert w.select(0, None, wr, None, w.TIMEVAL(5, 0)) == 1 and wr == [c]
    rd = [lst]
    assert w.select(0, rd, None, None, w.TIMEVAL(5, 0)) == 1
    server = io.keep_socket(w.accept(lst))
    buf = bytearray(4)
    flags = w.Ref(0)
    got = w.Ref(SENTINEL)
    assert w.ioctlsocket(server, w.FIONBIO, w.Ref(1)) == 0
    assert w.WSARecv(server, [buf], 1, got, flags, None, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEWOULDBLOCK
    assert got.value == SENTINEL
    assert w.send(c, b"ping", 0) == 4
    rd = [server]
    assert w.select(0, rd, None, None, w.TIMEVAL(5, 0)) == 1
    assert w.recv(server, buf, 4, 0) == 4 and buf == b"ping"


def test_so_rcvtimeo_bounds_blocking_recv(io) -> None:
    # [MS:SOL_SOCKET Socket Options] (SO_RCVTIMEO: a blocking receive fails with WSAETIMEDOUT)
    _, server = io.socket_pair()
    assert w.setsockopt(server, w.SOL_SOCKET_WINSOCK, w.SO_RCVTIMEO, 50, 4) == 0
    val, size = w.Ref(0), w.Ref(4)
    assert w.getsockopt(server, w.SOL_SOCKET_WINSOCK, w.SO_RCVTIMEO, val, size) == 0
    assert val.value == 50
    buf = bytearray(4)
    assert w.recv(server, buf, 4, 0) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAETIMEDOUT


# ---------------------------------------------------------------------- socket options


def test_socket_options(io) -> None:
    # [MS:setsockopt] [MS:getsockopt] [W:ws2_32/sock.c:test_set_getsockopt]
    s = io.tcp_socket()
    val, size = w.Ref(SENTINEL), w.Ref(4)
    for level in (w.SOL_SOCKET_WINSOCK, w.SOL_SOCKET):
        assert w.setsockopt(s, level, w.SO_KEEPALIVE, 1, 4) == 0
        assert w.getsockopt(s, level, w.SO_KEEPALIVE, val, size) == 0
        assert (val.value, size.value) == (1, 4)
    assert w.setsockopt(s, w.SOL_SOCKET_WINSOCK, w.SO_RCVBUF, 12345, 4) == 0
    assert w.getsockopt(s, w.SOL_SOCKET_WINSOCK, w.SO_RCVBUF, val, size) == 0
    assert val.value == 12345  # what was set (Linux would report twice as much)
    assert w.getsockopt(s, w.SOL_SOCKET_WINSOCK, w.SO_TYPE, val, size) == 0
    assert val.value == w.SOCK_STREAM
    assert w.setsockopt(s, w.SOL_SOCKET_WINSOCK, w.SO_LINGER, w.LINGER(1, 3), 4) == 0
    assert w.getsockopt(s, w.SOL_SOCKET_WINSOCK, w.SO_LINGER, val, size) == 0
    assert val.value == w.LINGER(1, 3)
    assert w.getsockopt(s, w.SOL_SOCKET_WINSOCK, w.SO_DONTLINGER, val, size) == 0
    assert val.value == 0
    assert w.setsockopt(s, w.IPPROTO_TCP, w.TCP_NODELAY, 0, 4) == 0
    assert w.getsockopt(s, w.IPPROTO_TCP, w.TCP_NODELAY, val, size) == 0 and val.value == 0
    assert w.setsockopt(s, w.SOL_SOCKET_WINSOCK, w.SO_UPDATE_ACCEPT_CONTEXT, 0, 8) == 0
    assert w.getsockopt(s, w.SOL_SOCKET_WINSOCK, w.SO_ERROR, val, size) == 0 and val.value == 0


def test_socket_option_errors(io) -> None:
    # [MS:setsockopt]/[MS:getsockopt]: WSAENOPROTOOPT, WSAEINVAL (level), WSAEFAULT (size)
    s = io.tcp_socket()
    val, size = w.Ref(SENTINEL), w.Ref(4)
    assert w.setsockopt(s, w.SOL_SOCKET_WINSOCK, 0x7777, 1, 4) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAENOPROTOOPT
    assert w.setsockopt(s, 0x1234, w.SO_KEEPALIVE, 1, 4) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEINVAL
    assert w.setsockopt(s, w.SOL_SOCKET_WINSOCK, w.SO_RCVBUF, 1, 2) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEFAULT
    assert w.setsockopt(s, w.SOL_SOCKET_WINSOCK, w.SO_KEEPALIVE, None, 4) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEFAULT
    assert w.getsockopt(s, w.SOL_SOCKET_WINSOCK, w.SO_KEEPALIVE, val, w.Ref(2)) == -1
    assert w.WSAGetLastError() == w.WSAEFAULT
    assert w.setsockopt(s, w.SOL_SOCKET_WINSOCK, w.SO_TYPE, 1, 4) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAENOPROTOOPT  # read-only
    assert w.getsockopt(w.INVALID_SOCKET, w.SOL_SOCKET_WINSOCK, w.SO_TYPE, val, size) == -1
    assert w.WSAGetLastError() == w.WSAENOTSOCK
    assert val.value == SENTINEL


def test_exclusiveaddruse_and_reuseaddr_exclude_each_other(io) -> None:
    # [MS:Using SO_REUSEADDR and SO_EXCLUSIVEADDRUSE] [W:ws2_32/sock.c:test_so_reuseaddr]
    s = io.tcp_socket()
    assert w.setsockopt(s, w.SOL_SOCKET_WINSOCK, w.SO_EXCLUSIVEADDRUSE, 1, 4) == 0
    assert w.setsockopt(s, w.SOL_SOCKET_WINSOCK, w.SO_REUSEADDR, 1, 4) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEINVAL
    t = io.tcp_socket()
    assert w.setsockopt(t, w.SOL_SOCKET_WINSOCK, w.SO_REUSEADDR, 1, 4) == 0
    assert w.setsockopt(t, w.SOL_SOCKET_WINSOCK, w.SO_EXCLUSIVEADDRUSE, 1, 4) == -1
    assert w.WSAGetLastError() == w.WSAEINVAL


# ---------------------------------------------------------------------- WSAEventSelect, select


def _events(io, s: int, ev: int) -> w.WSANETWORKEVENTS:
    io.wait_signaled(ev)
    ne = w.WSANETWORKEVENTS()
    assert w.WSAEnumNetworkEvents(s, ev, ne) == 0
    return ne


def test_wsaeventselect_accept_read_write_close(io) -> None:
    # [MS:WSAEventSelect] [MS:WSAEnumNetworkEvents] [W:ws2_32/sock.c:test_events]
    lst, addr = io.listener()
    ev = w.WSACreateEvent()
    io.keep(ev)
    assert w.WSAEventSelect(lst, ev, w.FD_ACCEPT) == 0
    assert io.stays_nonsignaled(ev)
    client = io.tcp_socket()
    assert w.connect(client, addr) == 0
    ne = _events(io, lst, ev)
    assert ne.lNetworkEvents == w.FD_ACCEPT and ne.iErrorCode[3] == 0
    assert not io.is_signaled(ev)  # WSAEnumNetworkEvents reset it
    server = io.keep_socket(w.accept(lst))
    sev = io.keep(w.WSACreateEvent())
    assert w.WSAEventSelect(server, sev, w.FD_READ | w.FD_WRITE | w.FD_CLOSE) == 0
    ne = _events(io, server, sev)
    assert ne.lNetworkEvents == w.FD_WRITE  # connected, room to send
    assert w.send(client, b"abc", 0) == 3
    ne = _events(io, server, sev)
    assert ne.lNetworkEvents == w.FD_READ
    # not recorded again until a receive re-enables it
    assert w.send(client, b"def", 0) == 3
    assert io.stays_nonsignaled(sev)
    buf = bytearray(2)
    assert w.recv(server, buf, 2, 0) == 2
    ne = _events(io, server, sev)  # data is left: FD_READ again
    assert ne.lNetworkEvents == w.FD_READ
    big = bytearray(16)
    assert w.recv(server, big, 16, 0) == 4
    io.closesocket(client)
    ne = _events(io, server, sev)
    assert ne.lNetworkEvents & w.FD_CLOSE and ne.iErrorCode[5] == 0
    # the socket is non-blocking now, and cannot be made blocking while selected
    assert w.ioctlsocket(server, w.FIONBIO, w.Ref(0)) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEINVAL
    assert w.WSAEventSelect(server, 0, 0) == 0
    assert w.ioctlsocket(server, w.FIONBIO, w.Ref(0)) == 0


def test_wsaeventselect_connect(io) -> None:
    # [MS:WSAEventSelect] (FD_CONNECT after a non-blocking connect) [W:ws2_32/sock.c:test_events]
    _, addr = io.listener()
    c = io.tcp_socket()
    ev = io.keep(w.WSACreateEvent())
    assert w.WSAEventSelect(c, ev, w.FD_CONNECT | w.FD_WRITE) == 0
    r = w.connect(c, addr)
    assert r == 0 or w.WSAGetLastError() == w.WSAEWOULDBLOCK
    seen = 0
    while seen != w.FD_CONNECT | w.FD_WRITE:
        ne = _events(io, c, ev)
        seen |= ne.lNetworkEvents
        if ne.lNetworkEvents & w.FD_CONNECT:
            assert ne.iErrorCode[4] == 0
    assert w.WSAWaitForMultipleEvents(1, [ev], False, 0, False) == w.WSA_WAIT_TIMEOUT


def test_wsaeventselect_bad_input(io) -> None:
    # [MS:WSAEventSelect] [MS:WSAEnumNetworkEvents]
    s = io.tcp_socket()
    assert w.WSAEventSelect(w.INVALID_SOCKET, 0, 0) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAENOTSOCK
    mutex = io.keep(w.CreateMutex(None, False, None))
    assert w.WSAEventSelect(s, mutex, w.FD_READ) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEINVAL
    assert w.WSAEnumNetworkEvents(s, 0, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEFAULT


def test_wsa_event_helpers() -> None:
    # [MS:WSACreateEvent] (manual-reset, nonsignaled) [MS:WSAWaitForMultipleEvents]
    ev = w.WSACreateEvent()
    assert ev != w.WSA_INVALID_EVENT
    assert w.WSAWaitForMultipleEvents(1, [ev], False, 0, False) == w.WSA_WAIT_TIMEOUT
    assert w.WSASetEvent(ev)
    assert w.WSAWaitForMultipleEvents(1, [ev], True, 0, False) == w.WSA_WAIT_EVENT_0
    assert w.WSAWaitForMultipleEvents(1, [ev], True, 0, False) == w.WSA_WAIT_EVENT_0  # manual
    assert w.WSAResetEvent(ev)
    assert w.WSACloseEvent(ev)
    assert not w.WSACloseEvent(ev)
    assert w.WSAWaitForMultipleEvents(1, [ev], False, 0, False) == w.WSA_WAIT_FAILED


def test_select(io) -> None:
    # [MS:select] [W:ws2_32/sock.c:test_select]: sets shrink to the ready sockets
    client, server = io.socket_pair()
    rd, wr = [server, client], [client]
    assert w.select(0, rd, wr, None, w.TIMEVAL(0, 0)) == 1
    assert (rd, wr) == ([], [client])
    rd = [server]
    assert w.select(0, rd, None, None, w.TIMEVAL(0, 50_000)) == 0 and rd == []
    assert w.send(client, b"x", 0) == 1
    rd, ex = [server], [server]
    assert w.select(0, rd, None, ex, None) == 1 and rd == [server] and ex == []
    assert w.select(0, None, None, None, w.TIMEVAL(0, 0)) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEINVAL
    assert w.select(0, [], [], [], None) == w.SOCKET_ERROR
    assert w.select(0, [server], None, None, w.TIMEVAL(-1, 0)) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEINVAL
    ev = io.event()
    assert w.select(0, [ev], None, None, w.TIMEVAL(0, 0)) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAENOTSOCK


def test_select_wakes_on_peer_close(io) -> None:
    # [MS:select] (readable: the connection was closed)
    client, server = io.socket_pair()
    io.closesocket(client)
    rd = [server]
    assert w.select(0, rd, None, None, w.TIMEVAL(5, 0)) == 1 and rd == [server]
    buf = bytearray(1)
    assert w.recv(server, buf, 1, 0) == 0


def test_connect_refused_in_except_set(io) -> None:
    # [MS:select] (except set: a non-blocking connect that failed)
    probe = pysocket.socket()
    probe.bind(("127.0.0.1", 0))
    dead = probe.getsockname()
    probe.close()
    c = io.tcp_socket()
    assert w.ioctlsocket(c, w.FIONBIO, w.Ref(1)) == 0
    r = w.connect(c, dead)
    if r == 0:
        pytest.skip("the kernel connected a closed port")
    if w.WSAGetLastError() == w.WSAECONNREFUSED:
        return  # refused inside the call: also what Windows may report on loopback
    assert w.WSAGetLastError() == w.WSAEWOULDBLOCK
    ex = [c]
    assert w.select(0, None, None, ex, w.TIMEVAL(5, 0)) == 1 and ex == [c]
    val, size = w.Ref(0), w.Ref(4)
    assert w.getsockopt(c, w.SOL_SOCKET_WINSOCK, w.SO_ERROR, val, size) == 0
    assert val.value == w.WSAECONNREFUSED


def test_wsastartup_and_cleanup() -> None:
    # [MS:WSAStartup] [MS:WSACleanup] [W:ws2_32/sock.c:test_WithoutWSAStartup]
    data = w.WSADATA()
    assert w.WSAStartup(0x0202, None) == w.WSAEFAULT
    assert w.WSAStartup(0x0000, data) == w.WSAVERNOTSUPPORTED
    assert w.WSAStartup(0x0202, data) == 0
    assert (data.wVersion, data.wHighVersion) == (0x0202, 0x0202)
    assert w.WSAStartup(0x0101, data) == 0 and data.wVersion == 0x0101
    assert w.WSAStartup(0x0303, data) == 0 and data.wVersion == 0x0202
    assert w.WSACleanup() == 0
    assert w.WSACleanup() == 0
    assert w.WSACleanup() == 0
    assert w.WSACleanup() == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSANOTINITIALISED


def test_closed_and_wrong_type_handles(io) -> None:
    # [MS:Windows Sockets Error Codes] (WSAENOTSOCK: "an operation was attempted on something
    # that is not a socket") for every new call, with a closed socket and an event handle
    closed = w.socket(w.AF_INET, w.SOCK_STREAM, 0)
    assert w.closesocket(closed) == 0
    ev = io.event()
    buf = bytearray(4)
    ne = w.WSANETWORKEVENTS()
    for bad in (closed, ev):
        calls = {
            "WSASendTo": lambda h: w.WSASendTo(
                h, [b"x"], 1, w.Ref(0), 0, ("127.0.0.1", 9), 16, None, None
            ),
            "WSARecvFrom": lambda h: w.WSARecvFrom(
                h, [buf], 1, w.Ref(0), w.Ref(0), None, None, None, None
            ),
            "DisconnectEx": lambda h: w.DisconnectEx(h, None, 0, 0),
            "TransmitFile": lambda h: w.TransmitFile(h, 0, 0, 0, None, None, 0),
            "WSAIoctl": lambda h: w.WSAIoctl(
                h, w.FIONREAD, None, 0, w.Ref(0), 4, w.Ref(0), None, None
            ),
            "ioctlsocket": lambda h: w.ioctlsocket(h, w.FIONREAD, w.Ref(0)),
            "setsockopt": lambda h: w.setsockopt(h, w.SOL_SOCKET_WINSOCK, w.SO_KEEPALIVE, 1, 4),
            "getsockopt": lambda h: w.getsockopt(
                h, w.SOL_SOCKET_WINSOCK, w.SO_TYPE, w.Ref(0), w.Ref(4)
            ),
            "WSAEventSelect": lambda h: w.WSAEventSelect(h, 0, 0),
            "WSAEnumNetworkEvents": lambda h: w.WSAEnumNetworkEvents(h, 0, ne),
            "select": lambda h: w.select(0, [h], None, None, w.TIMEVAL(0, 0)),
        }
        for name, call in calls.items():
            w.WSASetLastError(SENTINEL)
            result = call(bad)
            assert result in (False, w.SOCKET_ERROR), name
            assert w.WSAGetLastError() == w.WSAENOTSOCK, name
