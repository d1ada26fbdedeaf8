"""Named-pipe states ported from Wine: DisconnectNamedPipe, PeekNamedPipe/TransactNamedPipe/
FlushFileBuffers/ReadFile/WriteFile/ConnectNamedPipe in every state, which instance a client
attaches to, PIPE_NOWAIT [W:k32/pipe.c] [W:nt/pipe.c]."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import winaio.win32 as w

SENTINEL = 0xDEADBEEF
OBUF = b"Bit Bucket\0"


def _sync_pipe(io: Any, name: str, mode: int = 0, instances: int = 1) -> int:
    h = w.CreateNamedPipe(name, w.PIPE_ACCESS_DUPLEX, mode, instances, 1024, 1024, 0, None)
    return io.keep(h)


def _fails(call: Callable[[], Any], error: int) -> None:
    w.SetLastError(SENTINEL)
    assert not call()
    assert w.GetLastError() == error, (w.GetLastError(), error)


def test_disconnect_named_pipe(io) -> None:
    # [W:k32/pipe.c:test_DisconnectNamedPipe]
    name = io.pipe_name()
    hnp = _sync_pipe(io, name)
    n = w.Ref(0)
    _fails(lambda: w.WriteFile(hnp, OBUF, len(OBUF), n, None), w.ERROR_PIPE_LISTENING)
    _fails(lambda: w.ReadFile(hnp, bytearray(32), 32, n, None), w.ERROR_PIPE_LISTENING)
    client = io.pipe_client(name, overlapped=False)
    assert w.WriteFile(client, OBUF, len(OBUF), n, None) and n.value == len(OBUF)
    assert w.DisconnectNamedPipe(hnp)  # with a message waiting
    for handle in (client, hnp):
        _fails(
            lambda h=handle: w.WriteFile(h, OBUF, len(OBUF), n, None), w.ERROR_PIPE_NOT_CONNECTED
        )
        _fails(
            lambda h=handle: w.ReadFile(h, bytearray(32), 32, n, None), w.ERROR_PIPE_NOT_CONNECTED
        )
    _fails(lambda: w.DisconnectNamedPipe(hnp), w.ERROR_PIPE_NOT_CONNECTED)
    # the failed synchronous I/O left the client's file object nonsignaled
    assert w.WaitForSingleObject(client, 0) == w.WAIT_TIMEOUT
    avail = w.Ref(SENTINEL)
    _fails(lambda: w.PeekNamedPipe(client, None, 0, None, avail, None), w.ERROR_PIPE_NOT_CONNECTED)
    _fails(lambda: w.PeekNamedPipe(hnp, None, 0, None, avail, None), w.ERROR_BAD_PIPE)
    assert avail.value == SENTINEL


def test_disconnect_named_pipe_on_listening_instance(io) -> None:
    # [W:nt/pipe.c:pipe_for_each_state] via Wine's server/named_pipe.c (FSCTL_PIPE_DISCONNECT
    # in FILE_PIPE_LISTENING_STATE -> STATUS_PIPE_LISTENING); a pending ConnectNamedPipe stays
    server = io.named_pipe(io.pipe_name())
    ov = io.ov_event()
    assert not w.ConnectNamedPipe(server, ov) and w.GetLastError() == w.ERROR_IO_PENDING
    _fails(lambda: w.DisconnectNamedPipe(server), w.ERROR_PIPE_LISTENING)
    assert io.stays_nonsignaled(ov.hEvent)
    _fails(lambda: w.DisconnectNamedPipe(0), w.ERROR_INVALID_HANDLE)


def test_disconnect_named_pipe_on_client_is_invalid_function(io) -> None:
    # [MS:DisconnectNamedPipe] (server end only); ConnectNamedPipe likewise
    # [W:k32/pipe.c:test_CreateNamedPipe]
    _server, client = io.pipe()
    _fails(lambda: w.DisconnectNamedPipe(client), w.ERROR_INVALID_FUNCTION)
    _fails(lambda: w.ConnectNamedPipe(client, None), w.ERROR_INVALID_FUNCTION)


@pytest.mark.parametrize("message", [False, True], ids=["byte", "message"])
def test_peek_named_pipe_counts(io, message: bool) -> None:
    # [W:k32/pipe.c:test_CreateNamedPipe] (PeekNamedPipe: one message at a time on message
    # pipes; "left" is the message's length minus what was copied, as a DWORD)
    name = io.pipe_name()
    mode = (w.PIPE_TYPE_MESSAGE | w.PIPE_READMODE_MESSAGE) if message else 0
    hnp = _sync_pipe(io, name, mode)
    avail = w.Ref(0)
    _fails(lambda: w.PeekNamedPipe(hnp, None, 0, None, avail, None), w.ERROR_BAD_PIPE)
    client = io.pipe_client(name, overlapped=False)
    obuf2 = b"More bits\0"
    n, left = w.Ref(0), w.Ref(0)
    assert w.WriteFile(hnp, OBUF, len(OBUF), n, None)
    assert w.PeekNamedPipe(client, None, 0, None, avail, left)
    assert avail.value == len(OBUF)
    assert left.value == (len(OBUF) if message else 0)
    assert w.ReadFile(client, bytearray(32), 32, n, None) and n.value == len(OBUF)
    assert w.WriteFile(client, obuf2, len(obuf2), n, None)
    assert w.PeekNamedPipe(hnp, b"", 0, None, avail, left)  # a buffer of size 0 is fine
    assert (avail.value, left.value) == (len(obuf2), len(obuf2) if message else 0)
    ibuf = bytearray(32)
    assert w.PeekNamedPipe(hnp, ibuf, 4, n, avail, left)
    assert (n.value, avail.value) == (4, len(obuf2))
    assert left.value == ((len(obuf2) - 4) if message else (-4 & 0xFFFFFFFF))
    assert bytes(ibuf[:4]) == obuf2[:4]
    assert w.ReadFile(hnp, ibuf, 32, n, None) and n.value == len(obuf2)
    # two writes: message pipes peek the first only
    assert w.WriteFile(hnp, OBUF, len(OBUF), n, None)
    assert w.WriteFile(hnp, obuf2, len(obuf2), n, None)
    assert w.PeekNamedPipe(client, ibuf, len(ibuf), n, avail, left)
    total = len(OBUF) + len(obuf2)
    assert avail.value == total
    if message:
        assert (n.value, left.value) == (len(OBUF), 0)
    else:
        assert (n.value, left.value) == (total, -total & 0xFFFFFFFF)
        assert bytes(ibuf[:total]) == OBUF + obuf2


def _pair_in_state(io: Any, state: str) -> tuple[int | None, int]:
    """(server, client) with the server (client for "client-closing"/"client-disconnected")
    in ``state``, like Wine's pipe_for_each_state."""
    name = io.pipe_name()
    server = io.named_pipe(name, message=True)
    if state == "listening":
        return server, 0
    client = io.pipe_client(name, message=True)
    if state == "connected":
        return server, client
    if state == "closing":
        io.close(client)
        return server, 0
    if state == "disconnected":
        assert w.DisconnectNamedPipe(server)
        return server, client
    if state == "client-closing":
        io.close(server)
        return None, client
    raise AssertionError(state)


