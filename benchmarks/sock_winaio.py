"""bench_sockets.py's winaio rows: a 64-byte echo server on overlapped sockets and a completion
port (the Pythonic core and the ``winaio.win32`` aliases), and a winaio client.

The server (both forms) is the IOCP server of every Windows textbook: N port threads dequeue
packets in batches (``get_many`` / GetQueuedCompletionStatusEx, 64 entries), each packet's key
is its connection, and each completion re-arms the next request of that connection: a finished
receive issues the send of what came, a finished send issues the next receive. One request is
in flight per connection at any time, so two port threads never serve the same connection at
once. With ``skip`` (the default, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | SKIP_SET_EVENT, what a
tuned Windows server sets), a request that finishes inside its call posts nothing and is served
inline, in a loop of at most :data:`INLINE_MAX` (then the completion is posted to the port, so
that one busy connection cannot starve the others); a request that pends comes back through the
port.

- :class:`CoreEchoServer`: ``winaio.CompletionPort``, ``winaio.Socket``, ``start_accept`` (one
  outstanding on the listening socket, which is associated with the port, re-issued from its
  completion), ``start_read`` / ``start_write``, ``get_many``; accepting is outside the
  measured loop.
- :class:`Win32EchoServer`: WSASocket, AcceptEx (one outstanding on the listener, re-posted
  from its completion), CreateIoCompletionPort, SetFileCompletionNotificationModes, WSARecv /
  WSASend, GetQueuedCompletionStatusEx, CreateThread: the Win32 names and conventions.

Both close cleanly (``close()``): the listener stops, every connection is closed (its pending
request completes aborted), the port is closed (its threads return), and the threads are joined;
``tests/benchmarks/test_bench_sockets.py`` checks that no descriptor or thread is left.

The client (``client_c1`` / ``client_c64`` / ``client_pipelined``: the modes of
``sock_anchors``) drives the same echo from winaio: overlapped sockets associated with one port
(skip mode), ``start_write`` then ``start_read``, the completions dequeued with ``get``/``get_many``
on the calling thread.
"""

from __future__ import annotations

import ctypes
import socket
import threading
import time
from typing import Any

from bench_procs import announce, summary
from sock_anchors import CONNECTIONS, DEPTH, MSG, SIZE, Load, Window, with_cpu

import winaio
from winaio import win32 as w
from winaio.errors import Win32Error

RECV_SIZE = 65536
BATCH = 64  # packets per dequeue
#: Receives served inline in a row on one connection (skip mode) before the next one is posted
#: to the port instead: without a bound, a client that answers at once keeps one port thread
#: on one connection while the others' completions wait (measured: C=64 p99 of 20-60 ms).
INLINE_MAX = 4
_SKIP_FLAGS = w.FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | w.FILE_SKIP_SET_EVENT_ON_HANDLE
_JOIN_S = 5.0


# -- the core server ---------------------------------------------------------------------------


