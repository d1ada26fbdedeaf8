"""Win32 I/O conformance: I/O completion ports, single-threaded parts (behaviours 73-91, 97;
spec §6.1-§6.5, §6.8-§6.10).

Wine: k32/file.c test_post_completion / test_WriteFileGather, nt/file.c
test_file_io_completion / test_file_completion_information / test_set_io_completion, nt/pipe.c
test_completion, nt/sync.c test_completion_port_scheduling, k32/sync.c test_iocp_callback;
MS: GetQueuedCompletionStatus(Ex), SetFileCompletionNotificationModes.
"""

from __future__ import annotations

import mmap

import pytest

import winaio.win32 as w

pytestmark = pytest.mark.usefixtures("slot_impl")  # requests, and the receive slots

SENTINEL = 0xDEADBEEF
SHORT = 100
LONG = 5000
STREAMS = ["pipe", "socket"]
PAGE = 4096


# ---------------------------------------------------------------------------------------------
# #73-#79: posting and dequeuing
# ---------------------------------------------------------------------------------------------


def test_gqcs_on_new_port_times_out(io) -> None:
    # spec: win32 #73 [W:k32/file.c:test_post_completion]
    port = io.port()
    pk = io.gqcs(port, 0)
    assert pk.ok is False
    assert pk.error == w.WAIT_TIMEOUT == 258
    assert pk.overlapped is None
    assert (pk.bytes, pk.key) == (SENTINEL, SENTINEL)  # §6.4 case 3: not written
    pk = io.gqcs(port, SHORT)
    assert (pk.ok, pk.error, pk.overlapped) == (False, w.WAIT_TIMEOUT, None)


def test_post_and_dequeue(io) -> None:
    # spec: win32 #74 [W:k32/file.c:test_post_completion]
    port = io.port()
    ov = io.ov()
    assert w.PostQueuedCompletionStatus(port, 123, 456, ov) is True
    pk = io.gqcs(port, 0)
    assert pk.ok is True
    assert (pk.bytes, pk.key) == (123, 456)
    assert pk.overlapped is ov
    pk = io.gqcs(port, 0)
    assert (pk.ok, pk.error, pk.overlapped) == (False, w.WAIT_TIMEOUT, None)


def test_post_null_overlapped(io) -> None:
    # spec: win32 #75 [W:nt/sync.c:test_completion_port_scheduling]
    port = io.port()
    assert w.PostQueuedCompletionStatus(port, 0, 1, None) is True
    pk = io.gqcs(port, LONG)
    assert pk.ok is True
    assert (pk.bytes, pk.key, pk.overlapped) == (0, 1, None)


def test_post_values_round_trip(io) -> None:
    # spec: win32 §6.3 (all three values come back verbatim; any object as lpOverlapped)
    port = io.port()
    token = object()
    assert w.PostQueuedCompletionStatus(port, 0xFFFFFFFF, 2**63 + 5, token)
    pk = io.gqcs(port, 0)
    assert pk.ok is True
    assert pk.bytes == 0xFFFFFFFF
    assert pk.key == 2**63 + 5
    assert pk.overlapped is token


def test_single_consumer_sees_fifo(io) -> None:
    # spec: win32 §6.6 (packets are queued FIFO)
    port = io.port()
    for k in range(10):
        assert w.PostQueuedCompletionStatus(port, k, k, None)
    assert [io.gqcs(port, 0).key for _ in range(10)] == list(range(10))
    io.no_packet(port, 0)


def test_gqcs_ex_dequeues_several_in_fifo_order(io) -> None:
    # spec: win32 #76 [W:k32/file.c:test_post_completion]
    port = io.port()
    ov1, ov2 = io.ov(), io.ov()
    assert w.PostQueuedCompletionStatus(port, 123, 456, ov1)
    assert w.PostQueuedCompletionStatus(port, 789, 987, ov2)
    entries = [w.OVERLAPPED_ENTRY() for _ in range(2)]
    for e in entries:
        e.Internal = SENTINEL
    removed = w.Ref(SENTINEL)
    assert w.GetQueuedCompletionStatusEx(port, entries, 2, removed, 0, False) is True
    assert removed.value == 2
    assert (entries[0].lpCompletionKey, entries[0].dwNumberOfBytesTransferred) == (456, 123)
    assert entries[0].lpOverlapped is ov1
    assert entries[0].Internal == 0
    assert (entries[1].lpCompletionKey, entries[1].dwNumberOfBytesTransferred) == (987, 789)
    assert entries[1].lpOverlapped is ov2
    assert entries[1].Internal == 0
    io.no_packet(port, 0)


def test_gqcs_ex_removes_at_most_count(io) -> None:
    # spec: win32 §6.5 (dequeues 1..count)
    port = io.port()
    for k in range(3):
        assert w.PostQueuedCompletionStatus(port, 0, k, None)
    entries = [w.OVERLAPPED_ENTRY() for _ in range(2)]
    removed = w.Ref(SENTINEL)
    assert w.GetQueuedCompletionStatusEx(port, entries, 2, removed, 0, False) is True
    assert removed.value == 2
    assert [e.lpCompletionKey for e in entries] == [0, 1]
    entries = [w.OVERLAPPED_ENTRY() for _ in range(4)]
    assert w.GetQueuedCompletionStatusEx(port, entries, 4, removed, 0, False) is True
    assert removed.value == 1
    assert entries[0].lpCompletionKey == 2


