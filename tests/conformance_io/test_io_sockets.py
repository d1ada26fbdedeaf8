"""Win32 I/O conformance: overlapped sockets through the Winsock subset (spec §10, and the
socket side of behaviours 49, 56, 82, 105).

Wine: ws/afd.c, ws/sock.c (test_WSARecv, test_completion_port, test_AcceptEx, test_ConnectEx);
MS: WSARecv, WSASend, AcceptEx, ConnectEx, closesocket, LPWSAOVERLAPPED_COMPLETION_ROUTINE.
"""

from __future__ import annotations

import pytest

import winaio.win32 as w

#: Every test runs on the C and the Python immediate paths (``sock_impl``).
pytestmark = pytest.mark.usefixtures("sock_impl", "slot_impl")

SENTINEL = 0xDEADBEEF
SHORT = 100
LONG = 5000
ADDR_LEN = 32  # sizeof(sockaddr_in) + 16, as AcceptEx requires


def _wsa_result(s: int, ov, wait: bool) -> tuple[bool, int, int]:
    n, flags = w.Ref(SENTINEL), w.Ref(SENTINEL)
    ok = w.WSAGetOverlappedResult(s, ov, n, wait, flags)
    return bool(ok), (0 if ok else w.WSAGetLastError()), n.value


def test_wsarecv_pending_then_completes(io) -> None:
    # spec: win32 §10 / #49 (pending: SOCKET_ERROR + WSA_IO_PENDING; WSA_IO_INCOMPLETE until done)
    client, server = io.socket_pair()
    ov = io.ov_event()
    bufs = [bytearray(2), bytearray(8)]
    flags = w.Ref(0)
    r = w.WSARecv(server, bufs, 2, None, flags, ov, None)
    assert r == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSA_IO_PENDING == 997
    assert not io.is_signaled(ov.hEvent)
    assert _wsa_result(server, ov, False) == (False, w.WSA_IO_INCOMPLETE, SENTINEL)
    assert w.send(client, b"hello", 0) == 5
    io.wait_signaled(ov.hEvent)
    assert _wsa_result(server, ov, True) == (True, 0, 5)
    assert bytes(bufs[0]) == b"he"
    assert bytes(bufs[1][:3]) == b"llo"


def test_wsarecv_data_ready(io) -> None:
    # spec: win32 §10 (immediate completion -> 0; the event is set either way)
    client, server = io.socket_pair()
    assert w.send(client, b"abc", 0) == 3
    ov = io.ov_event()
    buf = bytearray(8)
    flags = w.Ref(0)
    r = w.WSARecv(server, [buf], 1, None, flags, ov, None)
    if r != 0:
        assert r == w.SOCKET_ERROR
        assert w.WSAGetLastError() == w.WSA_IO_PENDING
    io.wait_signaled(ov.hEvent)
    assert _wsa_result(server, ov, True) == (True, 0, 3)
    assert bytes(buf[:3]) == b"abc"


def test_wsarecv_completion_routine_deferred(io) -> None:
    # spec: win32 §10 (a completion routine is scheduled for the next alertable wait of the
    # issuing thread, even for an immediate completion) [MS:WSARecv]
    client, server = io.socket_pair()
    assert w.send(client, b"xyz", 0) == 3
    calls: list = []
    ov = io.ov()
    buf = bytearray(8)
    flags = w.Ref(0)
    r = w.WSARecv(server, [buf], 1, None, flags, ov, lambda e, n, o, f: calls.append((e, n, o, f)))
    assert r == 0 or w.WSAGetLastError() == w.WSA_IO_PENDING
    assert calls == []
    assert w.SleepEx(LONG, True) == w.WAIT_IO_COMPLETION
    assert len(calls) == 1
    err, n, o, _flags = calls[0]
    assert (err, n) == (0, 3)
    assert o is ov
    assert bytes(buf[:3]) == b"xyz"


def test_wsasend_gather(io) -> None:
    # spec: win32 §10 (WSASend with several buffers)
    client, server = io.socket_pair()
    ov = io.ov_event()
    r = w.WSASend(client, [b"ab", b"cd", b"e"], 3, None, 0, ov, None)
    assert r == 0 or w.WSAGetLastError() == w.WSA_IO_PENDING
    io.wait_signaled(ov.hEvent)
    assert _wsa_result(client, ov, True) == (True, 0, 5)
    assert io.recv_exact(server, 5) == b"abcde"


def test_blocking_send_recv(io) -> None:
    # spec: win32 §10 (send/recv on the same sockets)
    client, server = io.socket_pair()
    assert w.send(server, b"ping", 0) == 4
    buf = bytearray(8)
    assert w.recv(client, buf, 4, 0) == 4  # recv fills the caller's buffer [MS:recv]
    assert buf[:4] == b"ping"