class _CoreConn:
    """One accepted connection: its socket file object, buffer and two OVERLAPPEDs."""

    __slots__ = ("buf", "file", "rov", "server", "skip", "view", "wov")

    def __init__(self, server: CoreEchoServer, file: winaio.Socket) -> None:
        assert file.sock is not None
        file.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server = server
        self.skip = server.skip
        self.file = file
        self.file.associate(server.port, self)
        if self.skip:
            self.file.set_completion_modes(True, True)
        self.buf = bytearray(RECV_SIZE)
        self.view = memoryview(self.buf)
        self.rov = winaio.Overlapped()
        self.wov = winaio.Overlapped()

    def receive(self, served: int = 0) -> None:
        """Issue the next receive; in skip mode, serve what finishes inside the call (``served``:
        how many were served inline in a row already)."""
        start_read, buf, rov = self.file.start_read, self.buf, self.rov
        try:
            if not self.skip:
                start_read(buf, rov)
                return
            for _ in range(served, INLINE_MAX):
                if not start_read(buf, rov) or not self.echo(rov.information):
                    return
            if start_read(buf, rov):  # served enough in a row: queue behind the others
                self.server.port.post(rov.information, self, rov)
        except Win32Error:  # reset, or closed under us by close()
            self.close()

    def echo(self, n: int) -> bool:
        """Send back the ``n`` bytes received. True when the next receive may go now (the send
        finished inside the call and posts nothing); False when its completion will come."""
        if not n:  # the client closed its side
            self.close()
            return False
        try:
            done = self.file.start_write(self.view[:n], self.wov)
        except Win32Error:
            self.close()
            return False
        return done and self.skip

    def on_packet(self, packet: winaio.CompletionPacket) -> None:
        """A finished receive: echo it, then the next receive; a finished send: the next
        receive. The common case of a busy server (skip mode: the send finishes inside its
        call, the next receive pends) runs here without a further Python call, as an
        ``asyncio.Protocol``'s ``data_received`` runs one ``transport.write``."""
        if packet.status:  # aborted (closed) or reset
            self.close()
            return
        if packet.overlapped is self.rov:
            n = packet.bytes_transferred
            if not n:  # the client closed its side
                self.close()
                return
            try:
                if not self.file.start_write(self.view[:n], self.wov) or not self.skip:
                    return  # the send pends (or no skip mode): its packet comes next
                if not self.file.start_read(self.buf, self.rov):
                    return  # the next receive pends
            except Win32Error:  # reset, or closed under us by close()
                self.close()
                return
            # The receive finished inside its call too: serve it, then go on as receive() does.
            if self.echo(self.rov.information):
                self.receive(1)
            return
        self.receive()

    def close(self) -> None:
        self.file.close()
        self.server.conns.discard(self)


class _CoreAcceptor:
    """The listening socket's key: one ``start_accept`` outstanding, re-issued from its
    completion (the accept socket is created beforehand, as AcceptEx wants)."""

    __slots__ = ("accepting", "ov", "server")

    def __init__(self, server: CoreEchoServer) -> None:
        self.server = server
        self.ov = winaio.Overlapped()
        self.accepting: winaio.Socket | None = None

    def post(self) -> None:
        """Issue the next accept; a client already waiting is served at once."""
        listening = self.server.listening
        while True:
            target = self.accepting = winaio.create_socket()
            try:
                if not listening.start_accept(target, self.ov):
                    return  # pends: on_packet comes through the port
            except Win32Error:  # the listener was closed under us: close()
                target.close()
                self.accepting = None
                return
            # Finished inside the call: skip mode posts nothing, so serve it here; without
            # skip mode its packet is on the port and on_packet will serve it.
            if not self.server.skip:
                return
            self.accepted()

    def on_packet(self, packet: winaio.CompletionPacket) -> None:
        if packet.status or self.server.closing:  # aborted: the listener was closed
            target, self.accepting = self.accepting, None
            if target is not None:
                target.close()
            return
        self.accepted()
        self.post()

    def accepted(self) -> None:
        target, self.accepting = self.accepting, None
        assert target is not None
        conn = _CoreConn(self.server, target)
        self.server.conns.add(conn)
        conn.receive()


