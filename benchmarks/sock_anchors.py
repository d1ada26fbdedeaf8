"""bench_sockets.py's anchors and its load generator: echo servers and the raw-socket client.

Standard library only (uvloop when installed): never imports winaio, so an anchor's process
holds nothing of ours, and the client that drives every server is the same plain code.

Echo servers (each runs in its own process: ``bench_sockets.py --serve KIND``), all byte
echoes (whatever one receive gets is sent back), TCP_NODELAY on every connection:

- ``raw_threaded``: blocking sockets, one thread per connection: ``recv`` then ``sendall``
  (the ceiling of perf-anchors §4);
- ``raw_epoll``: one thread, ``select.epoll`` level-triggered, non-blocking ``recv`` and
  ``send`` (a partial send keeps the rest and waits for EPOLLOUT);
- ``asyncio_protocol`` / ``uvloop_protocol``: an ``asyncio.Protocol`` whose ``data_received``
  writes the data back;
- ``raw_uring@mpoll`` / ``raw_uring@mrecv``: ``sock_raw_uring``'s raw io_uring echo with one
  multishot POLL_ADD (the receive in Python) / one multishot RECV on a provided-buffer ring
  per connection; ``raw_uring@bsend``: the ``raw_uring@coop`` loop with each batch's sends as
  SQEs in the batch's one ``io_uring_enter`` (imported in their own process only: ctypes).

Client modes (each run in its own process: ``bench_sockets.py --client MODE``), 64-byte
messages:

- ``c1``: one connection, ping-pong: send 64 bytes, read the 64 back; latency per round trip;
- ``c64``: 64 connections, each keeping one message in flight, driven by one epoll loop (the
  next message goes as soon as the echo of the previous one is complete); calls/s and the
  latency of every call (one clock read per wake-up);
- ``pipelined``: one connection, 64 messages in one ``sendall``, then the 4096 bytes read back;
  latency per batch.

Every mode reports ``client_cpu_pct`` (CPU of the client over the measured window, 100 = one
core): a client near 100 % is the bottleneck, which the raw rows must show it is not.
"""

from __future__ import annotations

import math
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench_procs import announce, listener, run_counted, run_timed, summary

MSG = bytes(range(64))
SIZE = len(MSG)
CONNECTIONS = 64
DEPTH = 64


# -- servers -----------------------------------------------------------------------------------