def test_gqcs_ex_empty_port_times_out(io) -> None:
    # spec: win32 #77 [W:k32/file.c:test_post_completion]
    port = io.port()
    entries = [w.OVERLAPPED_ENTRY() for _ in range(2)]
    removed = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.GetQueuedCompletionStatusEx(port, entries, 2, removed, 0, False) is False
    assert w.GetLastError() == w.WAIT_TIMEOUT
    assert removed.value in (0, 1)  # Windows writes 0 or 1; tests accept <= 1
    removed = w.Ref(SENTINEL)
    assert w.GetQueuedCompletionStatusEx(port, entries, 2, removed, SHORT, False) is False
    assert w.GetLastError() == w.WAIT_TIMEOUT
    assert removed.value in (0, 1)


def test_gqcs_ex_alertable_with_apc_and_empty_port(io) -> None:
    # spec: win32 #78 [W:k32/file.c:test_post_completion]
    port = io.port()
    log: list = []
    assert w.QueueUserAPC(lambda d: log.append(d), w.GetCurrentThread(), 1)
    entries = [w.OVERLAPPED_ENTRY()]
    removed = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.GetQueuedCompletionStatusEx(port, entries, 1, removed, 0, False) is False
    assert w.GetLastError() == w.WAIT_TIMEOUT
    assert log == []
    # GetQueuedCompletionStatus is never alertable either
    io.no_packet(port, 0)
    assert log == []
    w.SetLastError(SENTINEL)
    assert w.GetQueuedCompletionStatusEx(port, entries, 1, removed, 0, True) is False
    assert w.GetLastError() == w.WAIT_IO_COMPLETION
    assert log == [1]
    # the queue is drained: the next alertable call just times out
    w.SetLastError(SENTINEL)
    assert w.GetQueuedCompletionStatusEx(port, entries, 1, removed, 0, True) is False
    assert w.GetLastError() == w.WAIT_TIMEOUT


def test_gqcs_ex_alertable_interrupted_while_blocked(io, testing) -> None:
    # spec: win32 #78 (an APC arriving during the wait ends it with WAIT_IO_COMPLETION)
    port = io.port()
    log: list = []
    out: list = []

    def body() -> None:
        entries = [w.OVERLAPPED_ENTRY()]
        removed = w.Ref(SENTINEL)
        ok = w.GetQueuedCompletionStatusEx(port, entries, 1, removed, LONG, True)
        out.append((ok, w.GetLastError(), list(log)))

    t = io.thread(body)
    testing.wait_until_blocked(t.tid)
    assert w.QueueUserAPC(lambda d: log.append(d), t.handle, 5)
    t.join()
    assert out == [(False, w.WAIT_IO_COMPLETION, [5])]


def test_gqcs_ex_alertable_prefers_packet_over_apc(io) -> None:
    # spec: win32 #79 [W:k32/file.c:test_post_completion] [W:nt/file.c:test_set_io_completion]
    port = io.port()
    log: list = []
    assert w.QueueUserAPC(lambda d: log.append(d), w.GetCurrentThread(), 1)
    assert w.PostQueuedCompletionStatus(port, 3, 4, None)
    entries = [w.OVERLAPPED_ENTRY()]
    removed = w.Ref(SENTINEL)
    assert w.GetQueuedCompletionStatusEx(port, entries, 1, removed, LONG, True) is True
    assert removed.value == 1
    assert (entries[0].lpCompletionKey, entries[0].dwNumberOfBytesTransferred) == (4, 3)
    assert log == []
    assert w.SleepEx(0, True) == w.WAIT_IO_COMPLETION
    assert log == [1]


# ---------------------------------------------------------------------------------------------
# #80, #81: association rules
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["file", "named_pipe", "anon_pipe"])
def test_associating_non_overlapped_handle_fails(io, kind) -> None:
    # spec: win32 #80 [W:nt/file.c:test_file_io_completion] [W:k32/sync.c:test_iocp_callback]
    if kind == "file":
        h = io.file(b"abc", overlapped=False)
    elif kind == "named_pipe":
        h, _ = io.pipe(server_overlapped=False, client_overlapped=False)
    else:
        h, _ = io.anon_pipe()
    w.SetLastError(SENTINEL)
    assert w.CreateIoCompletionPort(h, 0, 1, 0) == 0
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    port = io.port()
    w.SetLastError(SENTINEL)
    assert w.CreateIoCompletionPort(h, port, 1, 0) == 0
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER


@pytest.mark.parametrize("kind", ["file", "pipe", "socket"])
def test_associating_twice_fails(io, kind) -> None:
    # spec: win32 #81 [W:k32/sync.c:test_iocp_callback]
    if kind == "file":
        h = io.file(b"abc")
    elif kind == "pipe":
        h, _ = io.pipe()
    else:
        h, _ = io.socket_pair()
    port = io.port(h, key=1)
    other = io.port()
    w.SetLastError(SENTINEL)
    assert w.CreateIoCompletionPort(h, port, 2, 0) == 0
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    w.SetLastError(SENTINEL)
    assert w.CreateIoCompletionPort(h, other, 2, 0) == 0
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    w.SetLastError(SENTINEL)
    assert w.CreateIoCompletionPort(h, 0, 2, 0) == 0
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER


def test_association_is_shared_by_duplicated_handles(io) -> None:
    # spec: win32 #81, §6.1 (the association belongs to the file object)
    server, client = io.pipe()
    port = io.port(server, key=11)
    dup = io.dup(server)
    other = io.port()
    w.SetLastError(SENTINEL)
    assert w.CreateIoCompletionPort(dup, other, 2, 0) == 0
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    ov = io.ov()
    assert w.ReadFile(dup, bytearray(4), 4, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    io.send_all(client, b"dupe")
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes, pk.key) == (True, 4, 11)
    assert pk.overlapped is ov


def test_create_port_and_associate_returns_existing_port(io) -> None:
    # spec: win32 §6.1 ((file, port, key) -> association, returns port itself)
    port = io.port()
    h = io.file(b"abc")
    assert w.CreateIoCompletionPort(h, port, 77, 5) == port
    w.SetLastError(SENTINEL)
    assert w.CreateIoCompletionPort(w.INVALID_HANDLE_VALUE, port, 1, 0) == 0
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER


# ---------------------------------------------------------------------------------------------
# #82-#84: which completions post a packet
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", STREAMS)
def test_pending_read_posts_one_packet(io, kind) -> None:
    # spec: win32 #82 [W:nt/file.c:test_file_io_completion]
    reader, writer = io.stream(kind)
    port = io.port(reader, key=0x1234)
    ov = io.ov()
    buf = bytearray(16)
    assert w.ReadFile(reader, buf, 16, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    io.no_packet(port)
    io.send_all(writer, b"abc")
    pk = io.gqcs(port, LONG)
    assert pk.ok is True
    assert (pk.bytes, pk.key) == (3, 0x1234)
    assert pk.overlapped is ov
    assert ov.Internal == 0  # read only after dequeuing (§6.9)
    assert ov.InternalHigh == 3
    assert bytes(buf[:3]) == b"abc"
    io.no_packet(port)


def test_pending_read_packet_via_gqcs_ex_carries_status(io) -> None:
    # spec: win32 #82 (GQCSEx entry: raw status 0, bytes, key, &ov)
    server, client = io.pipe()
    port = io.port(server, key=8)
    ov = io.ov()
    assert w.ReadFile(server, bytearray(8), 8, None, ov) is False
    io.send_all(client, b"12345")
    entries = [w.OVERLAPPED_ENTRY()]
    removed = w.Ref(SENTINEL)
    assert w.GetQueuedCompletionStatusEx(port, entries, 1, removed, LONG, False) is True
    assert removed.value == 1
    e = entries[0]
    assert (e.lpCompletionKey, e.Internal, e.dwNumberOfBytesTransferred) == (8, 0, 5)
    assert e.lpOverlapped is ov


def test_immediate_success_posts_a_packet(io) -> None:
    # spec: win32 #83 [W:nt/pipe.c:test_completion] [W:nt/file.c:test_file_completion_information]
    server, client = io.pipe(message=True)
    port = io.port(client, key=0xDEAD)
    ov = io.ov_event()
    n = w.Ref(SENTINEL)
    assert w.WriteFile(client, b"testdata", 8, n, ov) is True
    assert n.value == 8
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes, pk.key) == (True, 8, 0xDEAD)
    assert pk.overlapped is ov
    io.no_packet(port)

    io.send_all(server, b"reply")
    buf = bytearray(16)
    ov2 = io.ov()
    n = w.Ref(SENTINEL)
    assert w.ReadFile(client, buf, 16, n, ov2) is True  # data ready: immediate success
    assert n.value == 5
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes, pk.key) == (True, 5, 0xDEAD)
    assert pk.overlapped is ov2
    io.no_packet(port)


def test_file_io_posts_one_packet_either_way(io) -> None:
    # spec: win32 #83, §4.2 4a (disk files may complete at once or pend; a packet either way)
    h = io.file(b"0123456789")
    port = io.port(h, key=21)
    for offset in (0, 4):
        ov = io.ov(Offset=offset)
        ok = w.ReadFile(h, bytearray(4), 4, None, ov)
        if not ok:
            assert w.GetLastError() == w.ERROR_IO_PENDING
        pk = io.gqcs(port, LONG)
        assert (pk.ok, pk.bytes, pk.key) == (True, 4, 21)
        assert pk.overlapped is ov
        io.no_packet(port, 0)
    ov = io.ov(Offset=10)
    ok = w.WriteFile(h, b"tail", 4, None, ov)
    if not ok:
        assert w.GetLastError() == w.ERROR_IO_PENDING
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes, pk.key) == (True, 4, 21)
    assert pk.overlapped is ov
    io.no_packet(port)