class CoreEchoServer:
    """The echo server on the Pythonic core (module docstring); ``threads`` port threads."""

    def __init__(self, threads: int = 1, *, skip: bool = True) -> None:
        self.skip = skip
        self.closing = False
        self.port = winaio.CompletionPort(threads)
        self.conns: set[_CoreConn] = set()
        self.listening = winaio.create_socket()
        assert self.listening.sock is not None
        self.listening.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listening.bind(("127.0.0.1", 0))
        self.listening.listen(socket.SOMAXCONN)
        self.address: tuple[str, int] = self.listening.getsockname()
        self.acceptor = _CoreAcceptor(self)
        self.listening.associate(self.port, self.acceptor)
        if skip:
            self.listening.set_completion_modes(True, True)
        self.acceptor.post()
        self.workers = [
            winaio.start_thread(self._work, name=f"echo-port-{i}") for i in range(threads)
        ]

    def _work(self) -> int:
        get_many = self.port.get_many
        while True:
            try:
                _, packets = get_many(BATCH)
            except Win32Error:  # ERROR_ABANDONED_WAIT_0: the port was closed
                return 0
            for packet in packets:
                packet.key.on_packet(packet)

    def close(self) -> None:
        """Close the listener (its accept completes aborted), every connection, the port;
        join the threads."""
        self.closing = True
        self.listening.close()
        files = [conn.file for conn in list(self.conns)]
        for file in files:
            file.close()
        deadline = time.monotonic() + _JOIN_S
        while (
            any(f.pending_requests for f in files) or self.acceptor.accepting is not None
        ) and time.monotonic() < deadline:
            time.sleep(0.001)  # the aborted requests are delivered by the port threads
        self.port.close()
        stuck = [t for t in self.workers if not winaio.wait(t, _JOIN_S).signaled]
        if stuck:
            raise RuntimeError(f"{len(stuck)} port thread(s) did not exit")


# -- the Win32 server --------------------------------------------------------------------------


class _Win32Conn:
    """One accepted connection, Win32 style: a SOCKET handle, WSABUF lists, OVERLAPPEDs."""

    __slots__ = (
        "bufs", "closed", "flags", "nbytes", "rov", "s", "sbufs", "server", "skip", "view", "wov"
    )  # fmt: skip

    def __init__(self, server: Win32EchoServer, s: int) -> None:
        self.server = server
        self.s = s
        self.skip = server.skip
        self.closed = False
        if w.CreateIoCompletionPort(s, server.port, self, 0) != server.port:
            raise OSError(f"CreateIoCompletionPort: error {w.GetLastError()}")
        if self.skip and not w.SetFileCompletionNotificationModes(s, _SKIP_FLAGS):
            raise OSError(f"SetFileCompletionNotificationModes: error {w.GetLastError()}")
        w.setsockopt(s, w.IPPROTO_TCP, w.TCP_NODELAY, 1, 4)
        buf = bytearray(RECV_SIZE)
        self.bufs = [buf]
        self.view = memoryview(buf)
        self.sbufs: list[Any] = [b""]
        self.rov = w.OVERLAPPED()
        self.wov = w.OVERLAPPED()
        self.flags = w.Ref(0)
        self.nbytes = w.Ref(0)

    def receive(self, already: int = 0) -> None:
        """WSARecv; in skip mode, serve what finishes inside the call (it returns 0);
        ``already``: how many were served inline in a row before."""
        WSARecv, s, bufs, rov = w.WSARecv, self.s, self.bufs, self.rov
        flags, nbytes = self.flags, self.nbytes
        for served in range(already, INLINE_MAX + 1):
            flags.value = 0
            if WSARecv(s, bufs, 1, nbytes, flags, rov, None):  # SOCKET_ERROR
                if w.WSAGetLastError() != w.WSA_IO_PENDING:
                    self.close()
                return
            if not self.skip:
                return
            if served == INLINE_MAX:  # served enough in a row: queue behind the others
                w.PostQueuedCompletionStatus(self.server.port, nbytes.value, self, rov)
                return
            if not self.echo(nbytes.value):
                return

    def echo(self, n: int) -> bool:
        """WSASend of the ``n`` bytes received: True when the next receive may go now."""
        if not n:
            self.close()
            return False
        sbufs = self.sbufs
        sbufs[0] = self.view[:n]
        if w.WSASend(self.s, sbufs, 1, self.nbytes, 0, self.wov, None):
            if w.WSAGetLastError() != w.WSA_IO_PENDING:
                self.close()
            return False
        return self.skip

    def on_entry(self, entry: w.OVERLAPPED_ENTRY) -> None:
        """A finished WSARecv: WSASend it back, then the next WSARecv; a finished WSASend: the
        next WSARecv. The common case (skip mode: the send finishes inside its call, the next
        receive pends) runs here without a further Python call, as the core server's
        ``on_packet`` does."""
        if entry.Internal:
            self.close()
            return
        if entry.lpOverlapped is self.rov:
            n = entry.dwNumberOfBytesTransferred
            if not n:  # the client closed its side
                self.close()
                return
            s, sbufs, nbytes = self.s, self.sbufs, self.nbytes
            sbufs[0] = self.view[:n]
            if w.WSASend(s, sbufs, 1, nbytes, 0, self.wov, None):
                if w.WSAGetLastError() != w.WSA_IO_PENDING:
                    self.close()
                return  # the send pends: its completion comes next
            if not self.skip:
                return
            flags = self.flags
            flags.value = 0
            if w.WSARecv(s, self.bufs, 1, nbytes, flags, self.rov, None):  # SOCKET_ERROR
                if w.WSAGetLastError() != w.WSA_IO_PENDING:
                    self.close()
                return  # the next receive pends
            # The receive finished inside its call too: serve it, then go on as receive() does.
            if self.echo(nbytes.value):
                self.receive(1)
            return
        self.receive()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            w.closesocket(self.s)
            self.server.conns.discard(self)


