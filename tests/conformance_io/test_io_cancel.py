"""Win32 I/O conformance: cancellation (behaviours 98-107; spec §7).

Wine: k32/pipe.c test_blocking_rw, nt/pipe.c read_pipe_test / test_cancelio /
test_cancelsynchronousio, ws/afd.c test_async_thread_termination; MS: CancelIo, CancelIoEx,
CancelSynchronousIo.
"""

from __future__ import annotations

import pytest

import winaio.win32 as w

pytestmark = pytest.mark.usefixtures("slot_impl")  # requests, and the receive slots

SENTINEL = 0xDEADBEEF
SHORT = 100
LONG = 5000
STREAMS = ["pipe", "socket"]


def _pending_read(io, h: int, size: int = 1, ov=None):
    ov = ov if ov is not None else io.ov_event()
    buf = bytearray(max(size, 1))
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(h, buf, size, n, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert n.value == 0
    return ov, buf


# ---------------------------------------------------------------------------------------------
# #98-#101: CancelIoEx
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", STREAMS)
def test_cancel_io_ex_pending_read(io, kind) -> None:
    # spec: win32 #98 [W:k32/pipe.c:test_blocking_rw]
    reader, writer = io.stream(kind)
    ov, _ = _pending_read(io, reader)
    w.SetLastError(SENTINEL)
    assert w.CancelIoEx(reader, ov) is True
    w.SetLastError(SENTINEL)
    assert w.CancelIoEx(reader, ov) is False  # canceling the same request twice
    assert w.GetLastError() == w.ERROR_NOT_FOUND == 1168
    io.wait_signaled(ov.hEvent)
    assert io.result(reader, ov) == (False, w.ERROR_OPERATION_ABORTED, 0)
    assert ov.Internal == w.STATUS_CANCELLED
    assert ov.InternalHigh == 0
    w.SetLastError(SENTINEL)
    assert w.CancelIoEx(reader, ov) is False
    assert w.GetLastError() == w.ERROR_NOT_FOUND
    # the stream is intact
    io.send_all(writer, b"q")
    assert io.recv_exact(reader, 1) == b"q"


@pytest.mark.parametrize("kind", ["file", "pipe", "socket"])
def test_cancel_with_nothing_pending(io, kind) -> None:
    # spec: win32 #99 [MS:CancelIoEx] [W:server/async.c:cancel_async]
    h = io.file(b"abc") if kind == "file" else io.stream(kind)[0]
    w.SetLastError(SENTINEL)
    assert w.CancelIoEx(h, None) is False
    assert w.GetLastError() == w.ERROR_NOT_FOUND
    w.SetLastError(SENTINEL)
    assert w.CancelIoEx(h, io.ov()) is False
    assert w.GetLastError() == w.ERROR_NOT_FOUND
    assert w.CancelIo(h) is True


def test_cancel_io_ex_other_overlapped_not_found(io) -> None:
    # spec: win32 #99 (CancelIoEx(h, ov) matches by OVERLAPPED pointer only)
    server, client = io.pipe()
    ov, _ = _pending_read(io, server)
    w.SetLastError(SENTINEL)
    assert w.CancelIoEx(server, io.ov()) is False
    assert w.GetLastError() == w.ERROR_NOT_FOUND
    assert io.stays_nonsignaled(ov.hEvent)
    io.send_all(client, b"k")
    io.wait_signaled(ov.hEvent)
    assert io.result(server, ov) == (True, 0, 1)


@pytest.mark.parametrize("kind", STREAMS)
def test_cancel_one_of_two_pending_reads(io, kind) -> None:
    # spec: win32 #100 [W:k32/pipe.c:test_blocking_rw]
    reader, writer = io.stream(kind)
    ov1, buf1 = _pending_read(io, reader)
    ov2, _ = _pending_read(io, reader)
    assert w.CancelIoEx(reader, ov2) is True
    io.wait_signaled(ov2.hEvent)
    assert io.result(reader, ov2) == (False, w.ERROR_OPERATION_ABORTED, 0)
    assert not io.is_signaled(ov1.hEvent)
    io.send_all(writer, b"1")
    io.wait_signaled(ov1.hEvent)
    assert io.result(reader, ov1) == (True, 0, 1)
    assert bytes(buf1) == b"1"


def test_cancel_shared_overlapped_cancels_both_apc_reads(io) -> None:
    # spec: win32 #101 [W:nt/pipe.c:read_pipe_test] ("Duplicate iosb": two APCs run)
    server, client = io.pipe()
    calls: list = []
    ov = io.ov()

    def routine(err: int, n: int, o: object) -> None:
        calls.append((err, n, o))

    assert w.ReadFileEx(server, bytearray(2), 2, ov, routine) is True
    assert w.ReadFileEx(server, bytearray(2), 2, ov, routine) is True
    assert w.CancelIoEx(server, ov) is True
    for _ in range(50):
        if len(calls) >= 2:
            break
        r = w.SleepEx(LONG, True)
        assert r == w.WAIT_IO_COMPLETION, f"alertable wait returned {r} after {calls}"
    assert calls == [(w.ERROR_OPERATION_ABORTED, 0, ov)] * 2
    assert ov.Internal == w.STATUS_CANCELLED
    w.SetLastError(SENTINEL)
    assert w.CancelIoEx(server, ov) is False
    assert w.GetLastError() == w.ERROR_NOT_FOUND
    # both requests are gone: the data is there for the next read
    io.send_all(client, b"ab")
    assert io.recv_exact(server, 2) == b"ab"


def test_cancel_shared_overlapped_cancels_both_event_reads(io) -> None:
    # spec: win32 #101 (CancelIoEx cancels every request whose OVERLAPPED pointer matches)
    server, _client = io.pipe()
    ov = io.ov_event()
    _pending_read(io, server, ov=ov)
    _pending_read(io, server, ov=ov)
    assert w.CancelIoEx(server, ov) is True
    io.wait_signaled(ov.hEvent)
    w.SetLastError(SENTINEL)
    assert w.CancelIoEx(server, ov) is False  # none left
    assert w.GetLastError() == w.ERROR_NOT_FOUND
    assert ov.Internal == w.STATUS_CANCELLED


# ---------------------------------------------------------------------------------------------
# #102-#104: CancelIo / CancelIoEx scope, duplicated and closed handles
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", STREAMS)
def test_cancel_io_is_per_thread_cancel_io_ex_is_not(io, testing, kind) -> None:
    # spec: win32 #102 [MS:CancelIo] [MS:CancelIoEx]
    reader, _writer = io.stream(kind)
    issued = io.event()
    go = io.event()
    ov_t = io.ov_event()
    thread_out: list = []

    def body() -> None:
        _pending_read(io, reader, ov=ov_t)
        assert w.SetEvent(issued)
        # stay alive (thread exit would cancel the request, §8)
        thread_out.append(w.WaitForSingleObject(go, LONG))

    t = io.thread(body)
    io.on_cleanup(lambda: w.SetEvent(go))
    io.wait_signaled(issued)
    ov_m, _ = _pending_read(io, reader)

    assert w.CancelIo(reader) is True  # the main thread's requests only
    io.wait_signaled(ov_m.hEvent)
    assert io.result(reader, ov_m) == (False, w.ERROR_OPERATION_ABORTED, 0)
    assert io.stays_nonsignaled(ov_t.hEvent)

    assert w.CancelIoEx(reader, None) is True  # any thread's requests
    io.wait_signaled(ov_t.hEvent)
    assert io.result(reader, ov_t) == (False, w.ERROR_OPERATION_ABORTED, 0)
    assert w.SetEvent(go)
    t.join()
    assert thread_out == [w.WAIT_OBJECT_0]


def test_cancel_io_in_other_thread_cancels_nothing(io, testing) -> None:
    # spec: win32 #102 (CancelIo from a thread without requests: TRUE, nothing canceled)
    server, client = io.pipe()
    ov, _ = _pending_read(io, server)
    out: list = []
    t = io.thread(lambda: out.append(w.CancelIo(server)))
    t.join()
    assert out == [True]
    assert io.stays_nonsignaled(ov.hEvent)
    io.send_all(client, b"z")
    io.wait_signaled(ov.hEvent)
    assert io.result(server, ov) == (True, 0, 1)


def test_cancel_io_via_duplicate_handle(io) -> None:
    # spec: win32 #103 [W:nt/pipe.c:read_pipe_test] ("Cancel by other handle")
    server, _client = io.pipe()
    dup = io.dup(server)
    ov, _ = _pending_read(io, dup, size=2)
    assert w.CancelIo(server) is True
    io.wait_signaled(ov.hEvent)
    assert ov.Internal == w.STATUS_CANCELLED
    assert ov.InternalHigh == 0
    assert io.result(dup, ov) == (False, w.ERROR_OPERATION_ABORTED, 0)


def test_cancel_io_via_duplicate_handle_runs_apc(io) -> None:
    # spec: win32 #103 (the completion routine of the canceled request runs)
    server, _client = io.pipe()
    dup = io.dup(server)
    calls: list = []
    ov = io.ov()
    assert w.ReadFileEx(dup, bytearray(2), 2, ov, lambda e, n, o: calls.append((e, n, o)))
    assert w.CancelIo(server) is True
    assert w.SleepEx(LONG, True) == w.WAIT_IO_COMPLETION
    assert calls == [(w.ERROR_OPERATION_ABORTED, 0, ov)]


def test_closing_one_of_two_handles_leaves_read_pending(io) -> None:
    # spec: win32 #104 [W:nt/pipe.c:read_pipe_test] ("Close queued handle")
    server, _client = io.pipe()
    dup = io.dup(server)
    ov, _ = _pending_read(io, server, size=2)
    io.close(server)
    assert io.stays_nonsignaled(ov.hEvent)
    assert ov.Internal == w.STATUS_PENDING
    w.SetLastError(SENTINEL)
    assert w.CancelIo(server) is False
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    w.SetLastError(SENTINEL)
    assert w.CancelIoEx(server, None) is False
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    assert w.CancelIo(dup) is True
    io.wait_signaled(ov.hEvent)
    assert ov.Internal == w.STATUS_CANCELLED
    assert io.result(dup, ov) == (False, w.ERROR_OPERATION_ABORTED, 0)


def test_closing_one_of_two_handles_read_still_completes(io) -> None:
    # spec: win32 #104 (the request stays alive and completes with data)
    server, client = io.pipe()
    dup = io.dup(server)
    ov, buf = _pending_read(io, server, size=2)
    io.close(server)
    io.send_all(client, b"ok")
    io.wait_signaled(ov.hEvent)
    assert io.result(dup, ov) == (True, 0, 2)
    assert bytes(buf) == b"ok"


def test_closing_last_handle_aborts_pending_read(io) -> None:
    # spec: win32 §7 (closing the last handle completes/aborts pending requests)
    server, _client = io.pipe()
    ov, _ = _pending_read(io, server)
    io.close(server)
    io.wait_signaled(ov.hEvent)
    assert ov.Internal != w.STATUS_PENDING
    ok, _err, n = io.result(0, ov)
    assert ok is False
    assert n == 0


@pytest.mark.parametrize("kind", STREAMS)
def test_cancel_on_port_associated_handle_posts_packet(io, kind) -> None:
    # spec: win32 #105 [MS:CancelIoEx] [W:ws/afd.c:test_async_thread_termination]
    reader, _writer = io.stream(kind)
    port = io.port(reader, key=0x77)
    ov = io.ov()
    _pending_read(io, reader, ov=ov)
    io.no_packet(port)
    assert w.CancelIoEx(reader, ov) is True
    pk = io.gqcs(port, LONG)
    assert pk.ok is False
    assert pk.error == w.ERROR_OPERATION_ABORTED
    assert pk.overlapped is ov
    assert (pk.bytes, pk.key) == (0, 0x77)
    assert ov.Internal == w.STATUS_CANCELLED
    io.no_packet(port)


def test_cancel_io_on_port_associated_handle_with_event(io) -> None:
    # spec: win32 #105 (CancelIo: event set and packet queued)
    server, _client = io.pipe()
    port = io.port(server, key=1)
    ov, _ = _pending_read(io, server)
    assert w.CancelIo(server) is True
    io.wait_signaled(ov.hEvent)
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.error) == (False, w.ERROR_OPERATION_ABORTED)
    assert pk.overlapped is ov