# (state, end) -> (Peek, Transact, Flush, Read, Write) expected Win32 errors (0 = success)
# [W:nt/pipe.c:test_pipe_state] (no data queued)
STATE_TABLE = {
    ("listening", "server"): (
        w.ERROR_BAD_PIPE,
        w.ERROR_BAD_PIPE,
        0,
        w.ERROR_PIPE_LISTENING,
        w.ERROR_PIPE_LISTENING,
    ),
    ("closing", "server"): (
        w.ERROR_BROKEN_PIPE,
        w.ERROR_BAD_PIPE,
        0,
        w.ERROR_BROKEN_PIPE,
        w.ERROR_NO_DATA,
    ),
    ("disconnected", "server"): (
        w.ERROR_BAD_PIPE,
        w.ERROR_BAD_PIPE,
        0,
        w.ERROR_PIPE_NOT_CONNECTED,
        w.ERROR_PIPE_NOT_CONNECTED,
    ),
    ("disconnected", "client"): (
        w.ERROR_PIPE_NOT_CONNECTED,
        w.ERROR_PIPE_NOT_CONNECTED,
        w.ERROR_PIPE_NOT_CONNECTED,
        w.ERROR_PIPE_NOT_CONNECTED,
        w.ERROR_PIPE_NOT_CONNECTED,
    ),
    ("client-closing", "client"): (
        w.ERROR_BROKEN_PIPE,
        w.ERROR_BAD_PIPE,
        0,
        w.ERROR_BROKEN_PIPE,
        w.ERROR_NO_DATA,
    ),
}