class _Acceptor:
    """The listening socket's key: one AcceptEx outstanding, re-posted from its completion."""

    __slots__ = ("accepting", "aov", "buf", "server")

    def __init__(self, server: Win32EchoServer) -> None:
        self.server = server
        self.buf = bytearray(2 * 32)  # no receive data; local and remote address areas
        self.aov = w.OVERLAPPED()
        self.accepting = -1

    def post(self) -> None:
        s = w.WSASocket(w.AF_INET, w.SOCK_STREAM, w.IPPROTO_TCP, None, 0, w.WSA_FLAG_OVERLAPPED)
        self.accepting = s
        ok = w.AcceptEx(self.server.listen, s, self.buf, 0, 32, 32, None, self.aov)
        if not ok and w.WSAGetLastError() != w.ERROR_IO_PENDING:
            w.closesocket(s)
            raise OSError(f"AcceptEx: error {w.WSAGetLastError()}")

    def on_entry(self, entry: w.OVERLAPPED_ENTRY) -> None:
        s, self.accepting = self.accepting, -1
        if entry.Internal or self.server.closing:  # the listener was closed
            w.closesocket(s)
            return
        conn = _Win32Conn(self.server, s)
        self.server.conns.add(conn)
        self.post()
        conn.receive()


class Win32EchoServer:
    """The echo server through ``winaio.win32`` (module docstring); ``threads`` port threads."""

    def __init__(self, threads: int = 1, *, skip: bool = True) -> None:
        self.skip = skip
        self.closing = False
        self.conns: set[_Win32Conn] = set()
        self.port = w.CreateIoCompletionPort(w.INVALID_HANDLE_VALUE, None, 0, threads)
        self.listen = w.WSASocket(
            w.AF_INET, w.SOCK_STREAM, w.IPPROTO_TCP, None, 0, w.WSA_FLAG_OVERLAPPED
        )
        w.setsockopt(self.listen, w.SOL_SOCKET, w.SO_REUSEADDR, 1, 4)
        if w.bind(self.listen, ("127.0.0.1", 0)) or w.listen(self.listen, w.SOMAXCONN):
            raise OSError(f"bind/listen: error {w.WSAGetLastError()}")
        self.address: tuple[str, int] = w.getsockname(self.listen)
        self.acceptor = _Acceptor(self)
        if w.CreateIoCompletionPort(self.listen, self.port, self.acceptor, 0) != self.port:
            raise OSError(f"CreateIoCompletionPort: error {w.GetLastError()}")
        self.acceptor.post()
        self.threads = [w.CreateThread(None, 0, self._work, None, 0, None) for _ in range(threads)]

    def _work(self, _param: Any) -> int:
        GetQueuedCompletionStatusEx, port = w.GetQueuedCompletionStatusEx, self.port
        entries = [w.OVERLAPPED_ENTRY() for _ in range(BATCH)]
        removed = w.Ref(0)
        while True:
            if not GetQueuedCompletionStatusEx(port, entries, BATCH, removed, w.INFINITE, False):
                # INFINITE and not alertable: only a closed port fails (ERROR_ABANDONED_WAIT_0
                # when closed during the wait, ERROR_INVALID_HANDLE when closed before it).
                return 0
            for i in range(removed.value):
                entry = entries[i]
                entry.lpCompletionKey.on_entry(entry)

    def close(self) -> None:
        """closesocket the listener and every connection, CloseHandle the port, join."""
        self.closing = True
        w.closesocket(self.listen)  # the outstanding AcceptEx completes aborted
        for conn in list(self.conns):
            conn.close()
        deadline = time.monotonic() + _JOIN_S
        while self.acceptor.accepting != -1 and time.monotonic() < deadline:
            time.sleep(0.001)  # a port thread closes the socket the AcceptEx was accepting into
        w.CloseHandle(self.port)
        stuck = 0
        for thread in self.threads:
            stuck += w.WaitForSingleObject(thread, int(_JOIN_S * 1000)) != w.WAIT_OBJECT_0
            w.CloseHandle(thread)
        if stuck:
            raise RuntimeError(f"{stuck} port thread(s) did not exit")