# ---------------------------------------------------------------------------------------------
# #106, #107: CancelSynchronousIo
# ---------------------------------------------------------------------------------------------


def test_cancel_synchronous_read(io, testing) -> None:
    # spec: win32 #106 [W:nt/pipe.c:test_cancelsynchronousio]
    server, client = io.pipe(server_overlapped=False, client_overlapped=False)
    out: list = []

    def body() -> None:
        n = w.Ref(SENTINEL)
        w.SetLastError(SENTINEL)
        ok = w.ReadFile(server, bytearray(8), 8, n, None)
        out.append((ok, w.GetLastError(), n.value))

    t = io.thread(body)
    testing.wait_until_blocked(t.tid)
    assert t.is_running(10)
    w.SetLastError(SENTINEL)
    assert w.CancelSynchronousIo(t.handle) is True
    t.join()
    assert out == [(False, w.ERROR_OPERATION_ABORTED, 0)]
    # the pipe still works
    n = w.Ref(SENTINEL)
    assert w.WriteFile(client, b"after", 5, n, None) is True
    buf = bytearray(8)
    assert w.ReadFile(server, buf, 8, n, None) is True
    assert bytes(buf[: n.value]) == b"after"


def test_cancel_synchronous_read_with_overlapped_struct(io, testing) -> None:
    # spec: win32 #106 (its IOSB is untouched: InternalHigh keeps its value)
    server, _client = io.pipe(server_overlapped=False, client_overlapped=False)
    ov = io.ov()
    ov.InternalHigh = SENTINEL
    out: list = []

    def body() -> None:
        n = w.Ref(SENTINEL)
        ok = w.ReadFile(server, bytearray(8), 8, n, ov)
        out.append((ok, w.GetLastError(), n.value))

    t = io.thread(body)
    testing.wait_until_blocked(t.tid)
    assert w.CancelSynchronousIo(t.handle) is True
    t.join()
    assert out == [(False, w.ERROR_OPERATION_ABORTED, 0)]
    assert ov.InternalHigh == SENTINEL