@pytest.mark.parametrize(("state", "end"), list(STATE_TABLE), ids=lambda v: str(v))
def test_pipe_state(io, state: str, end: str) -> None:
    # [W:nt/pipe.c:test_pipe_state] through the Win32 calls: PeekNamedPipe (FSCTL_PIPE_PEEK),
    # TransactNamedPipe (FSCTL_PIPE_TRANSCEIVE), FlushFileBuffers, ReadFile, WriteFile
    server, client = _pair_in_state(io, state)
    handle = server if end == "server" else client
    assert handle
    peek, transact, flush, read, write = STATE_TABLE[(state, end)]
    avail = w.Ref(SENTINEL)
    _fails(lambda: w.PeekNamedPipe(handle, None, 0, None, avail, None), peek)
    assert avail.value == SENTINEL
    _fails(
        lambda: w.TransactNamedPipe(handle, b"t", 1, bytearray(1), 1, None, io.ov_event()), transact
    )
    if flush:
        _fails(lambda: w.FlushFileBuffers(handle), flush)
    else:
        assert w.FlushFileBuffers(handle), w.GetLastError()
    _fails(lambda: w.ReadFile(handle, bytearray(1), 1, None, io.ov_event()), read)
    _fails(lambda: w.WriteFile(handle, b"t", 1, None, io.ov_event()), write)
    if end == "server" and state == "closing":
        _fails(lambda: w.ConnectNamedPipe(handle, io.ov_event()), w.ERROR_NO_DATA)


def test_pipe_state_with_data(io) -> None:
    # [W:nt/pipe.c:test_pipe_with_data_state] (closing with data: reads still succeed, writes
    # fail ERROR_NO_DATA; after a disconnect the data is gone)
    name = io.pipe_name()
    server = io.named_pipe(name)
    client = io.pipe_client(name)
    io.send_all(client, bytes(10))
    io.send_all(server, bytes(10))
    io.close(server)
    _fails(lambda: w.WriteFile(client, b"t", 1, None, io.ov_event()), w.ERROR_NO_DATA)
    assert io.recv_exact(client, 10) == bytes(10)
    server = io.named_pipe(name)
    client = io.pipe_client(name)
    io.send_all(client, bytes(10))
    assert w.DisconnectNamedPipe(server)
    _fails(
        lambda: w.ReadFile(server, bytearray(1), 1, None, io.ov_event()), w.ERROR_PIPE_NOT_CONNECTED
    )


def test_multiple_instances(io) -> None:
    # [W:k32/pipe.c:test_multiple_instances]: a client takes the first instance of the
    # listener FIFO (creation order, then the order instances listen again); a pending
    # ConnectNamedPipe does not move an instance forward and may be issued twice
    name = io.pipe_name()
    server = [
        io.keep(
            w.CreateNamedPipe(
                name,
                w.PIPE_ACCESS_DUPLEX | w.FILE_FLAG_OVERLAPPED,
                w.PIPE_READMODE_BYTE | w.PIPE_WAIT,
                4,
                1024,
                1024,
                0,
                None,
            )
        )
        for _ in range(4)
    ]

    def connect(i: int, error: int) -> Any:
        ov = w.OVERLAPPED()
        w.SetLastError(SENTINEL)
        assert w.ConnectNamedPipe(server[i], ov) is False
        assert w.GetLastError() == error, (i, w.GetLastError())
        return ov

    def client() -> int:
        return io.pipe_client(name, overlapped=False)

    c = client()
    first_pending = connect(2, w.ERROR_IO_PENDING)
    connect(0, w.ERROR_PIPE_CONNECTED)
    io.close(c)
    c = client()  # server[1], although server[2] has a pending ConnectNamedPipe
    second_pending = connect(2, w.ERROR_IO_PENDING)
    connect(1, w.ERROR_PIPE_CONNECTED)
    io.close(c)
    c = client()
    connect(2, w.ERROR_PIPE_CONNECTED)
    assert first_pending.Internal == second_pending.Internal == 0  # both completed
    io.close(c)
    assert w.DisconnectNamedPipe(server[0]) and w.DisconnectNamedPipe(server[2])
    connect(2, w.ERROR_IO_PENDING)
    connect(0, w.ERROR_IO_PENDING)
    c = client()
    connect(3, w.ERROR_PIPE_CONNECTED)
    io.close(c)
    c = client()  # server[2]: it started listening first
    connect(2, w.ERROR_PIPE_CONNECTED)
    connect(0, w.ERROR_IO_PENDING)
    io.close(c)
    c = client()
    connect(0, w.ERROR_PIPE_CONNECTED)
    io.close(c)
    assert w.DisconnectNamedPipe(server[0])
    w.SetLastError(SENTINEL)
    h = w.CreateFile(name, w.GENERIC_READ | w.GENERIC_WRITE, 0, None, w.OPEN_EXISTING, 0, 0)
    assert h == w.INVALID_HANDLE_VALUE and w.GetLastError() == w.ERROR_PIPE_BUSY


