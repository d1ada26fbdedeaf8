"""bench_sockets.py's raw io_uring echoes work (issue 9, "Sockets"): the ceilings
``raw_uring`` and ``raw_uring@coop`` (one RECV with POLL_FIRST per echo), the readiness
variants (mshot) ``raw_uring@mpoll`` (one multishot POLL_ADD per connection, the receive in
Python) and ``raw_uring@mrecv`` (one multishot RECV per connection on a provided-buffer ring),
``raw_uring@bsend`` (c64: the sends as linked SEND SQEs, MSG_WAITALL; ``@bsend8`` flushing
every 8 echoes, ``@bsendc`` with a CQE per SEND) and ``raw_uring@defer`` (DEFER_TASKRUN) echo
every byte back in order - 64-byte rounds on several connections, transfers far larger than
one receive (the edge-triggered poll's "receive again while the buffer came back full"; the
buffer ring running dry: -ENOBUFS ends the multishot RECV, which is armed again) - close a
connection whose client closed (the multishot request removed: it holds the socket open), and
leave no descriptor behind once every client is gone. ``sock_raw_uring._echo``'s four outcomes
on a socket pair.

Not a benchmark: nothing here asserts anything about speed. Each server runs in its own process
as the harness runs it (``bench_sockets.py --serve KIND``).
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from winaio.testing import available_backends, wait_until

BENCH = Path(__file__).resolve().parent.parent.parent / "benchmarks"
KINDS = [
    "raw_uring",
    "raw_uring@coop",
    "raw_uring@mpoll",
    "raw_uring@mrecv",
    "raw_uring@bsend",
    "raw_uring@bsend8",
    "raw_uring@bsendc",
    "raw_uring@defer",
]


@pytest.fixture
def procs(bench_import: Callable[[str], Any]) -> Any:
    return bench_import("bench_procs")


@pytest.fixture
def raw(procs: Any) -> Any:
    import sock_raw_uring

    return sock_raw_uring


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        data = sock.recv(min(size - len(out), 1 << 20))
        assert data, "the echo server closed the connection"
        out += data
    return bytes(out)


def _server_fds(server: Any) -> int:
    return len(os.listdir(f"/proc/{server.proc.pid}/fd"))


@pytest.fixture(params=KINDS)
def server(request: pytest.FixtureRequest, procs: Any) -> Iterator[Any]:
    kind: str = request.param
    script = str(BENCH / "bench_sockets.py")
    if "io_uring" not in available_backends():  # no ring here: the row says unavailable
        with pytest.raises(RuntimeError, match=kind):
            procs.ServerProcess(script, kind, timeout=30)
        yield None
        return
    srv = procs.ServerProcess(script, kind, timeout=30)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.timeout(120)
def test_the_readiness_echo_gives_every_byte_back_and_closes(server: Any) -> None:
    if server is None:  # no io_uring: the fixture checked that the server says so
        return
    port = server.port
    fds = _server_fds(server)
    clients = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(8)]
    try:
        for round_ in range(100):
            for i, sock in enumerate(clients):
                sock.sendall(bytes([i, round_]) * 32)
            for i, sock in enumerate(clients):
                assert _recv_exactly(sock, 64) == bytes([i, round_]) * 32
        # Far larger than a receive, on four connections at once: the edge-triggered poll
        # must receive until the socket is empty; the provided-buffer ring runs dry
        # (-ENOBUFS ends the multishot RECV, which is armed again). Every byte, in order.
        big = [os.urandom(4 << 20) for _ in range(4)]
        got: list[bytes] = [b""] * 4

        def take(i: int) -> None:
            got[i] = _recv_exactly(clients[i], len(big[i]))

        threads = [threading.Thread(target=clients[i].sendall, args=(big[i],)) for i in range(4)]
        threads += [threading.Thread(target=take, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert got == big
        # A client that closes its side: the server closes the connection (its multishot
        # request ended or removed: else the kernel would keep the socket open, no EOF).
        clients[1].shutdown(socket.SHUT_WR)
        assert clients[1].recv(16) == b""
        clients.pop(1).close()
        clients[0].sendall(b"still there")
        assert _recv_exactly(clients[0], 11) == b"still there"
        # A reset client (its serial, not its fd, names its request: new connections reuse
        # the descriptor numbers).
        clients[2].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        clients.pop(2).close()
        more = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(3)]
        clients += more
        for i, sock in enumerate(clients):
            sock.sendall(bytes([i]) * 64)
        for i, sock in enumerate(clients):
            assert _recv_exactly(sock, 64) == bytes([i]) * 64
    finally:
        for sock in clients:
            sock.close()
    wait_until(lambda: _server_fds(server) <= fds, 10, f"server descriptors back to {fds}")
    assert server.alive()


def test_echo_receives_until_the_socket_is_empty(raw: Any) -> None:
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        view = memoryview(bytearray(16))
        # Nothing there: a spurious wake-up.
        assert raw._echo(a.recv_into, a.send, a, view) == -1
        # 40 bytes through a 16-byte buffer: received (and sent back) until a short receive.
        b.sendall(bytes(range(40)))
        assert raw._echo(a.recv_into, a.send, a, view) == 8
        assert _recv_exactly(b, 40) == bytes(range(40))
        # Exactly a buffer's worth: the full buffer asks again, which finds nothing.
        b.sendall(bytes(16))
        assert raw._echo(a.recv_into, a.send, a, view) == -1
        assert _recv_exactly(b, 16) == bytes(16)
        # The peer closed: 0.
        b.shutdown(socket.SHUT_WR)
        assert raw._echo(a.recv_into, a.send, a, view) == 0
