"""Win32 I/O conformance: named pipes (behaviours 65-66, 118-120; spec §10, §7 peer aborts).

Wine: k32/pipe.c test_blocking_rw / test_overlapped_transport / test_overlapped_error /
test_readfileex_pending, nt/pipe.c test_overlapped; MS: ConnectNamedPipe.
"""

from __future__ import annotations

import pytest

import winaio.win32 as w

SENTINEL = 0xDEADBEEF


def _write(io, h: int, data: bytes) -> None:
    io.send_all(h, data)


def _peek(h: int) -> tuple[int, int, int]:
    """PeekNamedPipe -> (bytes read into a NULL buffer, total available, left this message)."""
    read, avail, left = w.Ref(SENTINEL), w.Ref(SENTINEL), w.Ref(SENTINEL)
    assert w.PeekNamedPipe(h, None, 0, read, avail, left), w.GetLastError()
    return read.value, avail.value, left.value


# ---------------------------------------------------------------------------------------------
# #65: partial message reads
# ---------------------------------------------------------------------------------------------


def test_message_read_into_small_buffer_with_data_ready(io) -> None:
    # spec: win32 #65 [W:k32/pipe.c:test_blocking_rw] (overlapped_read_sync with partial_read)
    server, client = io.pipe(message=True)
    msg = bytes(range(256)) * 15 + b"\x01" * 160  # 4000 bytes
    assert len(msg) == 4000
    _write(io, client, msg)
    ov = io.ov_event()
    buf = bytearray(1000)
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(server, buf, 1000, n, ov) is False
    assert w.GetLastError() == w.ERROR_MORE_DATA == 234
    assert n.value == 0
    assert io.result(server, ov) == (False, w.ERROR_MORE_DATA, 1000)
    assert ov.Internal == w.STATUS_BUFFER_OVERFLOW
    assert ov.InternalHigh == 1000
    assert io.is_signaled(ov.hEvent)  # a warning status completes like success
    assert bytes(buf) == msg[:1000]
    assert _peek(server)[1:] == (3000, 3000)
    # the rest of the message
    rest = bytearray(4000)
    ov2 = io.ov_event()
    n = w.Ref(SENTINEL)
    assert w.ReadFile(server, rest, 4000, n, ov2) is True
    assert n.value == 3000
    assert bytes(rest[:3000]) == msg[1000:]