def test_second_client_and_reconnect_are_busy(io) -> None:
    # [W:k32/pipe.c:test_CreateNamedPipe] ("picky conformance tests": no second client until
    # DisconnectNamedPipe + ConnectNamedPipe or a new instance)
    name = io.pipe_name()
    hnp = _sync_pipe(io, name)
    client = io.pipe_client(name, overlapped=False)

    def open_client() -> int:
        return w.CreateFile(name, w.GENERIC_READ | w.GENERIC_WRITE, 0, None, w.OPEN_EXISTING, 0, 0)

    for _ in range(2):
        w.SetLastError(SENTINEL)
        assert open_client() == w.INVALID_HANDLE_VALUE
        assert w.GetLastError() == w.ERROR_PIPE_BUSY
        if client:
            io.close(client)
            client = 0
    assert w.DisconnectNamedPipe(hnp)
    w.SetLastError(SENTINEL)
    assert open_client() == w.INVALID_HANDLE_VALUE
    assert w.GetLastError() == w.ERROR_PIPE_BUSY


@pytest.mark.parametrize(
    "pipe_type", [w.PIPE_TYPE_BYTE, w.PIPE_TYPE_MESSAGE], ids=["byte", "message"]
)
def test_nowait(io, pipe_type: int) -> None:
    # [W:k32/pipe.c:test_nowait] (Windows' results, including the todo_wine message case)
    name = io.pipe_name()
    mode = pipe_type | w.PIPE_NOWAIT
    read_end = io.keep(
        w.CreateNamedPipe(
            name, w.FILE_FLAG_OVERLAPPED | w.PIPE_ACCESS_DUPLEX, mode, 1, 512, 512, 0, None
        )
    )
    write_end = io.keep(w.CreateFile(name, w.GENERIC_WRITE, 0, None, w.OPEN_EXISTING, 0, 0))
    buf = bytearray(32768)
    n = w.Ref(SENTINEL)
    _fails(lambda: w.ReadFile(read_end, buf, len(buf), n, io.ov_event()), w.ERROR_NO_DATA)
    assert w.WriteFile(write_end, b"bits\0", 5, n, None) and n.value == 5
    assert w.ReadFile(read_end, buf, len(buf), n, io.ov_event()) and n.value == 5
    io.close(write_end)
    io.close(read_end)

    write_end = io.keep(
        w.CreateNamedPipe(
            name, w.FILE_FLAG_OVERLAPPED | w.PIPE_ACCESS_DUPLEX, mode, 1, 512, 512, 0, None
        )
    )
    read_end = io.keep(
        w.CreateFile(name, w.GENERIC_READ, 0, None, w.OPEN_EXISTING, w.FILE_FLAG_OVERLAPPED, 0)
    )
    ov = io.ov_event()

    def write(size: int) -> int:
        count = w.Ref(SENTINEL)
        assert w.WriteFile(write_end, bytes(size), size, count, ov), w.GetLastError()
        return int(count.value)

    def pending_read(size: int) -> Any:
        rov = io.ov_event()
        assert not w.ReadFile(read_end, buf, size, w.Ref(0), rov)
        assert w.GetLastError() == w.ERROR_IO_PENDING
        return rov

    assert write(513) == 0  # no room and no reader: nothing written, still TRUE
    rov = pending_read(len(buf))
    assert write(5) == 5
    assert io.result(read_end, rov) == (True, 0, 5)
    rov = pending_read(len(buf))
    assert write(513) == 513
    assert io.result(read_end, rov) == (True, 0, 513)
    rov = pending_read(1)
    assert write(513) == 513  # 1 byte to the reader, 512 fit the buffer
    assert io.result(read_end, rov) == (True, 0, 1)
    assert w.ReadFile(read_end, buf, len(buf), n, io.ov_event()) and n.value == 512
    rov = pending_read(1)
    if pipe_type == w.PIPE_TYPE_MESSAGE:
        assert write(514) == 0  # a message goes whole or not at all; the read waits on
        assert io.result(read_end, rov) == (False, w.ERROR_IO_INCOMPLETE, SENTINEL)
        assert w.CancelIo(read_end)
    else:
        assert write(514) == 1  # what the reader took; the rest is dropped
        assert io.result(read_end, rov) == (True, 0, 1)
    assert write(512) == 512
    io.close(write_end)
    io.close(read_end)

    # ConnectNamedPipe on a PIPE_NOWAIT instance never pends
    server = io.keep(
        w.CreateNamedPipe(
            name, w.FILE_FLAG_OVERLAPPED | w.PIPE_ACCESS_DUPLEX, mode, 1, 512, 512, 0, None
        )
    )
    _fails(lambda: w.ConnectNamedPipe(server, ov), w.ERROR_PIPE_LISTENING)
    io.close(io.pipe_client(name, overlapped=False))
    _fails(lambda: w.ConnectNamedPipe(server, ov), w.ERROR_NO_DATA)
    assert w.DisconnectNamedPipe(server)
    _fails(lambda: w.ConnectNamedPipe(server, ov), w.ERROR_PIPE_LISTENING)
    client = io.pipe_client(name, overlapped=False)  # the failed call still made it listen
    _fails(lambda: w.ConnectNamedPipe(server, ov), w.ERROR_PIPE_CONNECTED)
    assert client
