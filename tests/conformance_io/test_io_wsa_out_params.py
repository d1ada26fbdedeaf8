"""Win32 I/O conformance: what WSARecv / WSASend / recv write into the caller's parameters
(issue 12: out-parameters and OVERLAPPED fields), on both backends, through ``winaio.win32``.

Sources: Wine ws2_32 ``tests/sock.c`` (test_WSARecv: last error 0 on success, WSAEINVAL for a
completion routine on a port-bound socket), Wine ``ws2_32/socket.c`` (WS2_recv_base /
WS2_sendto: Internal = STATUS_PENDING before the AFD request, ``*ret_size`` written only when
the request succeeded), ReactOS msafd ``WSPRecv`` (``*lpFlags`` = 0 unless MSG_PARTIAL/MSG_OOB),
MS Learn WSARecv, WSASend, recv.
"""

from __future__ import annotations

import pytest

import winaio.win32 as w

#: Every test runs on the C and the Python immediate paths (``sock_impl``).
pytestmark = pytest.mark.usefixtures("sock_impl")

SENTINEL = 0xDEADBEEF
LONG = 5000
HIGH = 0x1234  # a recognisable InternalHigh
MSG_PEEK = 0x2
STATUS_PENDING = 0x103
WSAENOTCONN = 10057
WSAESHUTDOWN = 10058


def test_wsarecv_immediate_success_writes_count_flags_and_last_error(io) -> None:
    # [MS:WSARecv] lpFlags is [in, out]; ReactOS msafd WSPRecv: output flags are 0 for a normal
    # receive (MSG_PEEK is an input flag); [W:ws2_32/sock.c:test_WSARecv] last error 0.
    client, server = io.socket_pair()
    io.send_all(client, b"peek")
    ov = io.ov_event()
    buf = bytearray(16)
    n, flags = w.Ref(SENTINEL), w.Ref(MSG_PEEK)
    for _ in range(200):  # loopback delivers at once; allow a pending first attempt anyway
        w.SetLastError(SENTINEL)
        r = w.WSARecv(server, [buf], 1, n, flags, ov, None)
        if r == 0:
            break
        assert w.WSAGetLastError() == w.WSA_IO_PENDING
        io.wait_signaled(ov.hEvent)
        n.value, flags.value = SENTINEL, MSG_PEEK
    assert r == 0
    assert n.value == 4
    assert flags.value == 0
    assert w.GetLastError() == 0
    assert bytes(buf[:4]) == b"peek"
    assert (ov.Internal, ov.InternalHigh) == (0, 4)
    assert io.recv_exact(server, 4) == b"peek"  # MSG_PEEK left the data queued