def serve(form: str, threads: int, skip: bool = True) -> None:
    """``--serve winaio.core|winaio.win32``: run the server until the harness terminates us."""
    server: CoreEchoServer | Win32EchoServer
    if form == "core":
        server = CoreEchoServer(threads, skip=skip)
    else:
        server = Win32EchoServer(threads, skip=skip)
    name_threads()
    announce(server.address[1])
    while True:
        time.sleep(3600)


def name_threads() -> None:
    """Give every Python thread of this process its name in the kernel too (``comm``, 15
    bytes: ``winaio-uring-0``, ``echo-port-0``), so that per-thread tools (``sock_threads``,
    perf) tell the ring thread from the port threads. CPython's ``threading.Thread.ident`` is the
    thread's ``pthread_t``."""
    try:
        setname = ctypes.CDLL(None).pthread_setname_np
    except (OSError, AttributeError):
        return  # not glibc: the threads keep the process's name
    setname.argtypes = [ctypes.c_ulong, ctypes.c_char_p]
    for thread in threading.enumerate():
        if thread.ident is not None and thread is not threading.main_thread():
            setname(thread.ident, thread.name.encode()[:15])


# -- the winaio client -------------------------------------------------------------------------


class _ClientConn:
    """A connected overlapped socket on the client's port (skip mode)."""

    __slots__ = ("buf", "file", "got", "rov", "sent_at", "view", "wov")

    def __init__(self, port: int, cport: winaio.CompletionPort, size: int) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self.file = winaio.Socket(sock.fileno(), overlapped=True, sock=sock)
        self.file.associate(cport, self)
        self.file.set_completion_modes(True, True)
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)
        self.rov = winaio.Overlapped()
        self.wov = winaio.Overlapped()
        self.got = 0
        self.sent_at = 0.0


def _exchange(conn: _ClientConn, cport: winaio.CompletionPort, data: bytes) -> None:
    """Send ``data`` and read as many bytes back, waiting on the port for what pends."""
    get = cport.get
    if not conn.file.start_write(data, conn.wov):
        _expect(get(), conn.wov)
    size, view, rov = len(conn.buf), conn.view, conn.rov
    got = 0
    while got < size:
        if conn.file.start_read(view[got:] if got else view, rov):
            n = rov.information
        else:
            n = _expect(get(), rov)
        if not n:
            raise ConnectionError("the server closed the connection")
        got += n


def _expect(packet: winaio.CompletionPacket | None, ov: winaio.Overlapped) -> int:
    if packet is None or packet.overlapped is not ov or packet.status:
        raise RuntimeError(f"unexpected completion {packet!r}")
    return packet.bytes_transferred


