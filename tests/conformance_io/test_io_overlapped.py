"""Win32 I/O conformance: the overlapped start protocol and its notification channels
(behaviours 48-57, 63-64; spec §1.5, §4.1, §4.2, §4.4).

Wine: nt/file.c test_read_write, nt/pipe.c read_pipe_test / test_completion, k32/pipe.c
test_readfileex_pending, k32/file.c test_overlapped_read; MS: OVERLAPPED, ReadFile.
"""

from __future__ import annotations

import pytest

import winaio.win32 as w

pytestmark = pytest.mark.usefixtures("slot_impl")  # requests, and the receive slots

SENTINEL = 0xDEADBEEF
SHORT_MS = 100
LONG_MS = 5000
STREAMS = ["pipe", "socket"]


# ---------------------------------------------------------------------------------------------
# #48: a NULL OVERLAPPED on an overlapped handle
# ---------------------------------------------------------------------------------------------


def test_null_overlapped_on_overlapped_file(io) -> None:
    # spec: win32 #48 [W:nt/file.c:test_read_write]
    h = io.file(b"0123456789")
    buf = bytearray(b"x" * 16)
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(h, buf, 4, n, None) is False
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    assert n.value == 0
    assert buf == bytearray(b"x" * 16)

    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.WriteFile(h, b"abcd", 4, n, None) is False
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    assert n.value == 0
    size = w.Ref(SENTINEL)
    assert w.GetFileSizeEx(h, size)
    assert size.value == 10
    # the file pointer was neither used nor moved
    assert w.SetFilePointer(h, 0, None, w.FILE_CURRENT) == 0