def test_skip_completion_port_on_success(io) -> None:
    # spec: win32 #84 [W:nt/file.c:test_file_completion_information] [W:nt/pipe.c:test_completion]
    server, client = io.pipe()
    port = io.port(server, key=4)
    assert w.SetFileCompletionNotificationModes(server, w.FILE_SKIP_COMPLETION_PORT_ON_SUCCESS)
    # immediate success: no packet
    ov = io.ov()
    n = w.Ref(SENTINEL)
    assert w.WriteFile(server, b"abc", 3, n, ov) is True
    assert n.value == 3
    io.no_packet(port)
    io.send_all(client, b"xy")
    buf = bytearray(8)
    n = w.Ref(SENTINEL)
    assert w.ReadFile(server, buf, 8, n, io.ov()) is True
    assert n.value == 2
    io.no_packet(port)
    # pending: the packet is still queued
    ov = io.ov()
    assert w.ReadFile(server, buf, 8, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    io.send_all(client, b"late")
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes, pk.key) == (True, 4, 4)
    assert pk.overlapped is ov


def test_skip_completion_port_on_success_file_gather(io) -> None:
    # spec: win32 #84 [W:k32/file.c:test_WriteFileGather] (FILE_FLAG_NO_BUFFERING file)
    h = io.file(b"", extra_flags=w.FILE_FLAG_NO_BUFFERING)
    port = io.port(h, key=999)
    mem = mmap.mmap(-1, 2 * PAGE)
    mem[:PAGE] = b"g" * PAGE
    page = memoryview(mem)[:PAGE]
    ov = io.ov()
    ok = w.WriteFileGather(h, [page], PAGE, None, ov)
    if not ok:
        assert w.GetLastError() == w.ERROR_IO_PENDING
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes, pk.key) == (True, PAGE, 999)
    assert pk.overlapped is ov

    assert w.SetFileCompletionNotificationModes(h, w.FILE_SKIP_COMPLETION_PORT_ON_SUCCESS)
    ov = io.ov(Offset=PAGE)
    ok = w.WriteFileGather(h, [page], PAGE, None, ov)
    if ok:
        io.no_packet(port)
    else:
        assert w.GetLastError() == w.ERROR_IO_PENDING
        pk = io.gqcs(port, LONG)
        assert (pk.ok, pk.bytes) == (True, PAGE)
        assert pk.overlapped is ov
    # scatter read of both pages
    ov = io.ov(Offset=0)
    segs = [memoryview(mem)[:PAGE], memoryview(mem)[PAGE:]]
    mem[:] = b"\0" * (2 * PAGE)
    ok = w.ReadFileScatter(h, segs, 2 * PAGE, None, ov)
    if ok:
        io.no_packet(port)
    else:
        assert w.GetLastError() == w.ERROR_IO_PENDING
        pk = io.gqcs(port, LONG)
        assert (pk.ok, pk.bytes) == (True, 2 * PAGE)
    assert ov.InternalHigh == 2 * PAGE
    assert mem[:] == b"g" * (2 * PAGE)
    del segs, page


# ---------------------------------------------------------------------------------------------
# #85-#88: notification modes and the hEvent|1 trick
# ---------------------------------------------------------------------------------------------


def _check_both_skip_flags(io, server: int, client: int, port: int) -> None:
    # SKIP_COMPLETION_PORT_ON_SUCCESS: an immediate success posts nothing
    io.send_all(client, b"now")
    n = w.Ref(SENTINEL)
    assert w.ReadFile(server, bytearray(8), 8, n, io.ov()) is True
    assert n.value == 3
    io.no_packet(port)
    # SKIP_SET_EVENT_ON_HANDLE: a pending request without event never signals the handle
    ov = io.ov()
    assert w.ReadFile(server, bytearray(8), 8, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    io.send_all(client, b"later")
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes) == (True, 5)
    assert pk.overlapped is ov
    assert not io.is_signaled(server)


def test_notification_modes_are_cumulative(io) -> None:
    # spec: win32 #85 [W:nt/file.c:test_file_completion_information]
    server, client = io.pipe()
    port = io.port(server, key=1)
    assert w.SetFileCompletionNotificationModes(server, w.FILE_SKIP_SET_EVENT_ON_HANDLE)
    assert w.SetFileCompletionNotificationModes(server, 0)  # changes nothing
    assert w.SetFileCompletionNotificationModes(server, w.FILE_SKIP_COMPLETION_PORT_ON_SUCCESS)
    _check_both_skip_flags(io, server, client, port)


def test_notification_modes_unknown_bits_ignored(io) -> None:
    # spec: win32 #85 (0xdeadbeef accepted; only the known bits (both set in it) are kept)
    server, client = io.pipe()
    port = io.port(server, key=1)
    assert w.SetFileCompletionNotificationModes(server, 0xDEADBEEF)
    _check_both_skip_flags(io, server, client, port)