def _client(size: int, port: int, count: int = 1) -> tuple[winaio.CompletionPort, list[Any]]:
    cport = winaio.CompletionPort(1)
    return cport, [_ClientConn(port, cport, size) for _ in range(count)]


def _close(cport: winaio.CompletionPort, conns: list[_ClientConn]) -> None:
    for conn in conns:
        conn.file.close()
    cport.close()


def client_c1(port: int, load: Load) -> dict[str, Any]:
    return _exchanges(port, load, MSG, 1)


def client_pipelined(port: int, load: Load) -> dict[str, Any]:
    return _exchanges(port, load, MSG * DEPTH, DEPTH)


def _exchanges(port: int, load: Load, data: bytes, calls_per_step: int) -> dict[str, Any]:
    """One connection: send ``data`` (``calls_per_step`` messages), read it back, again."""
    cport, conns = _client(len(data), port)
    (conn,) = conns
    errors = 0

    def step() -> None:
        nonlocal errors
        _exchange(conn, cport, data)
        errors += conn.buf != data

    try:
        result = with_cpu(lambda: summary(load.samples(step), calls_per_step))
    finally:
        _close(cport, conns)
    result["errors"] = errors
    return result


def client_c64(port: int, load: Load) -> dict[str, Any]:
    """64 connections, one message in flight on each; completions from one port."""
    cport, conns = _client(SIZE, port, CONNECTIONS)
    try:
        return with_cpu(_C64Driver(cport, conns, load).run)
    finally:
        _close(cport, conns)


class _C64Driver:
    """The C=64 loop of the winaio client: one message in flight per connection, completions
    dequeued from the port in batches; a receive that finishes inside its call is served at
    once (skip mode), with its own clock reading."""

    def __init__(self, cport: winaio.CompletionPort, conns: list[_ClientConn], load: Load) -> None:
        self.cport, self.conns = cport, conns
        self.clock = time.perf_counter
        self.window = Window(load, self.clock())
        self.errors = 0
        self.in_flight = len(conns)

    def run(self) -> dict[str, Any]:
        now = self.clock()
        for conn in self.conns:
            # A send that pends (never seen at 64 bytes) completes through the port: ignored.
            conn.sent_at = now
            conn.file.start_write(MSG, conn.wov)
            self.read(conn)
        get_many, clock, arrived, read = self.cport.get_many, self.clock, self.arrived, self.read
        while self.in_flight:
            _, packets = get_many(BATCH, 5.0)
            if not packets:
                raise TimeoutError(f"{self.in_flight} echoes missing after 5 s")
            now = clock()
            for packet in packets:
                conn = packet.key
                if packet.status:
                    raise ConnectionError(f"request failed: status {packet.status:#x}")
                if packet.overlapped is conn.rov and arrived(conn, packet.bytes_transferred, now):
                    read(conn)
        return self.window.result(self.errors)

    def read(self, conn: _ClientConn) -> None:
        """Arm the receive of (the rest of) the echo; serve what finishes inside the call."""
        file, rov, clock = conn.file, conn.rov, self.clock
        while file.start_read(conn.view[conn.got :] if conn.got else conn.view, rov):
            if not self.arrived(conn, rov.information, clock()):
                return

    def arrived(self, conn: _ClientConn, n: int, now: float) -> bool:
        """``n`` bytes of the echo arrived at ``now``: True when a receive must be armed."""
        if not n:
            raise ConnectionError("the server closed a connection")
        conn.got += n
        if conn.got < SIZE:
            return True
        conn.got = 0
        if conn.buf != MSG:
            self.errors += 1
        if self.window.arrived(now, conn.sent_at):
            conn.sent_at = now
            conn.file.start_write(MSG, conn.wov)
            return True
        self.in_flight -= 1
        return False


CLIENTS = {"c1": client_c1, "c64": client_c64, "pipelined": client_pipelined}