def test_wsarecv_pending_leaves_count_and_flags_untouched(io) -> None:
    # [W:ws2_32/socket.c:WS2_recv_base] ``*ret_size`` only on success; Internal = STATUS_PENDING
    # and InternalHigh untouched while pending [W:k32/pipe.c:test_readfileex_pending].
    client, server = io.socket_pair()
    ov = io.ov_event()
    ov.InternalHigh = HIGH
    n, flags = w.Ref(SENTINEL), w.Ref(MSG_PEEK)
    assert w.WSARecv(server, [bytearray(8)], 1, n, flags, ov, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSA_IO_PENDING
    assert (n.value, flags.value) == (SENTINEL, MSG_PEEK)
    assert (ov.Internal, ov.InternalHigh) == (STATUS_PENDING, HIGH)
    io.send_all(client, b"x")
    io.wait_signaled(ov.hEvent)
    assert (n.value, flags.value) == (SENTINEL, MSG_PEEK)  # completion writes the OVERLAPPED
    assert (ov.Internal, ov.InternalHigh) == (0, 1)


def test_wsarecv_failing_at_once_writes_nothing_but_internal(io) -> None:
    # An unconnected socket: WSAENOTCONN at once, no notification; the byte count, the flags
    # and InternalHigh keep their values; Internal is the STATUS_PENDING ws2_32 stores before
    # the request [W:ws2_32/socket.c:WS2_recv_base] (ReactOS msafd WSPRecv does the same).
    s = io.tcp_socket()
    ov = io.ov_event(initial=True)
    ov.InternalHigh = HIGH
    n, flags = w.Ref(SENTINEL), w.Ref(MSG_PEEK)
    assert w.WSARecv(s, [bytearray(8)], 1, n, flags, ov, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == WSAENOTCONN
    assert (n.value, flags.value) == (SENTINEL, MSG_PEEK)
    assert (ov.Internal, ov.InternalHigh) == (STATUS_PENDING, HIGH)
    assert not io.is_signaled(ov.hEvent)  # reset at issue, never signaled (spec §4.2)


def test_wsasend_failing_at_once_writes_nothing_but_internal(io) -> None:
    # send after shutdown(SD_SEND): WSAESHUTDOWN at once [MS:WSASend]; *lpNumberOfBytesSent and
    # InternalHigh untouched [W:ws2_32/socket.c:WS2_sendto].
    client, _server = io.socket_pair()
    assert w.shutdown(client, w.SD_SEND) == 0
    ov = io.ov_event()
    ov.InternalHigh = HIGH
    n = w.Ref(SENTINEL)
    assert w.WSASend(client, [b"data"], 1, n, 0, ov, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == WSAESHUTDOWN
    assert n.value == SENTINEL
    assert (ov.Internal, ov.InternalHigh) == (STATUS_PENDING, HIGH)


def test_wsasend_immediate_success_writes_count_and_last_error(io) -> None:
    # [MS:WSASend] *lpNumberOfBytesSent when the send completes immediately; last error 0
    # [W:ws2_32/sock.c:test_WSASendTo].
    client, server = io.socket_pair()
    ov = io.ov_event()
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.WSASend(client, [b"ab", bytearray(b"cd")], 2, n, 0, ov, None) == 0
    assert n.value == 4
    assert w.GetLastError() == 0
    assert (ov.Internal, ov.InternalHigh) == (0, 4)
    assert io.recv_exact(server, 4) == b"abcd"


def test_bad_socket_leaves_overlapped_untouched(io) -> None:
    # An invalid socket fails before any request exists: WSAENOTSOCK, and neither the OVERLAPPED
    # nor the out-parameters are written [W:ws2_32/sock.c:test_WSASendTo] (WSAENOTSOCK).
    ov = io.ov()
    ov.Internal, ov.InternalHigh = 0x77, HIGH
    n, flags = w.Ref(SENTINEL), w.Ref(0)
    for call in (
        lambda: w.WSARecv(0x7FFFFFF0, [bytearray(4)], 1, n, flags, ov, None),
        lambda: w.WSASend(0x7FFFFFF0, [b"data"], 1, n, 0, ov, None),
        lambda: w.WSARecv(w.INVALID_SOCKET, [bytearray(4)], 1, n, flags, ov, None),
    ):
        assert call() == w.SOCKET_ERROR
        assert w.WSAGetLastError() == w.WSAENOTSOCK
        assert n.value == SENTINEL
        assert (ov.Internal, ov.InternalHigh) == (0x77, HIGH)


def test_bad_buffers_and_flags_fail_with_wsaefault(io) -> None:
    # [MS:WSARecv] WSAEFAULT: lpBuffers, lpNumberOfBytesRecvd, lpFlags... not in the user
    # address space (here: a NULL lpFlags, a buffer count past the array, no array).
    client, server = io.socket_pair()
    ov = io.ov()
    cases = (
        lambda: w.WSARecv(server, [bytearray(4)], 1, None, None, ov, None),  # type: ignore[arg-type]
        lambda: w.WSARecv(server, [bytearray(4)], 2, None, w.Ref(0), ov, None),
        lambda: w.WSASend(client, None, 1, None, 0, ov, None),
    )
    for call in cases:
        assert call() == w.SOCKET_ERROR
        assert w.WSAGetLastError() == w.WSAEFAULT


def test_wsarecv_routine_on_port_bound_socket_is_wsaeinval(io) -> None:
    # "Using completion function on socket associated with completion port is not allowed"
    # [W:ws2_32/sock.c:test_WSARecv]: WSAEINVAL, the routine never runs, no packet.
    client, server = io.socket_pair()
    port = io.port(server, key=9)
    calls: list = []
    ov = io.ov()
    r = w.WSARecv(server, [bytearray(4)], 1, None, w.Ref(0), ov, lambda *a: calls.append(a))
    assert r == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEINVAL
    io.send_all(client, b"zz")
    assert w.SleepEx(0, True) == 0
    assert calls == []
    io.no_packet(port)


def test_recv_fills_the_callers_buffer(io) -> None:
    # [MS:recv] int recv(SOCKET s, char *buf, int len, int flags): the data lands in buf, the
    # return value is the byte count, 0 after a graceful close.
    client, server = io.socket_pair()
    assert w.send(client, b"hello", 0) == 5
    buf = bytearray(b"........")
    got = 0
    while got < 5:
        n = w.recv(server, memoryview(buf)[got:], 5 - got, 0)
        assert n > 0
        got += n
    assert buf == b"hello..."
    assert w.shutdown(client, w.SD_SEND) == 0
    assert w.recv(server, buf, len(buf), 0) == 0
    assert w.recv(server, bytes(4), 4, 0) == w.SOCKET_ERROR  # read-only buffer


def test_receive_into_zero_buffers_is_wsaeinval(io) -> None:
    # [W:ws2_32/sock.c:test_empty_recv]: WSARecv(s, NULL, 0, ...) and WSARecv(s, bufs, 0, ...)
    # fail with WSAEINVAL (the count is checked before the array); one empty buffer still pends.
    _client, server = io.socket_pair()
    ov = io.ov_event()
    for buffers in (None, [bytearray(0)]):
        assert w.WSARecv(server, buffers, 0, None, w.Ref(0), ov, None) == w.SOCKET_ERROR
        assert w.WSAGetLastError() == w.WSAEINVAL
    assert w.WSARecv(server, [bytearray(0)], 1, None, w.Ref(0), ov, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSA_IO_PENDING


def test_overlapped_recv_on_a_non_overlapped_non_blocking_socket_blocks(io) -> None:
    # [W:ws2_32/sock.c:test_nonblocking_async_recv]: "With a non-overlapped socket, WSARecv()
    # always blocks when passed an overlapped structure, but returns WSAEWOULDBLOCK otherwise";
    # the OVERLAPPED then holds the result.
    lst, addr = io.listener()
    s = io.keep_socket(w.WSASocket(w.AF_INET, w.SOCK_STREAM, w.IPPROTO_TCP, None, 0, 0))
    assert w.connect(s, addr) == 0
    peer = io.keep_socket(w.accept(lst))
    assert w.ioctlsocket(s, w.FIONBIO, w.Ref(1)) == 0
    buf = bytearray(16)
    flags = w.Ref(0)
    assert w.WSARecv(s, [buf], 1, None, flags, None, None) == w.SOCKET_ERROR
    assert w.WSAGetLastError() == w.WSAEWOULDBLOCK
    sender = io.thread(lambda: 0 if w.send(peer, b"data", 0) == 4 else 1)
    ov = io.ov_event()
    n = w.Ref(SENTINEL)
    assert w.WSARecv(s, [buf], 1, n, flags, ov, None) == 0  # blocked until "data" came
    assert sender.join() == 0
    assert n.value == 4 and bytes(buf[:4]) == b"data"
    assert (ov.Internal, ov.InternalHigh) == (0, 4)
    assert io.result(s, ov) == (True, 0, 4)


def test_readfileex_ignores_whatever_hevent_holds(io) -> None:
    # [MS:ReadFileEx] hEvent is "free for the application's use"; Wine keeps a semaphore there
    # [W:k32/file.c:test_async_file_errors]: the call is accepted and the routine runs.
    h = io.file(data=b"x" * 8192)
    sem = io.keep(w.CreateSemaphore(None, 0, 1, None))
    calls: list = []
    for hevent in (sem, 0x7FFFFFF0):
        ov = io.ov(hEvent=hevent)
        buf = bytearray(4096)
        assert w.ReadFileEx(h, buf, 4096, ov, lambda e, n, o: calls.append((e, n, o)))
        assert w.SleepEx(LONG, True) == w.WAIT_IO_COMPLETION
        assert calls.pop() == (0, 4096, ov)
        assert ov.hEvent == hevent  # untouched
    assert w.WaitForSingleObject(sem, 0) == w.WAIT_TIMEOUT  # never released