def test_cancel_synchronous_listen(io, testing) -> None:
    # spec: win32 #106 (a blocked synchronous ConnectNamedPipe)
    # [W:nt/pipe.c:test_cancelsynchronousio]
    name = io.pipe_name()
    server = io.named_pipe(name, overlapped=False)
    out: list = []

    def body() -> None:
        w.SetLastError(SENTINEL)
        ok = w.ConnectNamedPipe(server, None)
        out.append((ok, w.GetLastError()))

    t = io.thread(body)
    testing.wait_until_blocked(t.tid)
    assert w.CancelSynchronousIo(t.handle) is True
    t.join()
    assert out == [(False, w.ERROR_OPERATION_ABORTED)]


def test_cancel_synchronous_io_ignores_async_requests(io, testing) -> None:
    # spec: win32 #107 [W:nt/pipe.c:test_cancelsynchronousio]
    server, client = io.pipe()
    ov = io.ov_event()
    issued = io.event()
    go = io.event()
    out: list = []

    def body() -> None:
        _pending_read(io, server, size=4, ov=ov)
        assert w.SetEvent(issued)
        out.append(w.WaitForSingleObject(go, LONG))  # a wait, not synchronous I/O

    t = io.thread(body)
    io.on_cleanup(lambda: w.SetEvent(go))
    io.wait_signaled(issued)
    testing.wait_until_blocked(t.tid)
    w.SetLastError(SENTINEL)
    assert w.CancelSynchronousIo(t.handle) is False
    assert w.GetLastError() == w.ERROR_NOT_FOUND
    assert io.stays_nonsignaled(ov.hEvent)
    io.send_all(client, b"done")
    io.wait_signaled(ov.hEvent)
    assert io.result(server, ov) == (True, 0, 4)  # completed normally
    assert w.SetEvent(go)
    t.join()
    assert out == [w.WAIT_OBJECT_0]