def test_notification_modes_before_association(io) -> None:
    # spec: win32 §6.10 (the modes may be set before the association)
    server, client = io.pipe()
    assert w.SetFileCompletionNotificationModes(
        server, w.FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | w.FILE_SKIP_SET_EVENT_ON_HANDLE
    )
    port = io.port(server, key=1)
    _check_both_skip_flags(io, server, client, port)


@pytest.mark.parametrize("kind", ["file", "anon_pipe"])
def test_skip_port_on_non_overlapped_handle_fails(io, kind) -> None:
    # spec: win32 #86 [W:nt/file.c:test_file_completion_information]
    h = io.file(b"x", overlapped=False) if kind == "file" else io.anon_pipe()[0]
    w.SetLastError(SENTINEL)
    assert w.SetFileCompletionNotificationModes(h, w.FILE_SKIP_COMPLETION_PORT_ON_SUCCESS) is False
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER


@pytest.mark.parametrize("kind", STREAMS)
def test_skip_set_event_on_handle(io, kind) -> None:
    # spec: win32 #87 [W:nt/pipe.c:test_completion]
    reader, writer = io.stream(kind)
    port = io.port(reader, key=2)
    assert w.SetFileCompletionNotificationModes(reader, w.FILE_SKIP_SET_EVENT_ON_HANDLE)
    ov = io.ov()
    assert w.ReadFile(reader, bytearray(16), 16, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert not io.is_signaled(reader)
    io.send_all(writer, b"testdata")
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes, pk.key) == (True, 8, 2)
    assert pk.overlapped is ov
    assert not io.is_signaled(reader)
    # an explicit event is still signaled (§6.10)
    ov2 = io.ov_event()
    assert w.ReadFile(reader, bytearray(16), 16, None, ov2) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    io.send_all(writer, b"x")
    io.wait_signaled(ov2.hEvent)
    pk = io.gqcs(port, LONG)
    assert pk.overlapped is ov2
    assert not io.is_signaled(reader)