def test_null_overlapped_on_overlapped_socket(io) -> None:
    # spec: win32 #48 (§4.1: WSA_FLAG_OVERLAPPED sockets are overlapped handles; ReadFile
    # passes no offset -> STATUS_INVALID_PARAMETER [W:ws/afd.c:test_read_write])
    client, server = io.socket_pair()
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(server, bytearray(8), 8, n, None) is False
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    assert n.value == 0
    n = w.Ref(SENTINEL)
    assert w.WriteFile(client, b"data", 4, n, None) is False
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    assert n.value == 0
    # nothing was sent: a later overlapped read still pends
    ov = io.ov_event()
    assert w.ReadFile(server, bytearray(8), 8, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert io.stays_nonsignaled(ov.hEvent)
    assert w.CancelIoEx(server, ov)
    io.wait_signaled(ov.hEvent)


# ---------------------------------------------------------------------------------------------
# #49, #50: a pending start
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", STREAMS)
def test_pending_read_start_state(io, kind) -> None:
    # spec: win32 #49 [W:k32/pipe.c:test_readfileex_pending] [W:k32/file.c:test_overlapped_read]
    reader, writer = io.stream(kind)
    ov = io.ov_event()
    ov.Internal = SENTINEL
    ov.InternalHigh = SENTINEL
    buf = bytearray(16)
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(reader, buf, 16, n, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert n.value == 0
    assert ov.Internal == w.STATUS_PENDING
    assert ov.InternalHigh == SENTINEL  # untouched while pending
    assert not w.HasOverlappedIoCompleted(ov)
    assert io.stays_nonsignaled(ov.hEvent)
    assert ov.InternalHigh == SENTINEL

    io.send_all(writer, b"abc")
    io.wait_signaled(ov.hEvent)
    assert w.HasOverlappedIoCompleted(ov)
    assert ov.Internal == 0
    assert ov.InternalHigh == 3
    assert io.result(reader, ov) == (True, 0, 3)
    assert buf[:3] == b"abc"


@pytest.mark.parametrize("kind", STREAMS)
def test_pending_write_start_state(io, kind) -> None:
    # spec: win32 #49 (writes: a write that cannot complete reports ERROR_IO_PENDING and 0)
    reader, writer = io.stream(kind)
    ov, total = io.fill(writer)
    assert ov.Internal == w.STATUS_PENDING
    assert not w.HasOverlappedIoCompleted(ov)
    assert io.stays_nonsignaled(ov.hEvent)
    data = io.recv_exact(reader, total)
    assert len(data) == total
    io.wait_signaled(ov.hEvent)
    assert io.result(writer, ov) == (True, 0, 65536)


@pytest.mark.parametrize("kind", STREAMS)
def test_start_resets_signaled_event(io, kind) -> None:
    # spec: win32 #50 [W:nt/pipe.c:read_pipe_test] [MS:OVERLAPPED]
    reader, writer = io.stream(kind)
    ev = io.event(manual=True, initial=True)
    assert io.is_signaled(ev)
    ov = io.ov(hEvent=ev)
    assert w.ReadFile(reader, bytearray(4), 4, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert not io.is_signaled(ev)
    io.send_all(writer, b"z")
    io.wait_signaled(ev)
    assert io.result(reader, ov) == (True, 0, 1)


def test_immediate_success_sets_event_and_iosb(io) -> None:
    # spec: win32 #50, §4.2 step 4a (data ready: TRUE, event reset at start then set)
    server, client = io.pipe()
    io.send_all(client, b"ready")
    ev = io.event(manual=True, initial=False)
    ov = io.ov(hEvent=ev)
    ov.InternalHigh = SENTINEL
    buf = bytearray(5)
    n = w.Ref(SENTINEL)
    assert w.ReadFile(server, buf, 5, n, ov) is True
    assert n.value == 5
    assert bytes(buf) == b"ready"
    assert ov.Internal == 0
    assert ov.InternalHigh == 5
    assert io.is_signaled(ev)


# ---------------------------------------------------------------------------------------------
# #51, #52, #53: failing starts
# ---------------------------------------------------------------------------------------------


def test_read_on_broken_pipe_fails_at_once_without_notification(io) -> None:
    # spec: win32 #51 [W:nt/pipe.c:read_pipe_test]
    server, client = io.pipe()
    io.close(client)
    ev = io.event(manual=True, initial=True)  # a failing start still resets it
    ov = io.ov(hEvent=ev)
    ov.InternalHigh = SENTINEL
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(server, bytearray(4), 4, n, ov) is False
    assert w.GetLastError() == w.ERROR_BROKEN_PIPE
    assert n.value == 0
    assert not io.is_signaled(ev)
    assert ov.InternalHigh == SENTINEL
    assert ov.Internal == w.STATUS_PENDING  # §4.2 4c: Internal stays STATUS_PENDING
    assert io.stays_nonsignaled(ev)


def test_readfileex_on_broken_pipe_queues_no_apc(io) -> None:
    # spec: win32 #51 (no APC) [W:nt/pipe.c:read_pipe_test]
    server, client = io.pipe()
    io.close(client)
    calls: list = []
    ov = io.ov()
    w.SetLastError(SENTINEL)
    ok = w.ReadFileEx(server, bytearray(4), 4, ov, lambda *a: calls.append(a))
    assert ok is False
    assert w.GetLastError() == w.ERROR_BROKEN_PIPE
    assert w.SleepEx(SHORT_MS, True) == 0
    assert calls == []


def test_read_on_broken_pipe_posts_no_packet(io) -> None:
    # spec: win32 #51 (no packet) [W:nt/pipe.c:read_pipe_test]
    server, client = io.pipe()
    port = io.port(server, key=7)
    io.close(client)
    ov = io.ov()
    assert w.ReadFile(server, bytearray(4), 4, None, ov) is False
    assert w.GetLastError() == w.ERROR_BROKEN_PIPE
    io.no_packet(port)


@pytest.mark.parametrize("bad", ["closed", "bogus", "invalid_handle_value"])
def test_read_on_invalid_handle_leaves_event_signaled(io, bad) -> None:
    # spec: win32 #52 [W:nt/pipe.c:read_pipe_test] [W:k32/pipe.c:test_readfileex_pending]
    ev = io.event(manual=True, initial=True)
    if bad == "closed":
        h = io.file(b"abc")
        io.close(h)
    elif bad == "bogus":
        h = 0xDEADBEE0
    else:
        h = w.INVALID_HANDLE_VALUE
    ov = io.ov(hEvent=ev)
    ov.InternalHigh = SENTINEL
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(h, bytearray(4), 4, n, ov) is False
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    assert n.value == 0
    assert io.is_signaled(ev)  # not reset on an invalid handle
    assert ov.InternalHigh == SENTINEL

    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.WriteFile(h, b"abcd", 4, n, ov) is False
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    assert n.value == 0
    assert io.is_signaled(ev)

    calls: list = []
    w.SetLastError(SENTINEL)
    assert w.ReadFileEx(h, bytearray(4), 4, ov, lambda *a: calls.append(a)) is False
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    assert io.is_signaled(ev)
    assert w.SleepEx(0, True) == 0
    assert calls == []


def test_failing_write_resets_presignaled_event(io) -> None:
    # spec: win32 #53 (§4.2 step 2: E is reset before anything else, so a start call that
    # then fails leaves it nonsignaled [W:nt/file.c:test_ioctl]; DeviceIoControl is not part
    # of the alias contract, the rule is shown with WriteFile / ConnectNamedPipe)
    server, client = io.pipe()
    io.close(client)
    ev = io.event(manual=True, initial=True)
    ov = io.ov(hEvent=ev)
    w.SetLastError(SENTINEL)
    assert w.WriteFile(server, b"abc", 3, None, ov) is False
    err = w.GetLastError()
    assert err == w.ERROR_NO_DATA  # §10: write after the client closed
    assert not io.is_signaled(ev)


def test_failing_connect_resets_presignaled_event(io) -> None:
    # spec: win32 #53 (§10: ConnectNamedPipe after the previous client closed without
    # DisconnectNamedPipe -> ERROR_NO_DATA; the event was reset by the start)
    name = io.pipe_name()
    server = io.named_pipe(name)
    client = io.pipe_client(name)
    io.close(client)
    ev = io.event(manual=True, initial=True)
    ov = io.ov(hEvent=ev)
    w.SetLastError(SENTINEL)
    assert w.ConnectNamedPipe(server, ov) is False
    assert w.GetLastError() == w.ERROR_NO_DATA
    assert not io.is_signaled(ev)


# ---------------------------------------------------------------------------------------------
# #54: completion order: IOSB, then event/file, then APC
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", STREAMS)
def test_iosb_and_signal_before_completion_routine(io, testing, kind) -> None:
    # spec: win32 #54 [W:nt/pipe.c:read_pipe_test]
    reader, writer = io.stream(kind)
    seen: list = []
    ov = io.ov()
    buf = bytearray(8)

    def routine(err: int, n: int, o: object) -> None:
        seen.append((err, n, o, o.Internal, o.InternalHigh, io.is_signaled(reader)))

    assert w.ReadFileEx(reader, buf, 8, ov, routine) is True
    assert not io.is_signaled(reader)  # F cleared by the start (no event)
    io.send_all(writer, b"four")
    # the IOSB is written and the file object set, but the routine waits for an alertable wait
    io.wait_signaled(reader)
    testing.wait_until(lambda: w.HasOverlappedIoCompleted(ov), 5.0, "IOSB written")
    assert ov.Internal == 0
    assert ov.InternalHigh == 4
    assert seen == []
    assert w.SleepEx(0, False) == 0
    assert w.WaitForSingleObject(reader, 0) == w.WAIT_OBJECT_0
    assert seen == []
    assert w.SleepEx(LONG_MS, True) == w.WAIT_IO_COMPLETION
    assert len(seen) == 1
    err, n, o, internal, internal_high, signaled = seen[0]
    assert (err, n) == (0, 4)
    assert o is ov
    assert (internal, internal_high, signaled) == (0, 4, True)
    assert bytes(buf[:4]) == b"four"


# ---------------------------------------------------------------------------------------------
# #55: overlapped I/O never moves the file pointer
# ---------------------------------------------------------------------------------------------


def _complete(io, h, ok: bool, ov) -> tuple[bool, int, int]:
    """Accept TRUE or FALSE+ERROR_IO_PENDING (disk files may do either, §4.2 4a) and return
    GetOverlappedResult(bWait=TRUE)."""
    if not ok:
        assert w.GetLastError() == w.ERROR_IO_PENDING, w.GetLastError()
    return io.result(h, ov, wait=True)


def test_overlapped_io_does_not_move_file_pointer(io) -> None:
    # spec: win32 #55 [W:nt/file.c:test_read_write]
    p = io.path()
    h = io.file(b"", path=p)
    ov = io.ov_event(Offset=0)
    ok = w.WriteFile(h, b"0123456789", 10, None, ov)
    assert _complete(io, h, ok, ov) == (True, 0, 10)
    assert w.SetFilePointer(h, 0, None, w.FILE_CURRENT) == 0
    pos = w.Ref(SENTINEL)
    assert w.SetFilePointerEx(h, 0, pos, w.FILE_CURRENT)
    assert pos.value == 0

    buf = bytearray(4)
    ov = io.ov_event(Offset=3)
    ok = w.ReadFile(h, buf, 4, None, ov)
    assert _complete(io, h, ok, ov) == (True, 0, 4)
    assert bytes(buf) == b"3456"
    assert w.SetFilePointer(h, 0, None, w.FILE_CURRENT) == 0

    # Offset, not the pointer, decides where the write lands
    assert w.SetFilePointer(h, 8, None, w.FILE_BEGIN) == 8
    ov = io.ov_event(Offset=1)
    ok = w.WriteFile(h, b"AB", 2, None, ov)
    assert _complete(io, h, ok, ov) == (True, 0, 2)
    assert w.SetFilePointer(h, 0, None, w.FILE_CURRENT) == 8
    size = w.Ref(0)
    assert w.GetFileSizeEx(h, size)
    assert size.value == 10
    io.close(h)
    with open(p, "rb") as f:
        assert f.read() == b"0AB3456789"


def test_sync_handle_moves_file_pointer(io) -> None:
    # spec: win32 #55 (contrast: a synchronous handle uses and moves the file pointer)
    h = io.file(b"0123456789", overlapped=False)
    buf = bytearray(4)
    n = w.Ref(SENTINEL)
    assert w.ReadFile(h, buf, 4, n, None) is True
    assert n.value == 4
    assert bytes(buf) == b"0123"
    assert w.SetFilePointer(h, 0, None, w.FILE_CURRENT) == 4
    assert w.ReadFile(h, buf, 4, n, None) is True
    assert bytes(buf) == b"4567"
    assert w.SetFilePointer(h, 0, None, w.FILE_CURRENT) == 8


# ---------------------------------------------------------------------------------------------
# #56, #57: the file object as a notification channel
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", STREAMS)
def test_no_event_signals_the_file_handle(io, kind) -> None:
    # spec: win32 #56 [W:nt/pipe.c:test_completion, read_pipe_test]
    reader, writer = io.stream(kind)
    assert io.is_signaled(reader)  # initially signaled
    ov = io.ov(hEvent=0)
    buf = bytearray(8)
    assert w.ReadFile(reader, buf, 8, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert not io.is_signaled(reader)
    assert io.stays_nonsignaled(reader)
    io.send_all(writer, b"data")
    io.wait_signaled(reader)
    assert io.result(reader, ov, wait=True) == (True, 0, 4)
    assert bytes(buf[:4]) == b"data"
    assert io.is_signaled(reader)  # stays signaled (a file object is never auto-reset)


def test_get_overlapped_result_waits_on_the_file_handle(io, testing) -> None:
    # spec: win32 #56, §4.3 step 3 (hEvent NULL: GetOverlappedResult(bWait) waits on h)
    server, client = io.pipe()
    ov = io.ov(hEvent=0)
    buf = bytearray(8)
    assert w.ReadFile(server, buf, 8, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    got: list = []

    def waiter() -> None:
        got.append(io.result(server, ov, wait=True))

    t = io.thread(waiter)
    testing.wait_until_blocked(t.tid)
    assert got == []
    io.send_all(client, b"xyz")
    t.join()
    assert got == [(True, 0, 3)]


@pytest.mark.parametrize("kind", STREAMS)
def test_explicit_event_only_signals_the_event(io, kind) -> None:
    # spec: win32 #57 [W:nt/pipe.c:test_completion]
    reader, writer = io.stream(kind)
    ov = io.ov_event()
    assert w.ReadFile(reader, bytearray(8), 8, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert not io.is_signaled(reader)
    assert not io.is_signaled(ov.hEvent)
    io.send_all(writer, b"data")
    io.wait_signaled(ov.hEvent)
    assert not io.is_signaled(reader)
    assert io.result(reader, ov) == (True, 0, 4)
    assert not io.is_signaled(reader)


def test_write_with_event_does_not_signal_pipe_handle(io) -> None:
    # spec: win32 #57 (the same rule for a write that completes at once)
    server, _client = io.pipe()
    ov = io.ov(hEvent=0)
    assert w.ReadFile(server, bytearray(4), 4, None, ov) is False  # clears F
    assert not io.is_signaled(server)
    ov2 = io.ov_event()
    assert w.WriteFile(server, b"ab", 2, None, ov2) is True
    assert io.is_signaled(ov2.hEvent)
    assert not io.is_signaled(server)
    assert w.CancelIoEx(server, ov)
    io.wait_signaled(server)


# ---------------------------------------------------------------------------------------------
# #63, #64: end of file
# ---------------------------------------------------------------------------------------------


def test_overlapped_read_at_eof(io) -> None:
    # spec: win32 #63 [W:k32/file.c:test_overlapped_read] [W:nt/file.c:test_read_write]
    h = io.file(b"12345")
    ov = io.ov_event(Offset=5)
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(h, bytearray(10), 10, n, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert n.value == 0
    assert io.result(h, ov, wait=True) == (False, w.ERROR_HANDLE_EOF, 0)
    assert ov.Internal == w.STATUS_END_OF_FILE
    assert ov.InternalHigh == 0
    assert io.is_signaled(ov.hEvent)

    # beyond EOF too
    ov = io.ov_event(Offset=100)
    assert w.ReadFile(h, bytearray(10), 10, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert io.result(h, ov, wait=True) == (False, w.ERROR_HANDLE_EOF, 0)


def test_overlapped_read_across_eof_is_short(io) -> None:
    # spec: win32 §4.4 (a read starting before EOF returns the bytes up to EOF)
    h = io.file(b"12345")
    ov = io.ov_event(Offset=3)
    buf = bytearray(10)
    ok = w.ReadFile(h, buf, 10, None, ov)
    assert _complete(io, h, ok, ov) == (True, 0, 2)
    assert bytes(buf[:2]) == b"45"


def test_sync_handle_at_eof(io) -> None:
    # spec: win32 #64 [W:nt/file.c:test_read_write]
    h = io.file(b"12345", overlapped=False)
    assert w.SetFilePointer(h, 0, None, w.FILE_END) == 5
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(h, bytearray(10), 10, n, None) is True
    assert n.value == 0
    assert w.GetLastError() == SENTINEL  # last-error unchanged

    ov = io.ov(Offset=5)
    ov.InternalHigh = SENTINEL
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(h, bytearray(10), 10, n, ov) is False
    assert w.GetLastError() == w.ERROR_HANDLE_EOF
    assert n.value == 0
    assert ov.Internal == w.STATUS_END_OF_FILE
    assert ov.InternalHigh == 0


def test_sync_handle_with_overlapped_reads_at_offset(io) -> None:
    # spec: win32 §4.1 (synchronous handle: the OVERLAPPED supplies the offset and receives
    # Internal/InternalHigh; the result is final on return)
    h = io.file(b"0123456789", overlapped=False)
    ov = io.ov(Offset=6)
    buf = bytearray(3)
    n = w.Ref(SENTINEL)
    assert w.ReadFile(h, buf, 3, n, ov) is True
    assert n.value == 3
    assert bytes(buf) == b"678"
    assert ov.Internal == 0
    assert ov.InternalHigh == 3
