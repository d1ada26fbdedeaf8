"""Backend contract: STREAM operations (pipes, socketpairs, loopback TCP).

What each test checks, on every backend:
- a read with no data pends, and completes with the data written later (one ``complete``
  call from a backend thread);
- ordering: two pending reads on one pipe/socket complete in issue order (spec #66), and two
  pending writes on a full socket put their bytes on the wire in issue order;
- reads and writes on one socket wait independently (a pending read does not hold up a
  write that becomes possible, and the reverse);
- end of stream: a pipe read whose writer goes away completes STATUS_PIPE_BROKEN; a pending
  pipe write whose reader goes away completes STATUS_PIPE_BROKEN; a socket read sees a
  graceful close as success with 0 bytes and an RST as STATUS_CONNECTION_RESET;
- AcceptEx (into a pre-created socket, with and without first data) and ConnectEx on
  loopback, including the accept that must move on to wait for data on the new socket.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest

from winaio.codes import NtStatus

SUCCESS = int(NtStatus.STATUS_SUCCESS)
PIPE_BROKEN = int(NtStatus.STATUS_PIPE_BROKEN)
CONNECTION_RESET = int(NtStatus.STATUS_CONNECTION_RESET)
SHORT = 0.1


def _by_backend(req: Any) -> None:
    assert req.pending
    assert req.op.calls == 1
    assert req.op.alive_at_complete is True
    # From a backend thread, or from a thread blocked in a wait that reaps for the backend
    # (a leader, ``_backends.uring.lead``): never inside the issuing call.
    assert req.op.completer.startswith("winaio-") or req.op.completer_waiting


def _drain(f: Any, limit: int) -> bytes:
    """Read whatever is readable now from a non-blocking stream (at most ``limit`` bytes)."""
    import os

    out = bytearray()
    while len(out) < limit:
        try:
            data = f.sock.recv(limit - len(out)) if f.sock is not None else os.read(f.fd, 65536)
        except BlockingIOError:
            break
        if not data:
            break
        out += data
    return bytes(out)


@pytest.fixture(params=["pipe", "socketpair", "tcp"])
def channel(request: pytest.FixtureRequest, io: Any) -> tuple[Any, Any]:
    """(reader, writer) of a byte stream."""
    if request.param == "pipe":
        return io.pipe()  # type: ignore[no-any-return]
    if request.param == "socketpair":
        return io.socketpair()  # type: ignore[no-any-return]
    client, server = io.tcp_pair()
    return server, client


def test_read_pends_until_data_arrives(io: Any, channel: tuple[Any, Any]) -> None:
    reader, writer = channel
    req = io.read(reader, 64)
    assert req.pending
    assert not req.is_done()
    assert req.event.is_set() is False
    io.write(writer, b"ping").wait()
    assert req.wait() == (SUCCESS, 4)
    assert req.buffer[:4] == b"ping"
    _by_backend(req)


def test_two_pending_reads_complete_in_issue_order(io: Any, channel: tuple[Any, Any]) -> None:
    reader, writer = channel
    first = io.read(reader, 3)
    second = io.read(reader, 3)
    third = io.read(reader, 3)
    assert first.pending and second.pending and third.pending
    io.write(writer, b"abcdefghi").wait()
    assert first.wait() == (SUCCESS, 3)
    assert second.wait() == (SUCCESS, 3)
    assert third.wait() == (SUCCESS, 3)
    assert (first.buffer, second.buffer, third.buffer) == (b"abc", b"def", b"ghi")
    for req in (first, second, third):
        _by_backend(req)


def test_pending_writes_go_out_in_issue_order(io: Any) -> None:
    reader, writer = io.socketpair()
    queued = io.fill(writer)
    one = io.write(writer, b"1" * 5000)
    two = io.write(writer, b"2" * 5000)
    assert one.pending and two.pending
    received = bytearray()
    while not two.is_done():  # drain as the writes make progress
        io.wait_until(lambda: _readable(reader) or two.is_done(), "progress")
        received += _drain(reader, 1 << 20)
    received += _drain(reader, 1 << 20)
    assert one.wait() == (SUCCESS, 5000)
    assert two.wait() == (SUCCESS, 5000)
    assert bytes(received[queued:]) == b"1" * 5000 + b"2" * 5000
    _by_backend(one)
    _by_backend(two)


def _readable(f: Any) -> bool:
    import select

    return bool(select.select([f.fd], [], [], 0)[0])


def test_read_and_write_wait_independently_on_one_socket(io: Any) -> None:
    a, b = io.socketpair()
    read = io.read(a, 16)  # pends: nothing to read
    queued = io.fill(a)
    write = io.write(a, b"tail")  # pends: the send buffer is full
    assert read.pending and write.pending
    got = bytearray()
    while len(got) < queued + 4:  # b drains: only the write can finish
        io.wait_until(lambda: _readable(b), "data for b")
        got += _drain(b, queued + 4 - len(got))
    assert write.wait() == (SUCCESS, 4)
    assert not read.is_done()
    io.write(b, b"back").wait()
    assert read.wait() == (SUCCESS, 4)
    assert read.buffer[:4] == b"back"


def test_pipe_read_completes_broken_when_the_writer_closes(io: Any) -> None:
    reader, writer = io.pipe()
    req = io.read(reader, 8)
    assert req.pending
    writer.close()
    assert req.wait() == (PIPE_BROKEN, 0)
    _by_backend(req)


def test_pending_pipe_write_completes_broken_when_the_reader_closes(io: Any) -> None:
    reader, writer = io.pipe()
    io.fill(writer)
    req = io.write(writer, b"x" * 1000)
    assert req.pending
    reader.close()
    status, _ = req.wait()
    assert status == PIPE_BROKEN
    _by_backend(req)


@pytest.mark.parametrize("kind", ["socketpair", "tcp"])
def test_socket_read_sees_a_graceful_close_as_zero_bytes(io: Any, kind: str) -> None:
    reader, writer = io.socketpair() if kind == "socketpair" else io.tcp_pair()
    req = io.read(reader, 8)
    assert req.pending
    writer.sock.shutdown(socket.SHUT_WR)
    assert req.wait() == (SUCCESS, 0)
    _by_backend(req)


def test_socket_read_sees_a_reset(io: Any) -> None:
    client, server = io.tcp_pair()
    req = io.read(server, 8)
    assert req.pending
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # linger 0: the close sends an RST
    assert req.wait() == (CONNECTION_RESET, 0)
    _by_backend(req)


def test_accept_and_connect_on_loopback(io: Any) -> None:
    listener = io.listener()
    accept, accepted = io.accept(listener)
    assert accept.pending
    connect, client = io.connect(listener.sock.getsockname())
    assert connect.wait() == (SUCCESS, 0)
    assert accept.wait() == (SUCCESS, 0)
    assert accepted.sock.getpeername() == client.sock.getsockname()
    _by_backend(accept)
    # The accepted socket works with the same backend.
    echo = io.read(accepted, 8)
    io.write(client, b"hi").wait()
    assert echo.wait() == (SUCCESS, 2)


def test_accept_with_first_data_waits_on_the_new_socket(io: Any) -> None:
    listener = io.listener()
    accept, _ = io.accept(listener, receive=32)
    assert accept.pending
    client = io.sock(socket.create_connection(listener.sock.getsockname()))
    # Connected but no data yet: AcceptEx is still pending, now waiting on the new socket.
    assert accept.event is not None
    assert not accept.event.is_set()
    io.wait_until(lambda: accept.op.accepted or accept.is_done(), "the connection is accepted")
    assert not accept.is_done()
    io.write(client, b"first data").wait()
    assert accept.wait() == (SUCCESS, 10)
    assert accept.buffer[:10] == b"first data"
    _by_backend(accept)


def test_connect_with_first_send(io: Any) -> None:
    listener = io.listener()
    connect, _ = io.connect(listener.sock.getsockname(), send=b"hello")
    assert connect.wait() == (SUCCESS, 5)
    conn, _ = listener.sock.accept()
    with conn:
        conn.settimeout(5)
        assert conn.recv(16) == b"hello"