@pytest.mark.parametrize("kind", STREAMS)
def test_event_low_bit_suppresses_packet(io, kind) -> None:
    # spec: win32 #88 [MS:GetQueuedCompletionStatus]
    reader, writer = io.stream(kind)
    port = io.port(reader, key=6)
    ev = io.event()
    ov = io.ov(hEvent=ev | 1)
    buf = bytearray(8)
    assert w.ReadFile(reader, buf, 8, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert not io.is_signaled(ev)
    io.send_all(writer, b"abc")
    io.wait_signaled(ev)
    assert io.result(reader, ov) == (True, 0, 3)
    io.no_packet(port)
    # immediate success: no packet either
    io.send_all(writer, b"de")
    assert w.ResetEvent(ev)
    ok = w.ReadFile(reader, buf, 8, None, ov)
    if not ok:
        assert w.GetLastError() == w.ERROR_IO_PENDING
    io.wait_signaled(ev)
    assert io.result(reader, ov) == (True, 0, 2)
    io.no_packet(port)


def test_association_after_issue_still_posts(io) -> None:
    # spec: win32 #89 [W:nt/file.c:test_file_io_completion]
    server, client = io.pipe()
    ov = io.ov()
    assert w.ReadFile(server, bytearray(4), 4, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    port = io.port(server, key=0x42)
    io.no_packet(port)
    io.send_all(client, b"late")
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes, pk.key) == (True, 4, 0x42)
    assert pk.overlapped is ov


def test_peer_close_with_pending_read_posts_failure(io) -> None:
    # spec: win32 #90 [W:nt/file.c:test_file_io_completion]
    server, client = io.pipe()
    port = io.port(server, key=0x99)
    ov = io.ov()
    assert w.ReadFile(server, bytearray(4), 4, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    io.close(client)
    pk = io.gqcs(port, LONG)
    assert pk.ok is False
    assert pk.error == w.ERROR_BROKEN_PIPE == 109
    assert pk.overlapped is ov
    assert (pk.bytes, pk.key) == (0, 0x99)
    assert ov.Internal == w.STATUS_PIPE_BROKEN


def test_scatter_read_at_eof_via_port(io) -> None:
    # spec: win32 #91 [W:k32/file.c:test_WriteFileGather] (either form the spec allows)
    h = io.file(b"s" * PAGE, extra_flags=w.FILE_FLAG_NO_BUFFERING)
    port = io.port(h, key=999)
    mem = mmap.mmap(-1, PAGE)
    seg = memoryview(mem)
    ov = io.ov(Offset=PAGE)
    w.SetLastError(SENTINEL)
    ok = w.ReadFileScatter(h, [seg], PAGE, None, ov)
    assert ok is False
    err = w.GetLastError()
    if err == w.ERROR_IO_PENDING:  # Win8+: completes with STATUS_END_OF_FILE and a packet
        pk = io.gqcs(port, LONG)
        assert pk.ok is False
        assert pk.error == w.ERROR_HANDLE_EOF
        assert pk.overlapped is ov
        assert (pk.bytes, pk.key) == (0, 999)
        assert ov.Internal == w.STATUS_END_OF_FILE
    else:  # legacy: immediate ERROR_HANDLE_EOF, no packet
        assert err == w.ERROR_HANDLE_EOF
        io.no_packet(port)
    # a scatter read inside the file works
    ov = io.ov(Offset=0)
    ok = w.ReadFileScatter(h, [seg], PAGE, None, ov)
    if not ok:
        assert w.GetLastError() == w.ERROR_IO_PENDING
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes) == (True, PAGE)
    assert pk.overlapped is ov
    assert mem[:] == b"s" * PAGE
    del seg


def test_failed_start_posts_nothing(io) -> None:
    # spec: win32 §6.2 (FALSE + an error other than ERROR_IO_PENDING: no packet)
    server, client = io.pipe(message=True)
    port = io.port(server, key=1)
    io.close(client)
    assert w.ReadFile(server, bytearray(4), 4, None, io.ov()) is False
    assert w.GetLastError() == w.ERROR_BROKEN_PIPE
    assert w.WriteFile(server, b"x", 1, None, io.ov()) is False
    assert w.GetLastError() == w.ERROR_NO_DATA
    io.no_packet(port)


def test_partial_message_read_posts_warning_packet(io) -> None:
    # spec: win32 §4.2 step 5 / §6.5 (a warning status posts a packet; GQCS reports it as a
    # failure with data, GQCSEx carries the raw status) [W:nt/pipe.c:test_completion]
    server, client = io.pipe(message=True)
    port = io.port(server, key=3)
    io.send_all(client, b"0123456789")
    ov = io.ov()
    buf = bytearray(4)
    n = w.Ref(SENTINEL)
    assert w.ReadFile(server, buf, 4, n, ov) is False
    assert w.GetLastError() == w.ERROR_MORE_DATA
    pk = io.gqcs(port, LONG)
    assert pk.ok is False
    assert pk.error == w.ERROR_MORE_DATA
    assert pk.overlapped is ov
    assert pk.bytes == 4
    assert bytes(buf) == b"0123"
    ov2 = io.ov()
    buf = bytearray(3)
    assert w.ReadFile(server, buf, 3, None, ov2) is False
    assert w.GetLastError() == w.ERROR_MORE_DATA
    entries = [w.OVERLAPPED_ENTRY()]
    removed = w.Ref(SENTINEL)
    assert w.GetQueuedCompletionStatusEx(port, entries, 1, removed, LONG, False) is True
    assert entries[0].Internal == w.STATUS_BUFFER_OVERFLOW
    assert entries[0].dwNumberOfBytesTransferred == 3
    assert entries[0].lpOverlapped is ov2


# ---------------------------------------------------------------------------------------------
# §6.8: closing the port
# ---------------------------------------------------------------------------------------------


def test_completion_after_port_closed_is_dropped(io) -> None:
    # spec: win32 §6.8 (later completions on still-associated files are dropped; the event
    # and the IOSB still work)
    server, client = io.pipe()
    port = io.port(server, key=1)
    ov = io.ov_event()
    assert w.ReadFile(server, bytearray(4), 4, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    io.close(port)
    io.send_all(client, b"gone")
    io.wait_signaled(ov.hEvent)
    assert io.result(server, ov) == (True, 0, 4)
    pk = io.gqcs(port, 0)
    assert (pk.ok, pk.error, pk.overlapped) == (False, w.ERROR_INVALID_HANDLE, None)


def test_closing_port_discards_queued_packets(io) -> None:
    # spec: win32 §6.8 (queued packets are discarded)
    port = io.port()
    ov = io.ov()
    assert w.PostQueuedCompletionStatus(port, 1, 2, ov)
    io.close(port)
    w.SetLastError(SENTINEL)
    assert w.PostQueuedCompletionStatus(port, 1, 2, ov) is False
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    port2 = io.port()
    io.no_packet(port2, 0)


# ---------------------------------------------------------------------------------------------
# #97: the NT completion API
# ---------------------------------------------------------------------------------------------


def test_nt_set_and_remove_io_completion(io) -> None:
    # spec: win32 #97 [W:nt/file.c:test_set_io_completion]
    port = io.port()
    depth = w.Ref(SENTINEL)
    assert w.NtQueryIoCompletion(port, depth) == 0
    assert depth.value == 0
    info = 0x123456789A  # pointer-sized information
    status = w.STATUS_INVALID_DEVICE_REQUEST
    assert w.NtSetIoCompletion(port, 0xABCDEF, 0x5555, status, info) == 0
    assert w.NtQueryIoCompletion(port, depth) == 0
    assert depth.value == 1
    key, value = w.Ref(SENTINEL), w.Ref(SENTINEL)
    iosb = w.IO_STATUS_BLOCK()
    assert w.NtRemoveIoCompletion(port, key, value, iosb, 0) == 0
    assert (key.value, value.value) == (0xABCDEF, 0x5555)
    assert (iosb.Status, iosb.Information) == (status, info)
    assert w.NtQueryIoCompletion(port, depth) == 0
    assert depth.value == 0
    assert w.NtRemoveIoCompletion(port, key, value, iosb, 0) == w.STATUS_TIMEOUT
    assert w.NtRemoveIoCompletion(port, key, value, iosb, -1_000_000) == w.STATUS_TIMEOUT


def test_nt_remove_io_completion_ex(io) -> None:
    # spec: win32 #97 [W:nt/file.c:test_set_io_completion]
    port = io.port()
    assert w.NtSetIoCompletion(port, 1, 10, 0, 100) == 0
    assert w.NtSetIoCompletion(port, 2, 20, w.STATUS_CANCELLED, 0) == 0
    depth = w.Ref(SENTINEL)
    assert w.NtQueryIoCompletion(port, depth) == 0
    assert depth.value == 2
    info = [w.FILE_IO_COMPLETION_INFORMATION() for _ in range(3)]
    count = w.Ref(SENTINEL)
    assert w.NtRemoveIoCompletionEx(port, info, 3, count, 0, False) == 0
    assert count.value == 2
    got = [
        (i.KeyContext, i.ApcContext, i.IoStatusBlock.Status, i.IoStatusBlock.Information)
        for i in info[:2]
    ]
    assert got == [(1, 10, 0, 100), (2, 20, w.STATUS_CANCELLED, 0)]
    count = w.Ref(SENTINEL)
    assert w.NtRemoveIoCompletionEx(port, info, 3, count, 0, False) == w.STATUS_TIMEOUT
    assert count.value in (0, 1)


def test_nt_remove_io_completion_ex_alertable(io) -> None:
    # spec: win32 #97, #78/#79 at the NT level [W:nt/file.c:test_set_io_completion]
    port = io.port()
    log: list = []
    info = [w.FILE_IO_COMPLETION_INFORMATION()]
    count = w.Ref(SENTINEL)
    assert w.QueueUserAPC(lambda d: log.append(d), w.GetCurrentThread(), 1)
    assert w.NtSetIoCompletion(port, 7, 70, 0, 0) == 0
    assert w.NtRemoveIoCompletionEx(port, info, 1, count, -50_000_000, True) == 0
    assert count.value == 1
    assert info[0].KeyContext == 7
    assert log == []
    assert w.NtRemoveIoCompletionEx(port, info, 1, count, -50_000_000, True) == w.STATUS_USER_APC
    assert log == [1]


def test_nt_set_io_completion_seen_by_gqcs(io) -> None:
    # spec: win32 #97, §6.4 case 2 (a failure status dequeued by GQCS: FALSE, mapped error,
    # values filled; GQCSEx carries the raw status and succeeds)
    port = io.port()
    ov = io.ov()
    assert w.NtSetIoCompletion(port, 5, ov, w.STATUS_CANCELLED, 0) == 0
    pk = io.gqcs(port, 0)
    assert pk.ok is False
    assert pk.error == w.ERROR_OPERATION_ABORTED
    assert (pk.bytes, pk.key) == (0, 5)
    assert pk.overlapped is ov
    assert w.NtSetIoCompletion(port, 6, ov, w.STATUS_END_OF_FILE, 0) == 0
    entries = [w.OVERLAPPED_ENTRY()]
    removed = w.Ref(SENTINEL)
    assert w.GetQueuedCompletionStatusEx(port, entries, 1, removed, 0, False) is True
    assert entries[0].Internal == w.STATUS_END_OF_FILE
    assert entries[0].lpOverlapped is ov


# ---------------------------------------------------------------------------------------------
# several requests on one associated handle
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", STREAMS)
def test_pending_reads_post_packets_in_issue_order(io, kind) -> None:
    # spec: win32 #66 / #82 through a port (FIFO requests, FIFO packets)
    reader, writer = io.stream(kind)
    port = io.port(reader, key=1)
    ovs = [io.ov() for _ in range(3)]
    bufs = [bytearray(2) for _ in range(3)]
    for ov, b in zip(ovs, bufs, strict=True):
        assert w.ReadFile(reader, b, 2, None, ov) is False
        assert w.GetLastError() == w.ERROR_IO_PENDING
    for i, chunk in enumerate((b"aa", b"bb", b"cc")):
        io.send_all(writer, chunk)
        pk = io.gqcs(port, LONG)
        assert (pk.ok, pk.bytes) == (True, 2)
        assert pk.overlapped is ovs[i]
    assert [bytes(b) for b in bufs] == [b"aa", b"bb", b"cc"]
    io.no_packet(port)


def test_cancel_one_request_posts_only_its_packet(io) -> None:
    # spec: win32 #100 / #105 through a port
    server, client = io.pipe()
    port = io.port(server, key=2)
    ov1, ov2 = io.ov(), io.ov()
    buf1 = bytearray(3)
    assert w.ReadFile(server, buf1, 3, None, ov1) is False
    assert w.ReadFile(server, bytearray(3), 3, None, ov2) is False
    assert w.CancelIoEx(server, ov2) is True
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.error, pk.bytes) == (False, w.ERROR_OPERATION_ABORTED, 0)
    assert pk.overlapped is ov2
    io.no_packet(port)
    io.send_all(client, b"one")
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes) == (True, 3)
    assert pk.overlapped is ov1
    assert bytes(buf1) == b"one"