def test_peer_graceful_close_completes_recv_with_zero(io) -> None:
    # spec: win32 §10 (orderly shutdown: a pending receive completes with 0 bytes)
    client, server = io.socket_pair()
    ov = io.ov_event()
    assert w.ReadFile(server, bytearray(8), 8, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert w.shutdown(client, 1) == 0  # SD_SEND
    io.wait_signaled(ov.hEvent)
    assert io.result(server, ov) == (True, 0, 0)


def test_closesocket_aborts_pending_with_all_notifications(io) -> None:
    # spec: win32 §10 / §7 (closesocket cancels pending overlapped ops: they fail with
    # WSA_OPERATION_ABORTED and their events, routines and packets are still performed)
    # [MS:closesocket]
    _client, server = io.socket_pair()
    ov_ev = io.ov_event()
    flags = w.Ref(0)
    r = w.WSARecv(server, [bytearray(8)], 1, None, flags, ov_ev, None)
    assert r == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSA_IO_PENDING
    calls: list = []
    ov_cr = io.ov()
    r = w.WSARecv(server, [bytearray(8)], 1, None, w.Ref(0), ov_cr, lambda *a: calls.append(a))
    assert r == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSA_IO_PENDING
    io.closesocket(server)
    io.wait_signaled(ov_ev.hEvent)
    assert io.result(0, ov_ev) == (False, w.WSA_OPERATION_ABORTED, 0)
    assert w.SleepEx(LONG, True) == w.WAIT_IO_COMPLETION
    assert len(calls) == 1
    assert calls[0][0] == w.WSA_OPERATION_ABORTED
    assert calls[0][1] == 0
    assert calls[0][2] is ov_cr


def test_closesocket_posts_aborted_packet(io) -> None:
    # spec: win32 §10 (closesocket: the packet of a port-bound request is still posted)
    _client, server = io.socket_pair()
    port = io.port(server, key=4)
    ov = io.ov()
    assert w.ReadFile(server, bytearray(8), 8, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    io.closesocket(server)
    pk = io.gqcs(port, LONG)
    assert pk.ok is False
    assert pk.error == w.ERROR_OPERATION_ABORTED
    assert pk.overlapped is ov
    assert pk.key == 4


def test_connection_reset_surfaces_as_netname_deleted(io) -> None:
    # spec: win32 §10 ("A reset connection surfaces via GQCS as ERROR_NETNAME_DELETED (64)";
    # closing a socket with unread received data sends an RST)
    client, server = io.socket_pair()
    port = io.port(server, key=8)
    assert w.send(server, b"unread", 0) == 6
    ov = io.ov()
    assert w.ReadFile(server, bytearray(8), 8, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    io.closesocket(client)
    pk = io.gqcs(port, LONG)
    assert pk.ok is False
    assert pk.error == w.ERROR_NETNAME_DELETED == 64
    assert pk.overlapped is ov


def test_acceptex_pending_until_connect(io) -> None:
    # spec: win32 §10 [MS:AcceptEx]
    lst, addr = io.listener()
    acc = io.tcp_socket()
    out = bytearray(2 * ADDR_LEN)
    ov = io.ov_event()
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.AcceptEx(lst, acc, out, 0, ADDR_LEN, ADDR_LEN, n, ov) is False
    assert w.WSAGetLastError() == w.ERROR_IO_PENDING
    assert io.stays_nonsignaled(ov.hEvent)
    client = io.tcp_socket()
    assert w.connect(client, addr) == 0
    io.wait_signaled(ov.hEvent)
    assert io.result(lst, ov) == (True, 0, 0)
    assert w.send(client, b"hi", 0) == 2
    buf = bytearray(2)
    assert w.recv(acc, buf, 2, 0) == 2
    assert buf == b"hi"


def test_acceptex_with_receive_data(io) -> None:
    # spec: win32 §10 [MS:AcceptEx] (dwReceiveDataLength > 0: completes with the first data)
    lst, addr = io.listener()
    port = io.port(lst, key=12)
    acc = io.tcp_socket()
    out = bytearray(16 + 2 * ADDR_LEN)
    ov = io.ov()
    assert w.AcceptEx(lst, acc, out, 16, ADDR_LEN, ADDR_LEN, None, ov) is False
    assert w.WSAGetLastError() == w.ERROR_IO_PENDING
    client = io.tcp_socket()
    assert w.connect(client, addr) == 0
    io.no_packet(port)  # connected, but no data yet
    assert w.send(client, b"first", 0) == 5
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes, pk.key) == (True, 5, 12)
    assert pk.overlapped is ov
    assert bytes(out[:5]) == b"first"


def test_connectex_sends_initial_data(io) -> None:
    # spec: win32 §10 [MS:ConnectEx] (the socket must be bound first)
    lst, addr = io.listener()
    s = io.tcp_socket()
    assert w.bind(s, ("127.0.0.1", 0)) == 0
    ov = io.ov_event()
    sent = w.Ref(SENTINEL)
    ok = w.ConnectEx(s, addr, b"hello", 5, sent, ov)
    if not ok:
        assert w.WSAGetLastError() == w.ERROR_IO_PENDING
    io.wait_signaled(ov.hEvent)
    assert io.result(s, ov) == (True, 0, 5)
    acc = io.keep_socket(w.accept(lst))
    assert io.recv_exact(acc, 5) == b"hello"


def test_connectex_unbound_socket_fails(io) -> None:
    # spec: win32 §10 [MS:ConnectEx] (unbound socket -> WSAEINVAL)
    _lst, addr = io.listener()
    s = io.tcp_socket()
    ov = io.ov_event()
    assert w.ConnectEx(s, addr, None, 0, None, ov) is False
    assert w.WSAGetLastError() == w.WSAEINVAL
