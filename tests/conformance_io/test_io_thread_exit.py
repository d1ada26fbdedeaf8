"""Win32 I/O conformance: what happens to a thread's pending I/O when the thread ends
(behaviours 108-111 and the seeds' central point; spec §8).

A request is *not* canceled at its issuing thread's exit iff the file object is associated with
a completion port AND the request carries a completion value (an OVERLAPPED whose hEvent low
bit is 0) AND it has no event. Normal return, ExitThread and TerminateThread behave alike.

Wine: ws/afd.c test_async_thread_termination; MS: ExitThread, I/O Completion Ports; seed
documents "Asynchronous I/O and asynchronous RPC" and "Alertable I/O".
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import winaio.win32 as w

SENTINEL = 0xDEADBEEF
SHORT = 100
LONG = 5000
STREAMS = ["pipe", "socket"]
EXITS = ["return", "ExitThread", "TerminateThread"]


def run_and_end(io, testing, exit_mode: str, issue: Callable[[], None]) -> None:
    """Run ``issue()`` in a thread created with CreateThread, then end that thread by
    ``exit_mode`` and wait until its thread object is signaled."""
    issued = io.event()
    hold = io.event()

    def body() -> int:
        issue()
        if exit_mode == "ExitThread":
            w.ExitThread(0x11)
        if exit_mode == "TerminateThread":
            assert w.SetEvent(issued)
            w.WaitForSingleObject(hold, LONG)
        return 0x11

    t = io.thread(body, terminated_ok=exit_mode == "TerminateThread")
    io.on_cleanup(lambda: w.SetEvent(hold))
    if exit_mode == "TerminateThread":
        io.wait_signaled(issued)
        testing.wait_until_blocked(t.tid)
        assert w.TerminateThread(t.handle, 0x11) is True
    assert t.join() == 0x11
    if exit_mode == "TerminateThread":
        assert t.error is None, t.error
        assert w.SetEvent(hold)  # let the emulated (Python) thread unwind


def issue_read(h: int, ov, buf: bytearray, results: list) -> Callable[[], None]:
    def issue() -> None:
        n = w.Ref(SENTINEL)
        w.SetLastError(SENTINEL)
        ok = w.ReadFile(h, buf, len(buf), n, ov)
        results.append((ok, w.GetLastError(), n.value))

    return issue


# ---------------------------------------------------------------------------------------------
# #108: no port -> canceled
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("exit_mode", EXITS)
@pytest.mark.parametrize("kind", STREAMS)
def test_exit_cancels_read_without_port(io, testing, kind, exit_mode) -> None:
    # spec: win32 #108 #111 [W:ws/afd.c:test_async_thread_termination] [MS:ExitThread]
    reader, writer = io.stream(kind)
    ov = io.ov_event()
    buf = bytearray(8)
    res: list = []
    run_and_end(io, testing, exit_mode, issue_read(reader, ov, buf, res))
    assert res == [(False, w.ERROR_IO_PENDING, 0)]
    io.wait_signaled(ov.hEvent)
    assert ov.Internal == w.STATUS_CANCELLED
    assert ov.InternalHigh == 0
    assert io.result(reader, ov) == (False, w.ERROR_OPERATION_ABORTED, 0)
    # the canceled read consumes nothing
    io.send_all(writer, b"after")
    assert io.recv_exact(reader, 5) == b"after"


@pytest.mark.parametrize("exit_mode", EXITS)
def test_exit_cancels_read_without_event_signals_file(io, testing, exit_mode) -> None:
    # spec: win32 #108 #111 (no port, no event: canceled, the file object is set)
    server, _client = io.pipe()
    ov = io.ov()
    res: list = []
    run_and_end(io, testing, exit_mode, issue_read(server, ov, bytearray(4), res))
    assert res == [(False, w.ERROR_IO_PENDING, 0)]
    io.wait_signaled(server)
    assert ov.Internal == w.STATUS_CANCELLED
    assert io.result(server, ov) == (False, w.ERROR_OPERATION_ABORTED, 0)


@pytest.mark.parametrize("exit_mode", EXITS)
@pytest.mark.parametrize("kind", STREAMS)
def test_exit_cancels_readfileex_and_routine_never_runs(io, testing, kind, exit_mode) -> None:
    # spec: win32 #108 #111 (ReadFileEx of an exiting thread: canceled, no APC ever runs)
    server, _client = io.stream(kind)
    ov = io.ov()
    calls: list = []
    res: list = []

    def issue() -> None:
        res.append(w.ReadFileEx(server, bytearray(4), 4, ov, lambda *a: calls.append(a)))

    run_and_end(io, testing, exit_mode, issue)
    assert res == [True]
    testing.wait_until(lambda: w.HasOverlappedIoCompleted(ov), 5.0, "request canceled")
    assert ov.Internal == w.STATUS_CANCELLED
    assert w.SleepEx(SHORT, True) == 0  # not queued to the main thread either
    assert calls == []


# ---------------------------------------------------------------------------------------------
# #109: port + completion value + no event -> survives the thread
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("exit_mode", EXITS)
@pytest.mark.parametrize("kind", STREAMS)
def test_port_read_without_event_survives_exit_and_completes(io, testing, kind, exit_mode) -> None:
    # spec: win32 #109 #111 [W:ws/afd.c:test_async_thread_termination]
    reader, writer = io.stream(kind)
    port = io.port(reader, key=0x109)
    ov = io.ov()
    buf = bytearray(8)
    res: list = []
    run_and_end(io, testing, exit_mode, issue_read(reader, ov, buf, res))
    assert res == [(False, w.ERROR_IO_PENDING, 0)]
    io.no_packet(port)  # still pending, nothing posted
    io.send_all(writer, b"later")
    pk = io.gqcs(port, LONG)
    assert pk.ok is True
    assert (pk.bytes, pk.key) == (5, 0x109)
    assert pk.overlapped is ov
    assert ov.Internal == 0
    assert bytes(buf[:5]) == b"later"


@pytest.mark.parametrize("exit_mode", EXITS)
@pytest.mark.parametrize("kind", STREAMS)
def test_port_read_without_event_survives_exit_until_cancelled(
    io, testing, kind, exit_mode
) -> None:
    # spec: win32 #109 #111 (CancelIoEx afterwards: packet with STATUS_CANCELLED)
    # [W:ws/afd.c:test_async_thread_termination]
    reader, _writer = io.stream(kind)
    port = io.port(reader, key=0)
    ov = io.ov()
    res: list = []
    run_and_end(io, testing, exit_mode, issue_read(reader, ov, bytearray(8), res))
    assert res == [(False, w.ERROR_IO_PENDING, 0)]
    io.no_packet(port)
    assert w.CancelIoEx(reader, None) is True
    pk = io.gqcs(port, LONG)
    assert pk.ok is False
    assert pk.error == w.ERROR_OPERATION_ABORTED
    assert pk.overlapped is ov
    assert (pk.bytes, pk.key) == (0, 0)
    assert ov.Internal == w.STATUS_CANCELLED


# ---------------------------------------------------------------------------------------------
# #110: port + event -> canceled, packet (unless hEvent|1)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("exit_mode", EXITS)
@pytest.mark.parametrize("kind", STREAMS)
def test_port_read_with_event_cancelled_at_exit_with_packet(io, testing, kind, exit_mode) -> None:
    # spec: win32 #110 #111 [W:ws/afd.c:test_async_thread_termination]
    reader, _writer = io.stream(kind)
    port = io.port(reader, key=0x110)
    ov = io.ov_event()
    res: list = []
    run_and_end(io, testing, exit_mode, issue_read(reader, ov, bytearray(8), res))
    assert res == [(False, w.ERROR_IO_PENDING, 0)]
    io.wait_signaled(ov.hEvent)
    pk = io.gqcs(port, LONG)
    assert pk.ok is False
    assert pk.error == w.ERROR_OPERATION_ABORTED
    assert pk.overlapped is ov
    assert (pk.bytes, pk.key) == (0, 0x110)
    assert ov.Internal == w.STATUS_CANCELLED
    io.no_packet(port)


@pytest.mark.parametrize("exit_mode", EXITS)
@pytest.mark.parametrize("kind", STREAMS)
def test_port_read_with_event_low_bit_cancelled_without_packet(
    io, testing, kind, exit_mode
) -> None:
    # spec: win32 #110 #111, §8 table (hEvent = event|1: canceled, event set, no packet)
    server, _client = io.stream(kind)
    port = io.port(server, key=1)
    ev = io.event()
    ov = io.ov(hEvent=ev | 1)
    res: list = []
    run_and_end(io, testing, exit_mode, issue_read(server, ov, bytearray(8), res))
    assert res == [(False, w.ERROR_IO_PENDING, 0)]
    io.wait_signaled(ev)
    assert ov.Internal == w.STATUS_CANCELLED
    assert io.result(server, ov) == (False, w.ERROR_OPERATION_ABORTED, 0)
    io.no_packet(port)


# ---------------------------------------------------------------------------------------------
# The seeds' central point (Vista+): I/O bound to a completion port outlives its thread
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", STREAMS)
def test_seed_port_io_outlives_issuing_thread(io, testing, kind) -> None:
    # spec: win32 #109 seed
    # A thread created with CreateThread associates nothing itself; it issues an overlapped
    # read (hEvent NULL) on a port-associated handle and exits. Later the data arrives and a
    # worker blocked in GetQueuedCompletionStatus receives the packet with the data.
    reader, writer = io.stream(kind)
    key = 0x5EED
    port = io.port(reader, key=key)  # associated by the main thread
    got: list = []

    def worker() -> None:
        pk = io.gqcs(port, LONG)
        got.append(pk)

    wk = io.thread(worker)
    testing.wait_until_blocked(wk.tid)

    ov = io.ov(hEvent=0)
    buf = bytearray(32)
    issued: list = []

    def issuer(_param: object) -> int:
        n = w.Ref(SENTINEL)
        ok = w.ReadFile(reader, buf, len(buf), n, ov)
        issued.append((ok, w.GetLastError(), n.value))
        return 0

    tid = w.Ref(0)
    th = w.CreateThread(None, 0, issuer, None, 0, tid)
    assert th
    try:
        assert w.WaitForSingleObject(th, LONG) == w.WAIT_OBJECT_0
    finally:
        assert w.CloseHandle(th)
    assert issued == [(False, w.ERROR_IO_PENDING, 0)]
    # the issuing thread is gone; the read is still pending and the worker still waits
    assert wk.is_running(SHORT)
    assert got == []

    io.send_all(writer, b"arrived after the thread exited")
    wk.join()
    assert len(got) == 1
    pk = got[0]
    assert pk.ok is True
    assert pk.key == key
    assert pk.bytes == 31
    assert pk.overlapped is ov
    assert bytes(buf[:31]) == b"arrived after the thread exited"


@pytest.mark.parametrize("kind", STREAMS)
def test_seed_contrast_non_port_io_dies_with_thread(io, kind) -> None:
    # spec: win32 #109 seed (the contrast: no port and an event -> canceled at thread exit)
    reader, writer = io.stream(kind)
    ov = io.ov_event()
    buf = bytearray(32)
    issued: list = []

    def issuer(_param: object) -> int:
        n = w.Ref(SENTINEL)
        ok = w.ReadFile(reader, buf, len(buf), n, ov)
        issued.append((ok, w.GetLastError(), n.value))
        return 0

    th = w.CreateThread(None, 0, issuer, None, 0, None)
    assert th
    try:
        assert w.WaitForSingleObject(th, LONG) == w.WAIT_OBJECT_0
    finally:
        assert w.CloseHandle(th)
    assert issued == [(False, w.ERROR_IO_PENDING, 0)]
    io.wait_signaled(ov.hEvent)
    assert io.result(reader, ov) == (False, w.ERROR_OPERATION_ABORTED, 0)
    assert ov.Internal == w.STATUS_CANCELLED
    io.send_all(writer, b"too late")
    assert io.recv_exact(reader, 8) == b"too late"  # nobody consumed it
    assert bytes(buf[:8]) == bytes(8)


# ---------------------------------------------------------------------------------------------
# The same rule for the server-side starts an RPC transport uses (AcceptEx, ConnectNamedPipe)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_event", [False, True], ids=["no_event", "event"])
def test_acceptex_of_exiting_thread(io, testing, with_event) -> None:
    # spec: win32 #109 #110 (the §8 rule applies to any request: a pending AcceptEx on a
    # port-associated listener) [W:ws/afd.c:test_async_thread_termination] (a listener's poll)
    lst, addr = io.listener()
    port = io.port(lst, key=0xACC)
    acc = io.tcp_socket()
    out = bytearray(64)
    ov = io.ov_event() if with_event else io.ov()
    res: list = []

    def issue() -> None:
        ok = w.AcceptEx(lst, acc, out, 0, 32, 32, None, ov)
        res.append((ok, w.WSAGetLastError()))

    run_and_end(io, testing, "return", issue)
    assert res == [(False, w.ERROR_IO_PENDING)]
    if with_event:  # canceled at exit, packet with STATUS_CANCELLED
        io.wait_signaled(ov.hEvent)
        pk = io.gqcs(port, LONG)
        assert (pk.ok, pk.error, pk.key) == (False, w.ERROR_OPERATION_ABORTED, 0xACC)
        assert pk.overlapped is ov
        return
    io.no_packet(port)  # survives its thread
    client = io.tcp_socket()
    assert w.connect(client, addr) == 0
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes, pk.key) == (True, 0, 0xACC)
    assert pk.overlapped is ov
    assert w.send(client, b"hi", 0) == 2
    buf = bytearray(2)
    assert w.recv(acc, buf, 2, 0) == 2
    assert buf == b"hi"


@pytest.mark.parametrize("exit_mode", EXITS)
def test_connect_named_pipe_of_exiting_thread_survives_on_port(io, testing, exit_mode) -> None:
    # spec: win32 #109 #111 (a pending ConnectNamedPipe, port-associated, hEvent NULL)
    name = io.pipe_name()
    server = io.named_pipe(name)
    port = io.port(server, key=0xC0)
    ov = io.ov()
    res: list = []

    def issue() -> None:
        ok = w.ConnectNamedPipe(server, ov)
        res.append((ok, w.GetLastError()))

    run_and_end(io, testing, exit_mode, issue)
    assert res == [(False, w.ERROR_IO_PENDING)]
    io.no_packet(port)
    io.pipe_client(name)
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.key) == (True, 0xC0)
    assert pk.overlapped is ov


@pytest.mark.parametrize("exit_mode", EXITS)
def test_connect_named_pipe_of_exiting_thread_cancelled_without_port(
    io, testing, exit_mode
) -> None:
    # spec: win32 #108 #111 (no port: the pending ConnectNamedPipe is canceled at exit)
    name = io.pipe_name()
    server = io.named_pipe(name)
    ov = io.ov_event()
    res: list = []

    def issue() -> None:
        ok = w.ConnectNamedPipe(server, ov)
        res.append((ok, w.GetLastError()))

    run_and_end(io, testing, exit_mode, issue)
    assert res == [(False, w.ERROR_IO_PENDING)]
    io.wait_signaled(ov.hEvent)
    assert io.result(server, ov) == (False, w.ERROR_OPERATION_ABORTED, 0)