def serve_raw_threaded() -> None:
    lsock = listener()
    announce(lsock.getsockname()[1])

    def echo(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        recv, sendall = conn.recv, conn.sendall
        with conn:
            try:
                while data := recv(65536):
                    sendall(data)
            except OSError:
                pass  # a reset client: this connection is over

    while True:
        conn, _ = lsock.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def serve_raw_epoll() -> None:
    lsock = listener()
    lsock.setblocking(False)
    ep = select.epoll()
    ep.register(lsock.fileno(), select.EPOLLIN)
    conns: dict[int, socket.socket] = {}
    unsent: dict[int, bytes] = {}
    announce(lsock.getsockname()[1])
    lfd = lsock.fileno()
    EPOLLIN, EPOLLOUT = select.EPOLLIN, select.EPOLLOUT

    def drop(fd: int) -> None:
        ep.unregister(fd)
        conns.pop(fd).close()
        unsent.pop(fd, None)

    while True:
        for fd, events in ep.poll():
            if fd == lfd:
                while True:
                    try:
                        conn, _ = lsock.accept()
                    except BlockingIOError:
                        break
                    conn.setblocking(False)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conns[conn.fileno()] = conn
                    ep.register(conn.fileno(), EPOLLIN)
                continue
            conn = conns[fd]
            try:
                if events & EPOLLOUT:
                    rest = unsent.pop(fd)
                    n = conn.send(rest)
                    if n < len(rest):
                        unsent[fd] = rest[n:]
                    else:
                        ep.modify(fd, EPOLLIN)
                    continue
                data = conn.recv(65536)
                if not data:
                    drop(fd)
                    continue
                n = conn.send(data)
                if n < len(data):
                    unsent[fd] = data[n:]
                    ep.modify(fd, EPOLLOUT)
            except BlockingIOError:
                continue
            except OSError:
                drop(fd)


def serve_asyncio(use_uvloop: bool) -> None:
    import asyncio  # only in this anchor's own process

    if use_uvloop:
        import uvloop  # the `bench` extra; missing -> the row is unavailable with the reason

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.write = transport.write
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def data_received(self, data: bytes) -> None:
            self.write(data)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0, backlog=4096)
        announce(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    loop.run_until_complete(main())


def _raw_uring(name: str, *args: int | bool) -> None:
    """``sock_raw_uring``'s readiness variants (``raw_uring@mpoll``, ``raw_uring@mrecv``: the
    raw io_uring echo with one multishot request per connection instead of a RECV per echo);
    ctypes and the raw ring only in their own process."""
    import sock_raw_uring

    getattr(sock_raw_uring, name)(*args)


SERVE = {
    "raw_threaded": serve_raw_threaded,
    "raw_epoll": serve_raw_epoll,
    "asyncio_protocol": lambda: serve_asyncio(False),
    "uvloop_protocol": lambda: serve_asyncio(True),
    "raw_uring@mpoll": lambda: _raw_uring("serve_raw_uring_mpoll"),
    "raw_uring@mrecv": lambda: _raw_uring("serve_raw_uring_mrecv"),
    "raw_uring@bsend": lambda: _raw_uring("serve_raw_uring_bsend"),
    "raw_uring@defer": lambda: _raw_uring("serve_raw_uring", False, True),
    **{
        f"raw_uring@bsend{n}": (lambda n=n: _raw_uring("serve_raw_uring_bsend", n))
        for n in (4, 8, 16)
    },
    "raw_uring@bsendc": lambda: _raw_uring("serve_raw_uring_bsend", 0, False),
}


# -- the raw client ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """How long one client run lasts: ``duration`` measured seconds after ``warmup`` seconds; or,
    with ``calls`` > 0, exactly that many measured calls (ping-pongs, pipelined batches, C=64
    echoes), no warm-up, however long they take: what the harness's own tests use, so that a
    loaded machine cannot leave a row without a sample."""

    duration: float
    warmup: float
    calls: int = 0

    def samples(self, step: Callable[[], object]) -> list[float]:
        if self.calls:
            return run_counted(step, self.calls)
        return run_timed(step, self.duration, self.warmup)


class Window:
    """The measured window of a C=64 run (see :class:`Load`): which echoes count, when the
    connections stop sending, and the result."""

    __slots__ = ("calls", "end", "latencies", "load", "start", "stopped")

    def __init__(self, load: Load, now: float) -> None:
        self.load = load
        self.start = now + (0.0 if load.calls else load.warmup)
        self.end = math.inf if load.calls else self.start + load.duration
        self.stopped = 0.0
        self.calls = 0
        self.latencies: list[float] = []

    def arrived(self, now: float, sent_at: float) -> bool:
        """An echo completed at ``now``: count it if it is in the window. True while the run
        goes on (the connection sends its next message)."""
        if self.start <= now < self.end:
            self.calls += 1
            self.latencies.append(now - sent_at)
            if self.calls == self.load.calls:
                self.end = now  # counted mode: that was the last one
        if now < self.end:
            return True
        if not self.stopped:
            self.stopped = now
        return False

    def result(self, errors: int) -> dict[str, Any]:
        elapsed = self.stopped - self.start if self.load.calls else self.load.duration
        return latency_summary(self.calls, max(elapsed, 1e-9), self.latencies, errors)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, view: memoryview) -> None:
    got, size = 0, len(view)
    while got < size:
        n = sock.recv_into(view[got:])
        if not n:
            raise ConnectionError("the server closed the connection")
        got += n


def with_cpu(run: Any) -> dict[str, Any]:
    """Run ``run()`` (it returns its result dict, ``measured_s`` included) and add the client's
    CPU share over the whole call."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result: dict[str, Any] = run()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    result["client_cpu_pct"] = 100.0 * cpu / wall if wall else 0.0
    return result


def client_c1(port: int, load: Load) -> dict[str, Any]:
    return _exchanges(port, load, MSG, 1)


def client_pipelined(port: int, load: Load) -> dict[str, Any]:
    return _exchanges(port, load, MSG * DEPTH, DEPTH)


def _exchanges(port: int, load: Load, data: bytes, calls_per_step: int) -> dict[str, Any]:
    """One connection: send ``data`` (``calls_per_step`` messages), read it back, again."""
    sock = connect(port)
    buf = bytearray(len(data))
    view = memoryview(buf)
    sendall = sock.sendall
    errors = 0

    def step() -> None:
        nonlocal errors
        sendall(data)
        recv_exactly(sock, view)
        errors += buf != data

    try:
        result = with_cpu(lambda: summary(load.samples(step), calls_per_step))
    finally:
        sock.close()
    result["errors"] = errors
    return result


def client_c64(port: int, load: Load) -> dict[str, Any]:
    """64 connections, one message in flight on each, one epoll loop."""
    socks = [connect(port) for _ in range(CONNECTIONS)]
    try:
        return with_cpu(lambda: _c64_loop(socks, load))
    finally:
        for sock in socks:
            sock.close()


def _c64_loop(socks: list[socket.socket], load: Load) -> dict[str, Any]:
    ep = select.epoll()
    index: dict[int, int] = {}
    for i, sock in enumerate(socks):
        sock.setblocking(False)
        index[sock.fileno()] = i
        ep.register(sock.fileno(), select.EPOLLIN)
    got = [0] * len(socks)
    sent_at = [0.0] * len(socks)
    buf = bytearray(65536)
    view = memoryview(buf)
    clock = time.perf_counter
    errors = 0
    in_flight = len(socks)
    now = clock()
    window = Window(load, now)
    arrived = window.arrived
    for i, sock in enumerate(socks):
        sock.send(MSG)
        sent_at[i] = now
    poll = ep.poll
    try:
        while in_flight:
            events = poll(5.0)
            if not events:
                raise TimeoutError(f"{in_flight} echoes missing after 5 s")
            now = clock()
            for fd, _ in events:
                i = index[fd]
                sock = socks[i]
                try:
                    n = sock.recv_into(buf)
                except BlockingIOError:
                    continue
                if not n:
                    raise ConnectionError("the server closed a connection")
                if n == SIZE and got[i] == 0:
                    errors += view[:SIZE] != MSG
                total = got[i] + n
                if total < SIZE:
                    got[i] = total
                    continue
                if total > SIZE:
                    errors += 1  # more than the one message in flight came back
                got[i] = 0
                if arrived(now, sent_at[i]):
                    sock.send(MSG)  # 64 bytes into an empty socket buffer: never partial
                    sent_at[i] = now
                else:
                    in_flight -= 1
    finally:
        ep.close()
    return window.result(errors)


def latency_summary(
    calls: int, duration: float, latencies: list[float], errors: int
) -> dict[str, Any]:
    """The result of a C=64 run: ``calls`` completed in ``duration`` seconds, p50/p99 of the
    per-call ``latencies`` (seconds)."""
    if not latencies:
        raise RuntimeError("no call completed in the measured window")
    latencies.sort()
    return {
        "calls": calls,
        "calls_per_s": calls / duration,
        "p50_us": latencies[len(latencies) // 2] * 1e6,
        "p99_us": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e6,
        "errors": errors,
    }


CLIENTS = {"c1": client_c1, "c64": client_c64, "pipelined": client_pipelined}