def test_cancel_synchronous_io_with_nothing(io) -> None:
    # spec: win32 #107 (no I/O at all, and the caller itself)
    go = io.event()
    t = io.thread(lambda: w.WaitForSingleObject(go, LONG))
    io.on_cleanup(lambda: w.SetEvent(go))
    w.SetLastError(SENTINEL)
    assert w.CancelSynchronousIo(t.handle) is False
    assert w.GetLastError() == w.ERROR_NOT_FOUND
    w.SetLastError(SENTINEL)
    assert w.CancelSynchronousIo(w.GetCurrentThread()) is False
    assert w.GetLastError() == w.ERROR_NOT_FOUND
    assert w.SetEvent(go)
    t.join()
    w.SetLastError(SENTINEL)
    assert w.CancelSynchronousIo(0xDEADBEE0) is False
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE


# ---------------------------------------------------------------------------------------------
# §7: canceling pending pipe writes
# ---------------------------------------------------------------------------------------------


def test_cancel_pending_write_removes_its_unread_bytes(io) -> None:
    # spec: win32 #98 (on a write), §7 ("canceling a pending pipe write removes its unread
    # bytes") [W:k32/pipe.c:test_blocking_rw] ("make two async writes, cancel the first one and
    # make sure that we read from the second one")
    server, client = io.pipe()
    w1, total = io.fill(client)  # w1: the 64 KiB write that stays pending
    w2 = io.ov_event()
    assert w.WriteFile(client, b"Z", 1, None, w2) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert w.CancelIoEx(client, w1) is True
    io.wait_signaled(w1.hEvent)
    assert io.result(client, w1) == (False, w.ERROR_OPERATION_ABORTED, 0)
    expected = total - 65536
    data = io.recv_exact(server, expected + 1)
    assert data == b"\xaa" * expected + b"Z"
    io.wait_signaled(w2.hEvent)
    assert io.result(client, w2) == (True, 0, 1)
    avail = w.Ref(SENTINEL)
    assert w.PeekNamedPipe(server, None, 0, None, avail, None)
    assert avail.value == 0


def test_cancel_only_pending_write_releases_flush(io, testing) -> None:
    # spec: win32 §7 ("canceling the only pending write completes waiting flushes")
    # [W:k32/pipe.c:test_blocking_rw] ("empty queue by canceling write and make sure that flush
    # is signaled")
    server, client = io.pipe()
    big = 8 * 1024 * 1024  # larger than any pipe buffer: stays pending on an empty pipe
    ov = io.ov_event()
    assert w.WriteFile(client, b"\xaa" * big, big, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert io.stays_nonsignaled(ov.hEvent)
    out: list = []

    def flusher() -> None:
        out.append(w.FlushFileBuffers(client))

    t = io.thread(flusher)
    io.on_cleanup(lambda: w.CloseHandle(server))  # a stuck flush ends with the reader
    testing.wait_until_blocked(t.tid)
    assert t.is_running(SHORT)
    assert w.CancelIoEx(client, ov) is True
    io.wait_signaled(ov.hEvent)
    assert io.result(client, ov) == (False, w.ERROR_OPERATION_ABORTED, 0)
    t.join()
    assert out == [True]
    avail = w.Ref(SENTINEL)
    assert w.PeekNamedPipe(server, None, 0, None, avail, None)
    assert avail.value == 0