def test_message_pending_read_into_small_buffer(io) -> None:
    # spec: win32 #65 [W:k32/pipe.c:test_blocking_rw] (pending read, then a 4000-byte message)
    server, client = io.pipe(message=True)
    ov = io.ov_event()
    buf = bytearray(1000)
    n = w.Ref(SENTINEL)
    assert w.ReadFile(server, buf, 1000, n, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert n.value == 0
    _write(io, client, b"m" * 4000)
    io.wait_signaled(ov.hEvent)
    assert io.result(server, ov) == (False, w.ERROR_MORE_DATA, 1000)
    assert _peek(server)[1:] == (3000, 3000)


def test_message_read_small_buffer_sync_handle(io) -> None:
    # spec: win32 #65 (synchronous handle: FALSE, ERROR_MORE_DATA, *bytes = bytes copied)
    # [W:k32/pipe.c:test_overlapped_transport]
    server, client = io.pipe(message=True, server_overlapped=False, client_overlapped=False)
    n = w.Ref(SENTINEL)
    assert w.WriteFile(client, b"0123456789abcdef", 16, n, None) is True
    assert n.value == 16
    buf = bytearray(10)
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(server, buf, 10, n, None) is False
    assert w.GetLastError() == w.ERROR_MORE_DATA
    assert n.value == 10
    assert bytes(buf) == b"0123456789"
    n = w.Ref(SENTINEL)
    assert w.ReadFile(server, buf, 10, n, None) is True
    assert n.value == 6
    assert bytes(buf[:6]) == b"abcdef"


def test_message_boundaries_are_kept(io) -> None:
    # spec: win32 §10 (message mode: one read returns at most one message)
    server, client = io.pipe(message=True)
    _write(io, client, b"first")
    _write(io, client, b"second!")
    assert _peek(server) == (0, 12, 5)
    buf = bytearray(100)
    n = w.Ref(SENTINEL)
    assert w.ReadFile(server, buf, 100, n, io.ov_event()) is True
    assert bytes(buf[: n.value]) == b"first"
    n = w.Ref(SENTINEL)
    assert w.ReadFile(server, buf, 100, n, io.ov_event()) is True
    assert bytes(buf[: n.value]) == b"second!"


def test_byte_pipe_read_merges_writes(io) -> None:
    # spec: win32 §10 (byte mode: no boundaries)
    server, client = io.pipe()
    _write(io, client, b"abc")
    _write(io, client, b"def")
    assert _peek(server) == (0, 6, 0)
    assert io.recv_exact(server, 6) == b"abcdef"


# ---------------------------------------------------------------------------------------------
# #66: pending reads complete in issue order
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("message", [False, True], ids=["byte", "message"])
def test_two_pending_reads_complete_in_issue_order(io, message) -> None:
    # spec: win32 #66 [W:k32/pipe.c:test_blocking_rw]
    server, client = io.pipe(message=message)
    ov1, ov2 = io.ov_event(), io.ov_event()
    b1, b2 = bytearray(4), bytearray(4)
    assert w.ReadFile(server, b1, 4, None, ov1) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert w.ReadFile(server, b2, 4, None, ov2) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    _write(io, client, b"1111")
    io.wait_signaled(ov1.hEvent)
    assert io.result(server, ov1) == (True, 0, 4)
    assert bytes(b1) == b"1111"
    assert io.stays_nonsignaled(ov2.hEvent)
    _write(io, client, b"2222")
    io.wait_signaled(ov2.hEvent)
    assert io.result(server, ov2) == (True, 0, 4)
    assert bytes(b2) == b"2222"


def test_three_pending_reads_one_write_each(io) -> None:
    # spec: win32 #66 (FIFO over more requests, 1-byte writes)
    server, client = io.pipe()
    ovs = [io.ov_event() for _ in range(3)]
    bufs = [bytearray(1) for _ in range(3)]
    for ov, b in zip(ovs, bufs, strict=True):
        assert w.ReadFile(server, b, 1, None, ov) is False
        assert w.GetLastError() == w.ERROR_IO_PENDING
    for i, ch in enumerate(b"xyz"):
        _write(io, client, bytes([ch]))
        io.wait_signaled(ovs[i].hEvent)
        for later in ovs[i + 1 :]:
            assert not io.is_signaled(later.hEvent)
    assert [bytes(b) for b in bufs] == [b"x", b"y", b"z"]


# ---------------------------------------------------------------------------------------------
# zero-length operations
# ---------------------------------------------------------------------------------------------


def test_zero_length_write_never_blocks(io) -> None:
    # spec: win32 §10 ("zero-length write never blocks") [W:k32/pipe.c:test_blocking_rw]
    server, client = io.pipe()
    pending, total = io.fill(client)  # the pipe is full: a 64 KiB write is pending
    ov = io.ov_event()
    n = w.Ref(SENTINEL)
    assert w.WriteFile(client, b"", 0, n, ov) is True
    assert n.value == 0
    assert io.is_signaled(ov.hEvent)
    assert io.result(client, ov) == (True, 0, 0)
    assert not io.is_signaled(pending.hEvent)
    assert len(io.recv_exact(server, total)) == total
    io.wait_signaled(pending.hEvent)


def test_zero_length_read_on_empty_pipe_pends(io) -> None:
    # spec: win32 §4.4 / §10 (a zero-byte read succeeds with 0 bytes, via pending on an empty
    # pipe; the data that completes it stays readable) [W:k32/pipe.c:test_readfileex_pending]
    server, client = io.pipe()
    ov = io.ov_event()
    ov.Internal = SENTINEL
    ov.InternalHigh = SENTINEL
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(server, bytearray(1), 0, n, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert n.value == 0
    assert ov.Internal == w.STATUS_PENDING
    assert ov.InternalHigh == SENTINEL
    assert io.stays_nonsignaled(ov.hEvent)
    _write(io, client, b"t")
    io.wait_signaled(ov.hEvent)
    assert ov.Internal == 0
    assert ov.InternalHigh == 0
    assert io.result(server, ov) == (True, 0, 0)
    buf = bytearray(1)
    n = w.Ref(SENTINEL)
    assert w.ReadFile(server, buf, 1, n, io.ov_event()) is True
    assert (n.value, bytes(buf)) == (1, b"t")


# ---------------------------------------------------------------------------------------------
# non-blocking and synchronous pipes
# ---------------------------------------------------------------------------------------------


def test_nowait_read_of_empty_pipe(io) -> None:
    # spec: win32 §10 (PIPE_NOWAIT read of an empty pipe -> ERROR_NO_DATA)
    # [W:k32/pipe.c:test_nowait]
    server, _client = io.pipe(nowait=True, server_overlapped=False, client_overlapped=False)
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(server, bytearray(4), 4, n, None) is False
    assert w.GetLastError() == w.ERROR_NO_DATA
    assert n.value == 0


def test_sync_pipe_read_blocks_until_data(io, testing) -> None:
    # spec: win32 §4.1 (synchronous handle: the call blocks until done)
    server, client = io.pipe(server_overlapped=False, client_overlapped=False)
    got: list = []

    def body() -> None:
        buf = bytearray(8)
        n = w.Ref(SENTINEL)
        ok = w.ReadFile(server, buf, 8, n, None)
        got.append((ok, n.value, bytes(buf[: n.value])))

    t = io.thread(body)
    assert t.is_running()
    n = w.Ref(SENTINEL)
    assert w.WriteFile(client, b"sync", 4, n, None) is True
    assert n.value == 4
    t.join()
    assert got == [(True, 4, b"sync")]


def test_anonymous_pipe_is_synchronous(io) -> None:
    # spec: win32 §4.1 / §6.1 (CreatePipe handles are synchronous, like Windows)
    r, wr = io.anon_pipe()
    n = w.Ref(SENTINEL)
    assert w.WriteFile(wr, b"anon", 4, n, None) is True
    assert n.value == 4
    buf = bytearray(8)
    n = w.Ref(SENTINEL)
    assert w.ReadFile(r, buf, 8, n, None) is True
    assert bytes(buf[: n.value]) == b"anon"
    w.SetLastError(SENTINEL)
    assert w.CreateIoCompletionPort(r, 0, 1, 0) == 0
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    io.close(wr)
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(r, buf, 8, n, None) is False
    assert w.GetLastError() == w.ERROR_BROKEN_PIPE
    assert n.value == 0


def test_write_after_client_closed(io) -> None:
    # spec: win32 §10 (write after the client closed -> ERROR_NO_DATA)
    server, client = io.pipe()
    io.close(client)
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.WriteFile(server, b"x", 1, n, io.ov_event()) is False
    assert w.GetLastError() == w.ERROR_NO_DATA
    assert n.value == 0


def test_connect_to_busy_and_missing_pipe(io) -> None:
    # spec: win32 §1.7 (STATUS_INSTANCE_NOT_AVAILABLE -> ERROR_PIPE_BUSY; unknown name)
    name = io.pipe_name()
    io.named_pipe(name, instances=1)
    io.pipe_client(name)
    w.SetLastError(SENTINEL)
    h = w.CreateFile(name, w.GENERIC_READ | w.GENERIC_WRITE, 0, None, w.OPEN_EXISTING, 0, 0)
    assert h == w.INVALID_HANDLE_VALUE
    assert w.GetLastError() == w.ERROR_PIPE_BUSY
    w.SetLastError(SENTINEL)
    h = w.CreateFile(
        io.pipe_name(), w.GENERIC_READ | w.GENERIC_WRITE, 0, None, w.OPEN_EXISTING, 0, 0
    )
    assert h == w.INVALID_HANDLE_VALUE
    assert w.GetLastError() == w.ERROR_FILE_NOT_FOUND


# ---------------------------------------------------------------------------------------------
# #118, #119: ConnectNamedPipe
# ---------------------------------------------------------------------------------------------


def test_connect_pending_until_client_opens(io) -> None:
    # spec: win32 #118 [W:k32/pipe.c:test_overlapped_error]
    name = io.pipe_name()
    server = io.named_pipe(name)
    assert io.is_signaled(server)  # signaled after creation
    ov = io.ov_event()
    w.SetLastError(SENTINEL)
    assert w.ConnectNamedPipe(server, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert ov.Internal == w.STATUS_PENDING
    assert not io.is_signaled(ov.hEvent)
    assert not io.is_signaled(server)
    assert io.stays_nonsignaled(ov.hEvent)
    client = io.pipe_client(name)
    io.wait_signaled(ov.hEvent)
    assert io.result(server, ov) == (True, 0, 0)
    assert io.is_signaled(client)
    # the pipe works
    _write(io, client, b"hi")
    assert io.recv_exact(server, 2) == b"hi"


def test_connect_with_client_already_connected(io) -> None:
    # spec: win32 #119 [W:k32/pipe.c:test_overlapped_error] [W:nt/pipe.c:test_overlapped]
    name = io.pipe_name()
    server = io.named_pipe(name)
    io.pipe_client(name)
    port = io.port(server, key=5)
    ev = io.event(manual=True, initial=True)
    ov = io.ov(hEvent=ev)
    w.SetLastError(SENTINEL)
    assert w.ConnectNamedPipe(server, ov) is False
    assert w.GetLastError() == w.ERROR_PIPE_CONNECTED == 535
    assert ov.Internal == w.STATUS_PENDING
    assert not io.is_signaled(ev)
    io.no_packet(port)  # §10: no packet either


def test_connect_pending_is_aborted_by_cancel(io) -> None:
    # spec: win32 §10 (CancelIo -> GetOverlappedResult ERROR_OPERATION_ABORTED)
    server = io.named_pipe(io.pipe_name())
    ov = io.ov_event()
    assert w.ConnectNamedPipe(server, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert w.CancelIo(server)
    io.wait_signaled(ov.hEvent)
    assert io.result(server, ov) == (False, w.ERROR_OPERATION_ABORTED, 0)


def test_connect_disconnect_reconnect(io) -> None:
    # spec: win32 §10 (DisconnectNamedPipe lets the instance listen again)
    name = io.pipe_name()
    server = io.named_pipe(name)
    client = io.pipe_client(name)
    assert w.DisconnectNamedPipe(server)
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(client, bytearray(4), 4, n, io.ov_event()) is False
    assert w.GetLastError() == w.ERROR_PIPE_NOT_CONNECTED
    io.close(client)
    ov = io.ov_event()
    assert w.ConnectNamedPipe(server, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    client2 = io.pipe_client(name)
    io.wait_signaled(ov.hEvent)
    assert io.result(server, ov)[0] is True
    _write(io, server, b"again")
    assert io.recv_exact(client2, 5) == b"again"


# ---------------------------------------------------------------------------------------------
# #120: pending writes and the peer
# ---------------------------------------------------------------------------------------------


def test_pending_write_fails_when_peer_closes(io) -> None:
    # spec: win32 #120 [W:k32/pipe.c:test_overlapped_transport] ("close client with pending
    # writes")
    server, client = io.pipe()
    ov, _ = io.fill(server)
    io.close(client)
    io.wait_signaled(ov.hEvent)
    assert io.result(server, ov) == (False, w.ERROR_BROKEN_PIPE, 0)


def test_pending_write_fails_when_server_closes(io) -> None:
    # spec: win32 #120 ("close server with pending writes")
    server, client = io.pipe()
    ov, _ = io.fill(client)
    io.close(server)
    io.wait_signaled(ov.hEvent)
    assert io.result(client, ov) == (False, w.ERROR_BROKEN_PIPE, 0)


def test_pending_writes_fail_after_disconnect(io) -> None:
    # spec: win32 #120 [W:k32/pipe.c:test_overlapped_transport] ("disconnect with pending
    # writes": both ends' pending writes fail ERROR_PIPE_NOT_CONNECTED)
    server, client = io.pipe()
    ov_c, _ = io.fill(client)
    ov_s, _ = io.fill(server)
    assert w.DisconnectNamedPipe(server)
    io.wait_signaled(ov_c.hEvent)
    io.wait_signaled(ov_s.hEvent)
    assert io.result(client, ov_c) == (False, w.ERROR_PIPE_NOT_CONNECTED, 0)
    assert io.result(client, ov_s) == (False, w.ERROR_PIPE_NOT_CONNECTED, 0)


def test_pending_read_fails_when_peer_closes(io) -> None:
    # spec: win32 §7 peer aborts (pending read -> ERROR_BROKEN_PIPE, event set)
    # [W:nt/pipe.c:read_pipe_test] ("disconnect while async read is in progress")
    server, client = io.pipe()
    ov = io.ov_event()
    assert w.ReadFile(server, bytearray(2), 2, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    io.close(client)
    io.wait_signaled(ov.hEvent)
    assert ov.Internal == w.STATUS_PIPE_BROKEN
    assert ov.InternalHigh == 0
    assert io.result(server, ov) == (False, w.ERROR_BROKEN_PIPE, 0)


def test_pending_read_fails_after_disconnect(io) -> None:
    # spec: win32 §7 (DisconnectNamedPipe -> the client's pending ops fail ERROR_PIPE_NOT_CONNECTED)
    server, client = io.pipe()
    ov = io.ov_event()
    assert w.ReadFile(client, bytearray(2), 2, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert w.DisconnectNamedPipe(server)
    io.wait_signaled(ov.hEvent)
    assert io.result(client, ov) == (False, w.ERROR_PIPE_NOT_CONNECTED, 0)


# ---------------------------------------------------------------------------------------------
# pipe states and instances
# ---------------------------------------------------------------------------------------------


def test_read_on_listening_server(io) -> None:
    # spec: win32 §1.7 (STATUS_PIPE_LISTENING -> ERROR_PIPE_LISTENING 536)
    # [W:nt/pipe.c:test_pipe_state] (FILE_PIPE_LISTENING_STATE: NtReadFile fails at once)
    server = io.named_pipe(io.pipe_name())
    ev = io.event(manual=True, initial=True)
    ov = io.ov(hEvent=ev)
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(server, bytearray(4), 4, n, ov) is False
    assert w.GetLastError() == w.ERROR_PIPE_LISTENING
    assert n.value == 0
    assert not io.is_signaled(ev)  # §4.2 step 2: reset even though the start failed


def test_read_on_disconnected_server(io) -> None:
    # spec: win32 §1.7 (STATUS_PIPE_DISCONNECTED -> ERROR_PIPE_NOT_CONNECTED 233)
    # [W:nt/pipe.c:test_pipe_state] (FILE_PIPE_DISCONNECTED_STATE)
    server, client = io.pipe()
    assert w.DisconnectNamedPipe(server)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(server, bytearray(4), 4, None, io.ov_event()) is False
    assert w.GetLastError() == w.ERROR_PIPE_NOT_CONNECTED
    w.SetLastError(SENTINEL)
    assert w.WriteFile(client, b"x", 1, None, io.ov_event()) is False
    assert w.GetLastError() == w.ERROR_PIPE_NOT_CONNECTED


def test_clients_attach_to_instances_in_listening_order(io) -> None:
    # spec: win32 §10 (clients attach to listening instances in the order they started
    # listening) [W:k32/pipe.c:test_multiple_instances]
    name = io.pipe_name()
    first = io.named_pipe(name, instances=w.PIPE_UNLIMITED_INSTANCES)
    second = io.named_pipe(name, instances=w.PIPE_UNLIMITED_INSTANCES)
    ov1, ov2 = io.ov_event(), io.ov_event()
    for server, ov in ((first, ov1), (second, ov2)):
        assert w.ConnectNamedPipe(server, ov) is False
        assert w.GetLastError() == w.ERROR_IO_PENDING
    c1 = io.pipe_client(name)
    io.wait_signaled(ov1.hEvent)
    assert io.stays_nonsignaled(ov2.hEvent)
    c2 = io.pipe_client(name)
    io.wait_signaled(ov2.hEvent)
    _write(io, c1, b"one")
    _write(io, c2, b"two")
    assert io.recv_exact(first, 3) == b"one"
    assert io.recv_exact(second, 3) == b"two"


def test_flush_file_buffers_on_drained_pipe(io) -> None:
    # spec: win32 §7 (FlushFileBuffers on a pipe waits for the reader; with nothing unread it
    # returns at once) [W:k32/pipe.c:test_blocking_rw] (test_flush_sync) [MS:FlushFileBuffers]
    _server, client = io.pipe()
    assert w.FlushFileBuffers(client) is True


def test_flush_file_buffers_on_file_and_bad_handle(io) -> None:
    # spec: win32 [MS:FlushFileBuffers]
    f = io.file(b"abc", overlapped=False)
    assert w.FlushFileBuffers(f) is True
    w.SetLastError(SENTINEL)
    assert w.FlushFileBuffers(0xDEADBEE0) is False
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
