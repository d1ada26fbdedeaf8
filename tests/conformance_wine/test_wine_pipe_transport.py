"""Named-pipe data transport ported from Wine: ``test_blocking_rw``/``test_overlapped_transport``
(the NPFS queue model, peeks included), ``test_CloseHandle``, ``test_ReadFile`` and the
zero-length message rules [W:k32/pipe.c]."""

from __future__ import annotations

from typing import Any

import pytest

import winaio.win32 as w

SENTINEL = 0xDEADBEEF
PIPE_NAME_CASES = ("\\\\.\\PiPe\\", "\\\\.\\pipe\\", "\\\\.\\PIPE\\")


# --------------------------------------------------------------------------------------------
# helpers (Wine's macros of the same names, pipe.c)


def create_overlapped_pipe(io: Any, mode: int) -> tuple[int, int]:
    """Wine's create_overlapped_pipe: (client, server); out 5000, in 6000; the client gets the
    read mode of ``mode``."""
    name = io.pipe_name()
    server = w.CreateNamedPipe(
        name,
        w.FILE_FLAG_OVERLAPPED | w.PIPE_ACCESS_DUPLEX,
        w.PIPE_WAIT | mode,
        1,
        5000,
        6000,
        w.NMPWAIT_USE_DEFAULT_WAIT,
        None,
    )
    io.keep(server)
    assert io.is_signaled(server)
    ov = io.ov_event()
    assert w.ConnectNamedPipe(server, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert not io.is_signaled(server)
    assert not io.is_signaled(ov.hEvent)
    client = io.pipe_client(name)
    read_mode = w.Ref(mode & w.PIPE_READMODE_MESSAGE)
    assert w.SetNamedPipeHandleState(client, read_mode, None, None), w.GetLastError()
    assert io.is_signaled(client)
    assert not io.is_signaled(server)
    overlapped_result(io, server, ov, 0, False)
    return client, server


def peek_pipe(pipe: int, expected_read: int, expected_avail: int, message_length: int) -> None:
    """Wine's test_peek_pipe: PeekNamedPipe's three counts."""
    buf = bytearray(12000)
    n, avail, left = w.Ref(0xDEADBEED), w.Ref(SENTINEL), w.Ref(0xDEADBEED)
    assert w.PeekNamedPipe(pipe, buf, len(buf), n, avail, left), w.GetLastError()
    assert (n.value, avail.value) == (expected_read, expected_avail)
    assert left.value == (message_length - expected_read) & 0xFFFFFFFF
    if expected_read:
        assert w.PeekNamedPipe(pipe, buf, 1, n, avail, left), w.GetLastError()
        assert (n.value, avail.value) == (1, expected_avail)
        assert left.value == (message_length - 1) & 0xFFFFFFFF


def read_sync(io: Any, reader: int, size: int, expected: int, partial: bool) -> bytes:
    """Wine's overlapped_read_sync: a read that completes inside the call."""
    ov = io.ov_event()
    buf = bytearray(max(size, 1))
    n = w.Ref(SENTINEL)
    ok = w.ReadFile(reader, buf, size, n, ov)
    if partial:
        assert not ok and w.GetLastError() == w.ERROR_MORE_DATA
        assert n.value == 0
    else:
        assert ok, w.GetLastError()
        assert n.value == expected
    assert io.result(reader, ov) == (not partial, w.ERROR_MORE_DATA if partial else 0, expected)
    return bytes(buf[:expected])


def read_async(io: Any, reader: int, size: int) -> tuple[Any, bytearray]:
    """Wine's overlapped_read_async: a read that pends."""
    ov = io.ov_event()
    buf = bytearray(max(size, 1))
    n = w.Ref(SENTINEL)
    assert w.ReadFile(reader, buf, size, n, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert n.value == 0
    assert not io.is_signaled(ov.hEvent)
    return ov, buf


def write_sync(io: Any, writer: int, size: int) -> None:
    ov = io.ov_event()
    n = w.Ref(SENTINEL)
    assert w.WriteFile(writer, b"\xaa" * size, size, n, ov), w.GetLastError()
    assert n.value == size
    assert io.result(writer, ov) == (True, 0, size)


def write_async(io: Any, writer: int, size: int) -> Any:
    ov = io.ov_event()
    n = w.Ref(SENTINEL)
    assert w.WriteFile(writer, b"\xaa" * size, size, n, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert n.value == 0
    assert not io.is_signaled(ov.hEvent)
    return ov


def overlapped_result(io: Any, handle: int, ov: Any, expected: int, partial: bool) -> None:
    assert io.is_signaled(ov.hEvent)
    assert io.result(handle, ov) == (not partial, w.ERROR_MORE_DATA if partial else 0, expected)


def overlapped_failure(io: Any, handle: int, ov: Any, error: int) -> None:
    assert io.is_signaled(ov.hEvent)
    assert io.result(handle, ov) == (False, error, 0)


def cancel(io: Any, handle: int, ov: Any) -> None:
    assert w.CancelIoEx(handle, ov), w.GetLastError()
    overlapped_failure(io, handle, ov, w.ERROR_OPERATION_ABORTED)


def flush_async(io: Any, testing: Any, pipe: int, error: int) -> Any:
    """Wine's test_flush_async: FlushFileBuffers in a thread, which must block."""

    def body() -> int:
        ok = w.FlushFileBuffers(pipe)
        if error:
            assert not ok and w.GetLastError() == error, (ok, w.GetLastError())
        else:
            assert ok, w.GetLastError()
        return 0

    worker = io.thread(body)
    testing.wait_until_blocked(worker.tid)
    assert worker.is_running()
    return worker


# --------------------------------------------------------------------------------------------
# test_blocking_rw, both directions, the three type/read-mode combinations


def blocking_rw(
    io: Any, testing: Any, writer: int, reader: int, size: int, msg_mode: bool, msg_read: bool
) -> None:
    # pending read with an event
    read_ov, _ = read_async(io, reader, 1000)
    assert w.FlushFileBuffers(writer)
    peek_pipe(reader, 0, 0, 0)
    # write more than the read wants
    write_sync(io, writer, 4000)
    overlapped_result(io, reader, read_ov, 1000, msg_read)
    peek_pipe(reader, 3000, 3000, 3000 if msg_mode else 0)
    # a pending write (its data is readable at once)
    write_ov = write_async(io, writer, size)
    peek_pipe(reader, 3000 + (0 if msg_mode else size), 3000 + size, 3000 if msg_mode else 0)
    write_ov2 = write_async(io, writer, 1)
    flusher = flush_async(io, testing, writer, 0)
    assert not io.is_signaled(write_ov.hEvent)
    peek_pipe(
        reader, 3000 + (0 if msg_mode else size + 1), 3000 + size + 1, 3000 if msg_mode else 0
    )
    # an empty write does not block, even behind pending ones
    write_sync(io, writer, 0)
    assert not io.is_signaled(write_ov.hEvent)
    assert not io.is_signaled(write_ov2.hEvent)
    peek_pipe(
        reader, 3000 + (0 if msg_mode else size + 1), 3000 + size + 1, 3000 if msg_mode else 0
    )
    # read what is left of the first write
    read_sync(io, reader, 3000, 3000, False)
    overlapped_result(io, writer, write_ov, size, False)
    assert not io.is_signaled(write_ov2.hEvent)
    assert flusher.is_running()
    peek_pipe(reader, size + (0 if msg_mode else 1), size + 1, size if msg_mode else 0)
    # read one byte so that the next write fits the buffer
    read_sync(io, reader, 1, 1, msg_read)
    overlapped_result(io, writer, write_ov2, 1, False)
    peek_pipe(reader, size + (-1 if msg_mode else 0), size, size - 1 if msg_mode else 0)
    # read the whole buffer
    read_sync(io, reader, size, size - msg_read, False)
    peek_pipe(reader, 1 if msg_read else 0, 1 if msg_read else 0, 1 if msg_read else 0)
    if msg_read:
        read_sync(io, reader, 1000, 1, False)
        peek_pipe(reader, 0, 0, 0)
    if msg_mode:  # the empty message is still queued
        read_sync(io, reader, 1000, 0, False)
        peek_pipe(reader, 0, 0, 0)
    assert flusher.join() == 0
    # the pipe is empty: the next reads block; one byte completes both
    read_ov, _ = read_async(io, reader, 0)
    read_ov2, _ = read_async(io, reader, 1000)
    write_sync(io, writer, 1)
    overlapped_result(io, reader, read_ov, 0, msg_read)
    overlapped_result(io, reader, read_ov2, 1, False)
    peek_pipe(reader, 0, 0, 0)
    # a message larger than the buffer
    write_ov = write_async(io, writer, size + 2000)
    peek_pipe(reader, size + 2000, size + 2000, size + 2000 if msg_mode else 0)
    read_sync(io, reader, 1999, 1999, msg_read)
    assert not io.is_signaled(write_ov.hEvent)
    peek_pipe(reader, size + 1, size + 1, size + 1 if msg_mode else 0)
    read_sync(io, reader, 1, 1, msg_read)
    overlapped_result(io, writer, write_ov, size + 2000, False)
    peek_pipe(reader, size, size, size if msg_mode else 0)
    read_sync(io, reader, size + 1, size, False)
    peek_pipe(reader, 0, 0, 0)
    # an empty message passes on its own
    write_sync(io, writer, 0)
    peek_pipe(reader, 0, 0, 0)
    if msg_mode:
        read_sync(io, reader, 1, 0, False)
    # a zero-length write wakes one read in message mode only
    assert w.FlushFileBuffers(writer)
    read_ov, _ = read_async(io, reader, 0)
    read_ov2, _ = read_async(io, reader, 1)
    write_sync(io, writer, 0)
    if msg_mode:
        overlapped_result(io, reader, read_ov, 0, False)
    else:
        assert not io.is_signaled(read_ov.hEvent)
    assert not io.is_signaled(read_ov2.hEvent)
    write_sync(io, writer, 1)
    overlapped_result(io, reader, read_ov2, 1, False)
    if not msg_mode:  # the zero-byte read completes with that byte, consuming nothing
        overlapped_result(io, reader, read_ov, 0, False)
    write_sync(io, writer, 20)
    peek_pipe(reader, 20, 20, 20 if msg_mode else 0)
    write_sync(io, writer, 15)
    peek_pipe(reader, 20 if msg_mode else 35, 35, 20 if msg_mode else 0)
    read_sync(io, reader, 10, 10, msg_read)
    peek_pipe(reader, 10 if msg_mode else 25, 25, 10 if msg_mode else 0)
    read_sync(io, reader, 10, 10, False)
    peek_pipe(reader, 15, 15, 15 if msg_mode else 0)
    read_sync(io, reader, 15, 15, False)
    # cancel the second of two pending reads
    read_ov, _ = read_async(io, reader, 1)
    read_ov2, _ = read_async(io, reader, 1)
    cancel(io, reader, read_ov2)
    assert not io.is_signaled(read_ov.hEvent)
    write_sync(io, writer, 1)
    overlapped_result(io, reader, read_ov, 1, False)
    # cancelling twice: ERROR_NOT_FOUND
    read_ov2, _ = read_async(io, reader, 1)
    assert w.CancelIoEx(reader, read_ov2)
    w.SetLastError(SENTINEL)
    assert not w.CancelIoEx(reader, read_ov2)
    assert w.GetLastError() == w.ERROR_NOT_FOUND
    overlapped_failure(io, reader, read_ov2, w.ERROR_OPERATION_ABORTED)
    # two pending writes, cancel the first: the reader sees the second only
    write_ov = write_async(io, writer, size + 2000)
    write_ov2 = write_async(io, writer, 1)
    peek_pipe(
        reader, size + 2000 + (0 if msg_mode else 1), size + 2001, size + 2000 if msg_mode else 0
    )
    cancel(io, writer, write_ov)
    peek_pipe(reader, 1, 1, 1 if msg_mode else 0)
    read_sync(io, reader, 1000, 1, False)
    overlapped_result(io, writer, write_ov2, 1, False)
    peek_pipe(reader, 0, 0, 0)
    # the same after a partial read of the first write
    write_ov = write_async(io, writer, size + 2000)
    write_ov2 = write_async(io, writer, 1)
    read_sync(io, reader, 10, 10, msg_read)
    assert not io.is_signaled(write_ov.hEvent)
    cancel(io, writer, write_ov)
    peek_pipe(reader, 1, 1, 1 if msg_mode else 0)
    read_sync(io, reader, 1000, 1, False)
    overlapped_result(io, writer, write_ov2, 1, False)
    peek_pipe(reader, 0, 0, 0)
    # cancelling the only pending write releases a waiting flush
    write_ov = write_async(io, writer, size + 2000)
    flusher = flush_async(io, testing, writer, 0)
    cancel(io, writer, write_ov)
    peek_pipe(reader, 0, 0, 0)
    assert flusher.join() == 0


TRANSPORT_MODES = [
    pytest.param(True, False, id="message-pipe-byte-read"),
    pytest.param(True, True, id="message-pipe-message-read"),
    pytest.param(False, False, id="byte-pipe"),
]


@pytest.mark.parametrize(("msg_mode", "msg_read"), TRANSPORT_MODES)
def test_overlapped_transport(io, testing, msg_mode: bool, msg_read: bool) -> None:
    # [W:k32/pipe.c:test_overlapped_transport] (test_blocking_rw both ways)
    flags = (w.PIPE_TYPE_MESSAGE if msg_mode else w.PIPE_TYPE_BYTE) | (
        w.PIPE_READMODE_MESSAGE if msg_read else w.PIPE_READMODE_BYTE
    )
    client, server = create_overlapped_pipe(io, flags)
    blocking_rw(io, testing, server, client, 5000, msg_mode, msg_read)
    blocking_rw(io, testing, client, server, 6000, msg_mode, msg_read)


@pytest.mark.parametrize(("msg_mode", "msg_read"), TRANSPORT_MODES)
def test_close_and_disconnect_with_pending_writes(io, testing, msg_mode, msg_read) -> None:
    # [W:k32/pipe.c:test_overlapped_transport] (close client/server, disconnect, pending writes)
    flags = (w.PIPE_TYPE_MESSAGE if msg_mode else w.PIPE_TYPE_BYTE) | (
        w.PIPE_READMODE_MESSAGE if msg_read else w.PIPE_READMODE_BYTE
    )
    client, server = create_overlapped_pipe(io, flags)
    ov = write_async(io, server, 7000)
    flusher = flush_async(io, testing, server, w.ERROR_BROKEN_PIPE)
    io.close(client)
    overlapped_failure(io, server, ov, w.ERROR_BROKEN_PIPE)
    flusher.join()
    io.close(server)

    client, server = create_overlapped_pipe(io, flags)
    ov = write_async(io, client, 7000)
    flusher = flush_async(io, testing, client, w.ERROR_BROKEN_PIPE)
    io.close(server)
    overlapped_failure(io, client, ov, w.ERROR_BROKEN_PIPE)
    flusher.join()
    io.close(client)

    client, server = create_overlapped_pipe(io, flags)
    ov = write_async(io, client, 7000)
    ov2 = write_async(io, server, 7000)
    flusher = flush_async(io, testing, client, w.ERROR_PIPE_NOT_CONNECTED)
    assert w.DisconnectNamedPipe(server), w.GetLastError()
    overlapped_failure(io, client, ov, w.ERROR_PIPE_NOT_CONNECTED)
    overlapped_failure(io, client, ov2, w.ERROR_PIPE_NOT_CONNECTED)
    flusher.join()


# --------------------------------------------------------------------------------------------
# test_CloseHandle: the peer closes, with data or an empty message still queued


def _sync_message_pipe(io: Any) -> tuple[int, int]:
    name = io.pipe_name()
    server = io.keep(
        w.CreateNamedPipe(
            name,
            w.PIPE_ACCESS_DUPLEX,
            w.PIPE_TYPE_MESSAGE | w.PIPE_READMODE_MESSAGE | w.PIPE_WAIT,
            1,
            1024,
            1024,
            w.NMPWAIT_USE_DEFAULT_WAIT,
            None,
        )
    )
    client = io.pipe_client(name, overlapped=False)
    return server, client


def _sync_read(handle: int, size: int) -> tuple[bool, int, int]:
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    ok = w.ReadFile(handle, bytearray(max(size, 1)), size, n, None)
    return bool(ok), (0 if ok else w.GetLastError()), n.value


def _available(handle: int) -> int:
    avail = w.Ref(SENTINEL)
    assert w.PeekNamedPipe(handle, None, 0, None, avail, None), w.GetLastError()
    return int(avail.value)


def _check_broken(io: Any, handle: int) -> None:
    """After the peer closed and everything was read: reads, peeks and writes all fail."""
    state = w.Ref(SENTINEL)
    assert w.GetNamedPipeHandleState(handle, state, None, None, None, None, 0), w.GetLastError()
    mode = w.Ref(w.PIPE_READMODE_MESSAGE | w.PIPE_WAIT)
    assert w.SetNamedPipeHandleState(handle, mode, None, None), w.GetLastError()
    assert _sync_read(handle, 0)[:2] == (False, w.ERROR_BROKEN_PIPE)
    n = w.Ref(SENTINEL)
    assert not w.PeekNamedPipe(handle, None, 0, None, n, None)
    assert w.GetLastError() == w.ERROR_BROKEN_PIPE
    assert n.value == SENTINEL  # untouched on failure
    assert not w.WriteFile(handle, b"Hello World\0", 12, w.Ref(0), None)
    assert w.GetLastError() == w.ERROR_NO_DATA


@pytest.mark.parametrize("closer", ["server", "client"])
def test_close_handle_with_data_queued(io, closer: str) -> None:
    # [W:k32/pipe.c:test_CloseHandle]
    server, client = _sync_message_pipe(io)
    writer, reader = (server, client) if closer == "server" else (client, server)
    data = b"Hello World\0"
    n = w.Ref(SENTINEL)
    assert w.WriteFile(writer, data, len(data), n, None) and n.value == len(data)
    assert _available(reader) == len(data)
    io.close(writer)
    # a zero-byte read succeeds (byte read mode) or reports the waiting message (message mode)
    ok, err, count = _sync_read(reader, 0)
    assert (ok or err == w.ERROR_MORE_DATA) and count == 0
    assert _available(reader) == len(data)
    assert _sync_read(reader, 32) == (True, 0, len(data))
    _check_broken(io, reader)


@pytest.mark.parametrize("closer", ["server", "client"])
def test_close_handle_with_empty_message_queued(io, closer: str) -> None:
    # [W:k32/pipe.c:test_CloseHandle] (a zero-length message survives its writer's close)
    server, client = _sync_message_pipe(io)
    writer, reader = (server, client) if closer == "server" else (client, server)
    n = w.Ref(SENTINEL)
    assert w.WriteFile(writer, b"x", 0, n, None) and n.value == 0
    io.close(writer)
    assert _sync_read(reader, 32) == (True, 0, 0)
    _check_broken(io, reader)


# --------------------------------------------------------------------------------------------
# test_ReadFile: synchronous handle + OVERLAPPED


def test_sync_handle_with_overlapped_more_data_counts(io) -> None:
    # [W:k32/pipe.c:test_ReadFile]
    server, client = _sync_message_pipe(io)
    n = w.Ref(SENTINEL)
    assert w.WriteFile(client, bytes(512), 512, n, None) and n.value == 512
    buf = bytearray(512)
    assert not w.ReadFile(server, buf, 1, n, None)
    assert w.GetLastError() == w.ERROR_MORE_DATA
    assert n.value == 1  # no OVERLAPPED: the partial count
    ov = w.OVERLAPPED()
    assert not w.ReadFile(server, buf, 1, n, ov)
    assert w.GetLastError() == w.ERROR_MORE_DATA
    assert n.value == 0  # with an OVERLAPPED: 0, the count is in InternalHigh
    assert ov.Internal == w.STATUS_BUFFER_OVERFLOW
    assert ov.InternalHigh == 1
    assert w.DisconnectNamedPipe(server)
    for call, buffer in ((w.ReadFile, buf), (w.WriteFile, bytes(1))):
        ov = w.OVERLAPPED()
        ov.InternalHigh = SENTINEL
        n = w.Ref(SENTINEL)
        assert not call(server, buffer, 1, n, ov)
        assert w.GetLastError() == w.ERROR_PIPE_NOT_CONNECTED
        assert n.value == 0
        assert ov.Internal == w.STATUS_PENDING  # failed at once: only Internal was written
        assert ov.InternalHigh == SENTINEL


# --------------------------------------------------------------------------------------------
# zero-length reads and writes in message mode


def test_zero_byte_read_in_message_read_mode_reports_more_data(io) -> None:
    # [W:k32/pipe.c:test_CloseHandle] (Win8+: ReadFile(0) of a waiting message is
    # ERROR_MORE_DATA and consumes nothing) [W:k32/pipe.c:test_blocking_rw]
    server, client = io.pipe(message=True)
    io.send_all(client, b"abc")
    for _ in range(2):
        n = w.Ref(SENTINEL)
        ov = io.ov_event()
        assert not w.ReadFile(server, bytearray(1), 0, n, ov)
        assert w.GetLastError() == w.ERROR_MORE_DATA
        assert io.result(server, ov) == (False, w.ERROR_MORE_DATA, 0)
    assert io.recv_exact(server, 3) == b"abc"


def test_empty_message_is_a_message(io) -> None:
    # [W:k32/pipe.c:test_blocking_rw] (an empty message is read on its own, also in byte read
    # mode, and PeekNamedPipe shows it as 0 bytes)
    for msg_read in (True, False):
        name = io.pipe_name()
        mode = w.PIPE_TYPE_MESSAGE | (w.PIPE_READMODE_MESSAGE if msg_read else 0)
        server = io.keep(
            w.CreateNamedPipe(
                name, w.PIPE_ACCESS_DUPLEX | w.FILE_FLAG_OVERLAPPED, mode, 1, 4096, 4096, 0, None
            )
        )
        client = io.pipe_client(name)
        write_sync(io, client, 3)
        write_sync(io, client, 0)
        write_sync(io, client, 2)
        read_sync(io, server, 3, 3, False)
        peek_pipe(server, 0, 2, 0)
        if msg_read:
            read_sync(io, server, 10, 0, False)  # the empty message, on its own
            read_sync(io, server, 10, 2, False)
        else:
            read_sync(io, server, 10, 2, False)  # byte reads skip it when data follows
        # an empty message alone at the head is read as 0 bytes in both modes
        read_ov, _ = read_async(io, server, 10)
        write_sync(io, client, 0)  # wakes the pending read with 0 bytes
        overlapped_result(io, server, read_ov, 0, False)
        write_sync(io, client, 0)
        read_sync(io, server, 10, 0, False)
        peek_pipe(server, 0, 0, 0)


def test_byte_pipe_zero_length_write_creates_nothing(io) -> None:
    # [W:k32/pipe.c:test_blocking_rw] ("0 length write wakes one read in msg mode" only)
    server, client = io.pipe()
    read_ov, _ = read_async(io, server, 0)
    write_sync(io, client, 0)
    assert io.stays_nonsignaled(read_ov.hEvent)
    peek_pipe(server, 0, 0, 0)
    write_sync(io, client, 1)
    overlapped_result(io, server, read_ov, 0, False)
    peek_pipe(server, 1, 1, 0)


@pytest.mark.parametrize("prefix", PIPE_NAME_CASES)
def test_pipe_names_are_not_case_sensitive(io, prefix: str) -> None:
    # [W:k32/pipe.c:test_CreateNamedPipe] (PIPENAME "\\\\.\\PiPe\\tests_pipe.c")
    # [W:nt/pipe.c:create_pipe] (OBJ_CASE_INSENSITIVE)
    base = io.name("CaseName")
    server = io.named_pipe(prefix + base)
    client = io.pipe_client("\\\\.\\pipe\\" + base.upper())
    io.send_all(client, b"hi")
    assert io.recv_exact(server, 2) == b"hi"
    w.SetLastError(SENTINEL)
    h = w.CreateNamedPipe(
        "\\\\.\\PIPE\\" + base.lower(), w.PIPE_ACCESS_INBOUND, 0, 2, 0, 0, 0, None
    )
    assert h == w.INVALID_HANDLE_VALUE  # the same pipe: the access must match
    assert w.GetLastError() == w.ERROR_ACCESS_DENIED


def test_pipe_name_with_special_characters(io) -> None:
    # [W:k32/pipe.c:test_CreateNamedPipe] ("\\\\.\\pipe\\a<>*?|\"/b")
    name = '\\\\.\\pipe\\a<>*?|"/b' + io.name()
    server = io.keep(w.CreateNamedPipe(name, w.PIPE_ACCESS_DUPLEX, 0, 1, 1024, 1024, 0, None))
    h = w.CreateFile(name, 0, 0, None, w.OPEN_EXISTING, 0, 0)
    assert h != w.INVALID_HANDLE_VALUE, w.GetLastError()
    io.close(h)
    assert server