def test_gqcs_ex_mixes_success_and_failure_packets(io) -> None:
    # spec: win32 §6.5 (failure packets do not make GQCSEx fail; each entry carries its raw
    # status)
    server, client = io.pipe()
    port = io.port(server, key=3)
    ov_ok, ov_cancel = io.ov(), io.ov()
    assert w.ReadFile(server, bytearray(4), 4, None, ov_ok) is False
    assert w.ReadFile(server, bytearray(4), 4, None, ov_cancel) is False
    io.send_all(client, b"data")
    pk_entries = [w.OVERLAPPED_ENTRY() for _ in range(2)]
    removed = w.Ref(SENTINEL)
    assert w.GetQueuedCompletionStatusEx(port, pk_entries, 2, removed, LONG, False) is True
    assert removed.value == 1
    assert pk_entries[0].lpOverlapped is ov_ok
    assert w.CancelIoEx(server, ov_cancel) is True
    assert w.PostQueuedCompletionStatus(port, 9, 9, None)
    got: list = []
    for _ in range(20):
        entries = [w.OVERLAPPED_ENTRY() for _ in range(4)]
        removed = w.Ref(SENTINEL)
        assert w.GetQueuedCompletionStatusEx(port, entries, 4, removed, LONG, False) is True
        got += [(e.lpOverlapped, e.Internal, e.lpCompletionKey) for e in entries[: removed.value]]
        if len(got) == 2:
            break
    assert sorted(got, key=lambda t: t[2]) == [
        (ov_cancel, w.STATUS_CANCELLED, 3),
        (None, 0, 9),
    ]


