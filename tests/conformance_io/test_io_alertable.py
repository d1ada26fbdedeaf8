"""Win32 I/O conformance: alertable I/O with ReadFileEx / WriteFileEx (behaviours 67-72 and
the I/O part of #29; spec §1.5, §5).

Wine: k32/pipe.c test_readfileex_pending, nt/file.c read_file_test / test_file_io_completion,
k32/file.c test_async_file_errors / test_read_write, nt/pipe.c test_cancelio; MS: ReadFileEx,
LPOVERLAPPED_COMPLETION_ROUTINE.
"""

from __future__ import annotations

import pytest

import winaio.win32 as w

SENTINEL = 0xDEADBEEF
SHORT = 100
LONG = 5000
STREAMS = ["pipe", "socket"]


class Recorder:
    """A completion routine that records (error, bytes, overlapped, thread id)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, object, int]] = []

    def __call__(self, err: int, n: int, ov: object) -> None:
        self.calls.append((err, n, ov, w.GetCurrentThreadId()))

    def simple(self) -> list[tuple[int, int, object]]:
        return [(e, n, o) for e, n, o, _ in self.calls]


# ---------------------------------------------------------------------------------------------
# #67, #68: the routine runs only in an alertable wait of the issuing thread
# ---------------------------------------------------------------------------------------------


def test_pending_readfileex_routine_waits_for_alertable_wait(io) -> None:
    # spec: win32 #67 [W:k32/pipe.c:test_readfileex_pending]
    name = io.pipe_name()
    server = io.named_pipe(name, buffer=1024)
    client = io.pipe_client(name, overlapped=False)
    rec = Recorder()
    ov = io.ov()
    buf = bytearray(1024)
    w.SetLastError(SENTINEL)
    assert w.ReadFileEx(server, buf, 1024, ov, rec) is True
    assert rec.calls == []  # not before ReadFileEx returned
    n = w.Ref(SENTINEL)
    assert w.WriteFile(client, b"test", 4, n, None) is True
    assert n.value == 4
    assert rec.calls == []  # not during WriteFile
    never = io.event()
    assert w.WaitForSingleObjectEx(never, LONG, True) == w.WAIT_IO_COMPLETION
    assert rec.simple() == [(0, 4, ov)]
    assert rec.calls[0][2] is ov
    assert rec.calls[0][3] == w.GetCurrentThreadId()
    assert bytes(buf[:4]) == b"test"
    # exactly once
    assert w.SleepEx(0, True) == 0
    assert len(rec.calls) == 1


@pytest.mark.parametrize("kind", STREAMS)
def test_readfileex_with_data_ready_still_defers_routine(io, kind) -> None:
    # spec: win32 #68 [W:nt/file.c:read_file_test]
    reader, writer = io.stream(kind)
    io.send_all(writer, b"ready")
    rec = Recorder()
    ov = io.ov()
    buf = bytearray(16)
    assert w.ReadFileEx(reader, buf, 16, ov, rec) is True
    assert rec.calls == []
    # non-alertable calls never run it (#29)
    w.Sleep(0)
    assert w.SleepEx(10, False) == 0
    assert w.WaitForSingleObject(io.event(), 10) == w.WAIT_TIMEOUT
    assert rec.calls == []
    assert w.SleepEx(LONG, True) == w.WAIT_IO_COMPLETION
    assert rec.simple() == [(0, 5, ov)]
    assert bytes(buf[:5]) == b"ready"


def test_readfileex_on_file_defers_routine(io) -> None:
    # spec: win32 #68 (a disk file read that is satisfied at once) [W:nt/file.c:read_file_test]
    h = io.file(b"0123456789")
    rec = Recorder()
    ov = io.ov(Offset=2)
    buf = bytearray(4)
    assert w.ReadFileEx(h, buf, 4, ov, rec) is True
    assert rec.calls == []
    assert w.SleepEx(LONG, True) == w.WAIT_IO_COMPLETION
    assert rec.simple() == [(0, 4, ov)]
    assert bytes(buf) == b"2345"
    # §5: GetOverlappedResult reports the result of a ReadFileEx OVERLAPPED once completed
    assert io.result(h, ov) == (True, 0, 4)


def test_readfileex_on_cached_file_ignores_hevent(io) -> None:
    # spec: win32 #68, §5 (ReadFileEx ignores hEvent), on the page-cache fast path too
    h = io.file(b"0123456789")
    ev = io.event(manual=True, initial=False)
    rec = Recorder()
    ov = io.ov(hEvent=ev, Offset=0)
    buf = bytearray(4)
    assert w.ReadFileEx(h, buf, 4, ov, rec) is True
    assert w.SleepEx(LONG, True) == w.WAIT_IO_COMPLETION
    assert rec.simple() == [(0, 4, ov)]
    assert not io.is_signaled(ev)  # the routine, not the event, reports the end
    assert io.is_signaled(h)  # the file object is signalled instead (§1.5 step 2)


def test_writefileex_on_file(io) -> None:
    # spec: win32 #68 (WriteFileEx: same deferral; the routine gets the bytes written)
    p = io.path()
    h = io.file(b"", path=p)
    rec = Recorder()
    ov = io.ov(Offset=0)
    assert w.WriteFileEx(h, b"payload", 7, ov, rec) is True
    assert rec.calls == []
    assert w.SleepEx(LONG, True) == w.WAIT_IO_COMPLETION
    assert rec.simple() == [(0, 7, ov)]
    io.close(h)
    with open(p, "rb") as f:
        assert f.read() == b"payload"


def test_readfileex_past_eof_reports_eof_to_routine(io) -> None:
    # spec: win32 §5 (dwErrorCode ERROR_HANDLE_EOF for a read past EOF)
    # [W:k32/file.c:test_async_file_errors]
    h = io.file(b"abc")
    rec = Recorder()
    ov = io.ov(Offset=10)
    assert w.ReadFileEx(h, bytearray(4), 4, ov, rec) is True
    assert w.SleepEx(LONG, True) == w.WAIT_IO_COMPLETION
    assert rec.simple() == [(w.ERROR_HANDLE_EOF, 0, ov)]


def test_routine_runs_in_issuing_thread_only(io, testing) -> None:
    # spec: win32 §3 / §5 (the routine is queued to the issuing thread, never another one)
    server, client = io.pipe()
    rec = Recorder()
    ov = io.ov()
    issued = io.event()
    go = io.event()
    other: list = []

    def issuer() -> None:
        assert w.ReadFileEx(server, bytearray(8), 8, ov, rec) is True
        assert w.SetEvent(issued)
        # wait (non-alertably) until the data was written, then wait alertably
        assert w.WaitForSingleObject(go, LONG) == w.WAIT_OBJECT_0
        other.append(list(rec.calls))
        other.append(w.SleepEx(LONG, True))

    t = io.thread(issuer)
    io.on_cleanup(lambda: w.SetEvent(go))
    io.wait_signaled(issued)
    io.send_all(client, b"abc")
    testing.wait_until(lambda: w.HasOverlappedIoCompleted(ov), 5.0, "read completed")
    assert w.SleepEx(SHORT, True) == 0  # the main thread's alertable wait runs nothing
    assert rec.calls == []
    assert w.SetEvent(go)
    t.join()
    assert other == [[], w.WAIT_IO_COMPLETION]
    assert rec.simple() == [(0, 3, ov)]
    assert rec.calls[0][3] == t.tid


def test_completion_routine_not_run_by_gqcs_or_sync_io(io, testing) -> None:
    # spec: win32 #29 (I/O part: synchronous ReadFile/WriteFile and GetQueuedCompletionStatus
    # do not deliver APCs) [W:k32/file.c:test_read_write] [W:nt/pipe.c:read_pipe_test]
    server, client = io.pipe()
    rec = Recorder()
    ov = io.ov()
    assert w.ReadFileEx(server, bytearray(8), 8, ov, rec) is True
    io.send_all(client, b"x")
    testing.wait_until(lambda: w.HasOverlappedIoCompleted(ov), 5.0, "read completed")
    log: list = []
    assert w.QueueUserAPC(lambda d: log.append(d), w.GetCurrentThread(), 1)
    # synchronous file I/O
    f = io.file(b"0123", overlapped=False)
    n = w.Ref(SENTINEL)
    assert w.ReadFile(f, bytearray(4), 4, n, None) is True
    assert w.WriteFile(f, b"zz", 2, n, None) is True
    # GetQueuedCompletionStatus
    port = io.port()
    io.no_packet(port)
    assert rec.calls == []
    assert log == []
    # an alertable wait runs both, FIFO by enqueue time (the user APC was queued last or
    # first depending on when the read completed; both must run in this one wait)
    never = io.event()
    io_done = w.WaitForSingleObjectEx(never, LONG, True)
    assert io_done == w.WAIT_IO_COMPLETION
    if not rec.calls:  # the I/O APC was queued after the dispatch
        assert w.SleepEx(LONG, True) == w.WAIT_IO_COMPLETION
    assert log == [1]
    assert rec.simple() == [(0, 1, ov)]


# ---------------------------------------------------------------------------------------------
# #69: FALSE means never called
# ---------------------------------------------------------------------------------------------


def test_failed_readfileex_never_calls_routine(io) -> None:
    # spec: win32 #69 [W:k32/file.c:test_async_file_errors]
    rec = Recorder()
    server, client = io.pipe()
    io.close(client)
    ov = io.ov()
    w.SetLastError(SENTINEL)
    assert w.ReadFileEx(server, bytearray(4), 4, ov, rec) is False
    assert w.GetLastError() == w.ERROR_BROKEN_PIPE
    w.SetLastError(SENTINEL)
    assert w.ReadFileEx(0xDEADBEE0, bytearray(4), 4, io.ov(), rec) is False
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    w.SetLastError(SENTINEL)
    assert w.WriteFileEx(server, b"abc", 3, io.ov(), rec) is False
    assert w.GetLastError() == w.ERROR_NO_DATA
    assert w.SleepEx(SHORT, True) == 0
    assert rec.calls == []


# ---------------------------------------------------------------------------------------------
# #70: WriteFileEx into a full pipe
# ---------------------------------------------------------------------------------------------


def test_writefileex_into_full_pipe(io) -> None:
    # spec: win32 #70 [W:k32/pipe.c:test_readfileex_pending]
    name = io.pipe_name()
    server = io.named_pipe(name, buffer=1024)
    client = io.pipe_client(name, overlapped=False)
    chunk = 65536
    data = b"\xaa" * chunk
    rec = Recorder()
    ov = io.ov()
    total = 0
    for _ in range(1024):
        rec.calls.clear()
        ok = w.WriteFileEx(server, data, chunk, ov, rec)
        assert ok is True, w.GetLastError()
        total += chunk
        assert rec.calls == []  # never during WriteFileEx
        r = w.SleepEx(SHORT, True)
        if r == 0:
            break  # the write stays pending: the pipe is full
        assert r == w.WAIT_IO_COMPLETION
        assert rec.simple() == [(0, chunk, ov)]
    else:
        raise AssertionError("the pipe never filled up")
    assert rec.calls == []

    # free up space: synchronous reads (non-alertable) never run the routine
    read = 0
    buf = bytearray(chunk)
    while read < total:
        n = w.Ref(SENTINEL)
        assert w.ReadFile(client, buf, chunk, n, None) is True
        assert n.value > 0
        read += n.value
        assert rec.calls == []
    assert read == total
    assert w.SleepEx(LONG, True) == w.WAIT_IO_COMPLETION
    assert rec.simple() == [(0, chunk, ov)]


# ---------------------------------------------------------------------------------------------
# #71: APC requests on a port-associated handle
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", STREAMS)
def test_readfileex_on_port_associated_handle(io, kind) -> None:
    # spec: win32 #71 [W:nt/file.c:test_file_io_completion]
    # [W:ws/afd.c:test_async_thread_termination]
    reader, writer = io.stream(kind)
    port = io.port(reader, key=3)
    rec = Recorder()
    w.SetLastError(SENTINEL)
    assert w.ReadFileEx(reader, bytearray(4), 4, io.ov(), rec) is False
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    w.SetLastError(SENTINEL)
    assert w.WriteFileEx(reader, b"abc", 3, io.ov(), rec) is False
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    io.send_all(writer, b"data")  # nothing was consuming data
    assert w.SleepEx(SHORT, True) == 0
    assert rec.calls == []
    io.no_packet(port)
    # the handle still works through the port
    ov = io.ov()
    buf = bytearray(8)
    ok = w.ReadFile(reader, buf, 8, None, ov)
    assert ok is True or w.GetLastError() == w.ERROR_IO_PENDING
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes, pk.key) == (True, 4, 3)
    assert pk.overlapped is ov
    assert bytes(buf[:4]) == b"data"


def test_readfileex_issued_before_association_completes_by_apc(io) -> None:
    # spec: win32 §1.5 (an APC request issued before the association completes via APC only)
    # [W:nt/file.c:test_file_io_completion]
    server, client = io.pipe()
    rec = Recorder()
    ov = io.ov()
    assert w.ReadFileEx(server, bytearray(4), 4, ov, rec) is True
    port = io.port(server, key=9)
    io.send_all(client, b"late")
    assert w.SleepEx(LONG, True) == w.WAIT_IO_COMPLETION
    assert rec.simple() == [(0, 4, ov)]
    io.no_packet(port)


# ---------------------------------------------------------------------------------------------
# #72: cancelled ReadFileEx
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["CancelIo", "CancelIoEx", "CancelIoEx_all"])
def test_cancelled_readfileex_reports_aborted(io, how) -> None:
    # spec: win32 #72 [W:nt/pipe.c:test_cancelio] [MS:LPOVERLAPPED_COMPLETION_ROUTINE]
    server, client = io.pipe()
    rec = Recorder()
    ov = io.ov()
    assert w.ReadFileEx(server, bytearray(4), 4, ov, rec) is True
    if how == "CancelIo":
        assert w.CancelIo(server) is True
    elif how == "CancelIoEx":
        assert w.CancelIoEx(server, ov) is True
    else:
        assert w.CancelIoEx(server, None) is True
    assert rec.calls == []
    assert w.SleepEx(LONG, True) == w.WAIT_IO_COMPLETION
    assert rec.simple() == [(w.ERROR_OPERATION_ABORTED, 0, ov)]
    assert ov.Internal == w.STATUS_CANCELLED
    assert ov.InternalHigh == 0
    # the data written afterwards is still there for the next read
    io.send_all(client, b"kept")
    assert io.recv_exact(server, 4) == b"kept"


def test_cancelled_writefileex_reports_aborted(io) -> None:
    # spec: win32 #72 (a pending WriteFileEx canceled the same way)
    name = io.pipe_name()
    server = io.named_pipe(name)
    io.pipe_client(name)
    pending, _ = io.fill(server)
    rec = Recorder()
    ov = io.ov()
    assert w.WriteFileEx(server, b"w" * 1000, 1000, ov, rec) is True
    assert w.SleepEx(SHORT, True) == 0
    assert w.CancelIoEx(server, ov) is True
    assert w.SleepEx(LONG, True) == w.WAIT_IO_COMPLETION
    assert rec.simple() == [(w.ERROR_OPERATION_ABORTED, 0, ov)]
    assert not io.is_signaled(pending.hEvent)  # the other write is unaffected


def test_readfileex_partial_message_reports_more_data(io) -> None:
    # spec: win32 §5 (dwErrorCode is the Win32 mapping of the status: a partial message read
    # completes with ERROR_MORE_DATA and the bytes copied) [W:k32/pipe.c:_test_overlapped_result]
    server, client = io.pipe(message=True)
    io.send_all(client, b"0123456789")
    rec = Recorder()
    ov = io.ov()
    buf = bytearray(4)
    assert w.ReadFileEx(server, buf, 4, ov, rec) is True
    assert w.SleepEx(LONG, True) == w.WAIT_IO_COMPLETION
    assert rec.simple() == [(w.ERROR_MORE_DATA, 4, ov)]
    assert bytes(buf) == b"0123"
    assert io.result(server, ov) == (False, w.ERROR_MORE_DATA, 4)