def test_event_request_on_port_handle_readable_before_dequeue(io) -> None:
    # spec: win32 §6.9 (a request with an event can be waited with GetOverlappedResult(bWait)
    # before its packet is dequeued) [W:nt/file.c:test_file_completion_information]
    server, client = io.pipe()
    port = io.port(server, key=5)
    ov = io.ov_event()
    assert w.ReadFile(server, bytearray(4), 4, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    io.send_all(client, b"abcd")
    assert io.result(server, ov, wait=True) == (True, 0, 4)
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes, pk.key) == (True, 4, 5)
    assert pk.overlapped is ov


def test_read_file_no_buffering_pends_posts_and_refuses_unaligned(io) -> None:
    # spec: win32 §4.1, §6.2 (FILE_FLAG_NO_BUFFERING: aligned reads pend and post one packet;
    # an unaligned buffer fails at once with ERROR_INVALID_PARAMETER and posts nothing; a read
    # at the end of the file pends and completes with ERROR_HANDLE_EOF, Win8+; a zero-byte read
    # succeeds). ReadFile's FILE_FLAG_NO_BUFFERING shape (``win32._io._disk_io``).
    data = bytes(range(256)) * (2 * PAGE // 256)
    h = io.file(data, extra_flags=w.FILE_FLAG_NO_BUFFERING)
    port = io.port(h, key=7)
    mem = mmap.mmap(-1, 2 * PAGE)
    view = memoryview(mem)
    count = w.Ref(SENTINEL)
    for offset in (PAGE, 0):
        ov = io.ov(Offset=offset)
        w.SetLastError(SENTINEL)
        assert w.ReadFile(h, view[:PAGE], PAGE, count, ov) is False
        assert (w.GetLastError(), count.value) == (w.ERROR_IO_PENDING, 0)
        pk = io.gqcs(port, LONG)
        assert (pk.ok, pk.bytes, pk.key) == (True, PAGE, 7)
        assert pk.overlapped is ov and ov.Internal == 0 and ov.InternalHigh == PAGE
        assert mem[:PAGE] == data[offset : offset + PAGE]
    count.value = SENTINEL
    w.SetLastError(SENTINEL)
    assert w.ReadFile(h, view[1 : PAGE + 1], PAGE, count, io.ov()) is False
    assert (w.GetLastError(), count.value) == (w.ERROR_INVALID_PARAMETER, 0)
    io.no_packet(port)
    ov = io.ov(Offset=2 * PAGE)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(h, view[:PAGE], PAGE, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.error, pk.bytes) == (False, w.ERROR_HANDLE_EOF, 0)
    assert ov.Internal == w.STATUS_END_OF_FILE
    count.value = SENTINEL
    ov = io.ov()
    assert w.ReadFile(h, view[:0], 0, count, ov) is True
    assert count.value == 0
    pk = io.gqcs(port, LONG)  # an immediate success still posts its packet (§6.2)
    assert (pk.ok, pk.bytes, pk.overlapped) == (True, 0, ov)

    class SlotOVERLAPPED(w.OVERLAPPED):  # an application's own OVERLAPPED (the bench's shape)
        __slots__ = ("slot",)

    sub = SlotOVERLAPPED()
    sub.Offset, sub.slot = PAGE, 3
    assert w.ReadFile(h, view[PAGE:], PAGE, None, sub) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    pk = io.gqcs(port, LONG)
    assert (pk.ok, pk.bytes, pk.overlapped) == (True, PAGE, sub) and pk.overlapped.slot == 3
    assert mem[PAGE:] == data[PAGE:]
    del view
