"""The sockets' immediate paths in C (``_fastsock.c``: ``Socket.start_read``/``start_write``)
against their Python reference (``_sockets.Socket``).

- Differential (Hypothesis): one call through C and through Python, from the same state, gives
  the same result or the same typed error and leaves the same IOSB, event and file object
  states, completion packets, bytes (received, or arrived at the peer), socket state
  (``_recv_ready``/``_recv_misses``, pending requests, ``fd_users``), over buffer kinds
  (bytearray, bytes, memoryviews: read-only, strided, wider formats, released, empty), sizes
  (past MAX_GIL_COPY too), notification modes (an event, none, FILE_SKIP_SET_EVENT_ON_HANDLE,
  FILE_SKIP_COMPLETION_PORT_ON_SUCCESS, ``hEvent|1``, no port), the peer's state (data there,
  nothing there, a graceful close, a reset, its SHUT_WR), a closed socket, a receive past a
  run of pended ones (asks ``poll`` first, or pends without asking), a full socket buffer (a
  partial send whose remainder pends), keyword arguments, a pending request in that direction.
  A request that pended is finished the same way in both runs and its completion compared.
- The hot shapes run no Python frame in C (a profile hook), and take no lock with nothing to
  signal or post.
- Resources: many C calls (success, would-block, error) leave no reference, object, memory or
  descriptor behind.
- Classes the C code does not know exactly (a Socket subclass redefining a used attribute, a
  socket object subclass, an Overlapped subclass) get the Python method.
- The descriptor-reuse race on the C path: a close from another thread while the C receive
  asks its readiness poll (which releases the GIL) is deferred until the call is done; the
  receive never reaches a reused number (``_fd_users``).
"""

from __future__ import annotations

import array
import gc
import os
import select
import socket
import struct
import sys
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from types import FrameType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import winaio
import winaio.testing as wt
from winaio._io import _accel, _sockets
from winaio._io._fd_users import FdUsers
from winaio._io._sockets import Socket
from winaio._kernel._dispatcher import LOCK
from winaio.codes import NtStatus

STATUS_PENDING = int(NtStatus.STATUS_PENDING)
LONG = 5.0
MAX_GIL_COPY = 256 * 1024

needs_c = pytest.mark.skipif(
    not _sockets.sockets_accelerator_available()
    and os.environ.get("WINAIO_REQUIRE_ACCEL", "") in ("", "0"),
    reason="the sockets' C path (winaio._io._fastio) is unavailable",
)
pytestmark = needs_c


@pytest.fixture(params=["io_uring", "threads"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    with wt.backend_for_test(request.param) as name:
        yield name


def _impl(c: bool) -> None:
    _accel.use(c)
    assert _sockets.sockets_accelerated() is c


@pytest.fixture
def restore() -> Iterator[None]:
    before = _accel.enabled()
    try:
        yield
    finally:
        _accel.use(before)


def _pair(small: bool = False) -> tuple[Socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = socket.socket()
        if small:
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        peer.connect(listener.getsockname())
        sock, _ = listener.accept()
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if small:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return Socket(sock.fileno(), overlapped=True, sock=sock), peer


def _readable(sock: socket.socket) -> int:
    try:
        return len(sock.recv(1 << 20, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except (BlockingIOError, ConnectionResetError):
        return 0


def _drain(peer: socket.socket, want: int) -> bytes:
    got = bytearray()
    peer.settimeout(LONG)
    while len(got) < want:
        chunk = peer.recv(1 << 20)
        if not chunk:
            break
        got += chunk
    return bytes(got)


@dataclass(frozen=True)
class Case:
    direction: str  # "read" | "write"
    kind: str  # buffer kind
    size: int
    event: bool
    skip_set_event: bool
    skip_on_success: bool
    skip_port: bool  # hEvent|1
    port: bool
    peer: str  # "data" | "nothing" | "close" | "reset" | "shut_wr"
    misses: int  # -1: never pended; else _recv_ready set with this many misses
    closed: bool
    keyword: bool  # size= passed (the general path)
    pending_before: bool  # a request pends in that direction first
    full: bool  # a write into a full socket buffer (small buffers)


def _buffer(kind: str, size: int, fill: bytes) -> Any:
    data = (fill * (size // max(len(fill), 1) + 1))[:size]
    if kind == "bytearray":
        return bytearray(data)
    if kind == "bytes":
        return bytes(data)
    if kind == "memoryview":
        return memoryview(bytearray(data))
    if kind == "readonly":
        return memoryview(bytes(data))
    if kind == "slice":
        return memoryview(bytearray(data + b"tail"))[:size]
    if kind == "strided":
        return memoryview(bytearray(data * 2))[::2]
    if kind == "wide":
        return memoryview(array.array("i", [0x41424344] * max(size // 4, 1)))
    if kind == "cast":
        return memoryview(bytearray(data)).cast("c")
    if kind == "released":
        m = memoryview(bytearray(data))
        m.release()
        return m
    raise AssertionError(kind)


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", call())
    except winaio.Win32Error as exc:
        return (type(exc).__name__, exc.winerror)
    except (TypeError, ValueError, BufferError) as exc:
        return (type(exc).__name__, str(exc))


def _run(case: Case, c: bool, be: str) -> dict[str, Any]:
    """One call of ``case`` on a fresh pair through C (``c``) or Python: everything it did."""
    _impl(c)
    obs: dict[str, Any] = {}
    with wt.backend_for_test(be):
        f, peer = _pair(small=case.full)
        port = winaio.CompletionPort() if case.port else None
        event = winaio.Event(True, True) if case.event else None
        first_ov: winaio.Overlapped | None = None
        try:
            if port is not None:
                f.associate(port, "key")
            if case.skip_set_event or case.skip_on_success:
                f.set_completion_modes(case.skip_on_success, case.skip_set_event)
            if case.pending_before:
                # a receive (or a send into a full buffer) that pends first
                first_ov = winaio.Overlapped()
                assert f.start_read(bytearray(8), first_ov) is False
                assert f.stream_in
            if case.misses >= 0 and case.direction == "read" and not case.pending_before:
                # a receive that pended, then completed: the socket asks before trying
                first = winaio.Overlapped()
                assert f.start_read(bytearray(8), first) is False
                peer.sendall(b"!")
                wt.wait_until(lambda: first.status != STATUS_PENDING, LONG, "first completes")
                if port is not None and not first.skip_port:
                    port.get(LONG)
                assert f._recv_ready is not None
                f._recv_misses = case.misses
            filled = 0
            if case.full:
                filler = b"F" * (1 << 20)
                assert f.sock is not None
                try:
                    while True:
                        filled += f.sock.send(filler)
                except BlockingIOError:
                    pass
            if case.peer == "data":
                peer.sendall(b"0123456789" * 10)
                assert f.sock is not None
                sock = f.sock
                wt.wait_until(lambda: _readable(sock) >= 100, LONG, "the data arrived")
            elif case.peer == "reset":
                peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                peer.close()
            elif case.peer in ("close", "shut_wr"):
                peer.shutdown(socket.SHUT_WR)
            if case.peer in ("close", "reset", "shut_wr"):
                assert f.sock is not None
                assert select.select([f.sock], [], [], LONG)[0], "the end arrived"
            if case.closed:
                f.close()
            buf = _buffer(case.kind, case.size, b"abcdefgh" if case.direction == "write" else b".")
            ov = winaio.Overlapped(event=event, skip_port=case.skip_port)
            kwargs: dict[str, Any] = {"size": case.size} if case.keyword else {}
            users_before = list(f.fd_users)
            method = f.start_read if case.direction == "read" else f.start_write
            result = _outcome(lambda: method(buf, ov, **kwargs))
            obs["result"] = result
            obs["ready"] = f._recv_ready is None
            obs["misses"] = f._recv_misses
            obs["users"] = (users_before, list(f.fd_users), f.fd_users.release is None)
            if result == ("ok", False) and not case.closed:
                # pended: finish it the same way in both runs, then compare the final state
                # (a backend thread may complete it before or after the call returns)
                if case.direction == "read":
                    if first_ov is not None:  # the receive pending before goes first
                        peer.sendall(b"first")
                        fov = first_ov
                        wt.wait_until(lambda: fov.status != STATUS_PENDING, LONG, "first")
                    if case.peer == "nothing":
                        peer.sendall(b"late")
                elif peer.fileno() != -1:
                    _drain(peer, filled + case.size)
                wt.wait_until(lambda: ov.status != STATUS_PENDING, LONG, "the request completes")
                if case.direction == "write":
                    wt.wait_until(lambda: f.pending_requests == 0, LONG, "forgotten")
            if case.closed and first_ov is not None:  # aborted by the close
                fov = first_ov
                wt.wait_until(lambda: fov.status != STATUS_PENDING, LONG, "first aborted")
                wt.wait_until(lambda: f.pending_requests == 0, LONG, "forgotten")
            obs["iosb"] = (ov.status, ov.information)
            obs["event"] = None if event is None else event._signaled
            obs["file"] = f._signaled
            obs["stream"] = (f.stream_in, f.stream_out, f.pending_requests)
            obs["packets"] = _packets(port)
            if case.direction == "read" and case.kind != "released":
                obs["bytes"] = bytes(buf)
            if (
                case.direction == "write"
                and result == ("ok", True)
                and not case.closed
                and peer.fileno() != -1
            ):
                obs["sent"] = _drain(peer, filled + ov.information)[filled:]
        finally:
            f.close()
            peer.close()
            if port is not None:
                port.close()
    return obs


def _packets(port: winaio.CompletionPort | None) -> list[tuple[Any, int, int]]:
    if port is None:
        return []
    out = []
    while (p := port.get(0)) is not None:
        out.append((p.key, p.status, p.bytes_transferred))
    return out


#: Buffer kinds, the hot ones weighted up (sampled thrice).
HOT_READ = ["bytearray", "memoryview", "slice"]
HOT_WRITE = ["bytes", "bytearray", "memoryview", "slice", "readonly"]
COLD = ["strided", "wide", "cast", "released"]
KINDS_READ = HOT_READ * 3 + COLD + ["readonly", "bytes"]
KINDS_WRITE = HOT_WRITE * 3 + COLD


@st.composite
def cases(draw: st.DrawFn) -> Case:
    direction = draw(st.sampled_from(["read", "write"]))
    kind = draw(st.sampled_from(KINDS_READ if direction == "read" else KINDS_WRITE))
    full = direction == "write" and draw(st.booleans())
    ends = ["data", "nothing", "close", "reset", "shut_wr"]
    peer = "nothing" if full else draw(st.sampled_from(ends))
    size = draw(
        st.sampled_from([0, 1, 64, 64, 64, 4096, 4096, 70000, MAX_GIL_COPY, MAX_GIL_COPY + 1])
        if not full
        else st.sampled_from([64, 200_000])
    )
    return Case(
        direction=direction,
        kind=kind,
        size=size,
        event=draw(st.booleans()),
        skip_set_event=draw(st.booleans()),
        skip_on_success=draw(st.booleans()),
        skip_port=draw(st.booleans()),
        port=draw(st.booleans()),
        peer=peer,
        misses=draw(st.sampled_from([-1, -1, 1, 3, 4, 5, 16, 17])) if direction == "read" else -1,
        closed=draw(st.booleans()) and draw(st.booleans()),
        keyword=draw(st.booleans()) and draw(st.booleans()) and draw(st.booleans()),
        pending_before=direction == "read" and peer == "nothing" and draw(st.booleans()),
        full=full,
    )


@pytest.mark.parametrize("be", ["io_uring", "threads"])
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=cases())
def test_c_and_python_immediate_paths_agree(case: Case, be: str, restore: None) -> None:
    python = _run(case, False, be)
    c = _run(case, True, be)
    assert c == python


# ---------------------------------------------------------------------- no Python frame


class Trace:
    def __init__(self) -> None:
        self.functions: list[str] = []
        self.locks = 0

    def run(self, call: Callable[[], Any]) -> Any:
        def profile(frame: FrameType, event: str, arg: Any) -> None:
            if event == "call":
                self.functions.append(frame.f_code.co_qualname)
            elif event == "c_call" and getattr(arg, "__self__", None) is LOCK:
                self.locks += 1

        sys.setprofile(profile)
        try:
            return call()
        finally:
            sys.setprofile(None)


def test_the_hot_shapes_run_no_python_frame(backend: str, restore: None) -> None:
    _impl(True)
    f, peer = _pair()
    port = winaio.CompletionPort()
    try:
        f.associate(port, None)
        f.set_completion_modes(True, True)
        buf = bytearray(65536)
        view = memoryview(buf)
        ov = winaio.Overlapped()
        for data in (b"x" * 64, bytearray(b"y" * 64), view[:64]):
            t = Trace()
            assert t.run(partial(f.start_write, data, ov)) is True
            assert t.functions == [] and t.locks == 0 and ov.information == 64
        peer.sendall(b"z" * 100)
        assert f.sock is not None
        sock = f.sock
        wt.wait_until(lambda: _readable(sock) == 100, LONG)
        for target in (view[:50], buf):
            t = Trace()
            assert t.run(partial(f.start_read, target, ov)) is True
            assert t.functions == [] and t.locks == 0
        assert ov.information == 50 and (ov.status, port.get(0)) == (0, None)
        # a receive past a run of pended ones pends without asking: only the backend runs
        assert f.start_read(buf, ov) is False  # would block: asks from now on
        peer.sendall(b"a")
        wt.wait_until(lambda: ov.status != STATUS_PENDING, LONG)
        assert port.get(LONG) is not None
        f._recv_misses = 5
        t = Trace()
        assert t.run(partial(f.start_read, buf, ov)) is False
        assert "Socket.start_read" not in t.functions and f._recv_misses == 6
        peer.sendall(b"b")
        assert port.get(LONG) is not None
    finally:
        f.close()
        peer.close()
        port.close()


def test_an_immediate_success_with_a_port_notifies_in_c(backend: str, restore: None) -> None:
    # Something to post: notify_success's steps in C, the port's own _post_locked called.
    _impl(True)
    f, peer = _pair()
    port = winaio.CompletionPort()
    try:
        f.associate(port, "k")
        ov = winaio.Overlapped()
        t = Trace()
        assert t.run(partial(f.start_write, b"abc", ov)) is True
        assert set(t.functions) <= {"CompletionPort._post_locked"}, t.functions
        packet = port.get(0)
        assert packet is not None and (packet.key, packet.bytes_transferred) == ("k", 3)
        assert packet.overlapped is ov and f._signaled and ov.status == 0
    finally:
        f.close()
        peer.close()
        port.close()


@pytest.mark.parametrize("c", [True, False])
@pytest.mark.parametrize("target", ["event", "file", "port"])
def test_an_immediate_success_wakes_a_waiting_thread(
    backend: str, c: bool, target: str, restore: None
) -> None:
    # A thread blocked on the request's event, on the file object or in the port's get is
    # released by an immediate success (wake_waiters / _post_locked from the C notification).
    _impl(c)
    f, peer = _pair()
    port = winaio.CompletionPort()
    event = winaio.Event(True, False)
    try:
        f.associate(port, "k")
        f._signaled = False
        ov = winaio.Overlapped(event=event if target == "event" else None)
        got: list[Any] = []

        def waiter() -> None:
            if target == "port":
                got.append(port.get(LONG))
            else:
                got.append(winaio.wait(event if target == "event" else f, LONG).signaled)

        thread = threading.Thread(target=waiter)
        thread.start()
        obj: Any = port if target == "port" else event if target == "event" else f
        if target == "port":
            wt.wait_until(lambda: bool(port._getters), LONG, "the getter waits")
        else:
            wt.wait_until(lambda: bool(obj._waiters), LONG, "the waiter waits")
        assert f.start_write(b"wake", ov) is True
        thread.join(LONG)
        assert not thread.is_alive()
        if target == "port":
            assert got[0] is not None and got[0].overlapped is ov and got[0].bytes_transferred == 4
        else:
            assert got == [True]
            assert port.get(0) is not None  # and the packet was posted
    finally:
        f.close()
        peer.close()
        port.close()


# ---------------------------------------------------------------------- resources


def test_repeated_c_calls_leave_nothing_behind(backend: str, restore: None) -> None:
    _impl(True)
    f, peer = _pair()
    try:
        f.set_completion_modes(True, True)
        buf = bytearray(4096)
        ov = winaio.Overlapped()
        fds = len(os.listdir("/proc/self/fd"))
        assert f.sock is not None
        sock = f.sock

        def rounds(n: int) -> None:
            for _ in range(n):
                assert f.start_write(b"p" * 64, ov) is True
                assert peer.recv(64) == b"p" * 64
                peer.sendall(b"q" * 32)
                wt.wait_until(lambda: _readable(sock) == 32, LONG)
                f._recv_ready = None
                assert f.start_read(buf, ov) is True and ov.information == 32
                # would block: the Python continuation pends it; then it completes
                assert f.start_read(buf, ov) is False
                peer.sendall(b"r" * 8)
                wt.wait_until(lambda: ov.status != STATUS_PENDING, LONG)
                f._recv_ready = None

        rounds(50)
        gc.collect()
        tracemalloc.start()
        try:
            snap = tracemalloc.take_snapshot()
            total = sys.gettotalrefcount() if hasattr(sys, "gettotalrefcount") else None
            objects = len(gc.get_objects())
            for _ in range(4):
                rounds(100)
            gc.collect()
            grown = sum(
                s.size_diff for s in tracemalloc.take_snapshot().compare_to(snap, "filename")
            )
            assert grown < 64 * 1024, grown
            assert len(gc.get_objects()) - objects < 200
            if total is not None:
                assert sys.gettotalrefcount() - total < 1000
        finally:
            tracemalloc.stop()
        assert len(os.listdir("/proc/self/fd")) == fds
        assert list(f.fd_users) == []
    finally:
        f.close()
        peer.close()


def test_repeated_c_errors_leave_no_reference_behind(restore: None) -> None:
    _impl(True)
    f, peer = _pair()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    assert f.sock is not None
    sock = f.sock
    assert select.select([sock], [], [], LONG)[0]
    buf = bytearray(64)
    ov = winaio.Overlapped()
    try:
        refs = sys.getrefcount(buf), sys.getrefcount(ov), sys.getrefcount(f)
        for _ in range(500):
            with pytest.raises(winaio.Win32Error):  # reset, and stays reset
                f.start_read(buf, ov)
            with pytest.raises(winaio.Win32Error):
                f.start_write(b"x", ov)
        assert (sys.getrefcount(buf), sys.getrefcount(ov), sys.getrefcount(f)) == refs
        assert list(f.fd_users) == [] and not f.send_claim.locked()  # type: ignore[union-attr]
    finally:
        f.close()


# ---------------------------------------------------------------------- classes


class RecordingSocket(socket.socket):
    """A socket object subclass: its own recv_into/send must be called."""

    calls = 0

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        RecordingSocket.calls += 1
        return super().recv_into(buffer, nbytes, flags)

    def send(self, data: Any, flags: int = 0) -> int:
        RecordingSocket.calls += 1
        return super().send(data, flags)


class QuietSocket(Socket):
    """Redefines a used attribute (a property): the C code must not read the slot."""

    __slots__ = ()

    @property  # type: ignore[override]
    def skip_set_event(self) -> bool:
        return False

    @skip_set_event.setter
    def skip_set_event(self, value: bool) -> None:
        pass


class MyOverlapped(winaio.Overlapped):
    """Redefines ``event`` (a property over the slot)."""

    __slots__ = ()

    @property  # type: ignore[override]
    def event(self) -> Any:
        return None

    @event.setter
    def event(self, value: Any) -> None:
        pass


def test_classes_the_c_code_does_not_know_take_the_python_method(restore: None) -> None:
    _impl(True)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = socket.create_connection(listener.getsockname())
        conn, _ = listener.accept()
    sock = RecordingSocket(fileno=conn.detach())
    sock.setblocking(False)
    f = Socket(sock.fileno(), overlapped=True, sock=sock)
    try:
        f.set_completion_modes(True, True)
        assert f.start_write(b"hi", winaio.Overlapped()) is True
        peer.sendall(b"yo")
        wt.wait_until(lambda: _readable(sock) == 2, LONG)
        assert f.start_read(bytearray(8), winaio.Overlapped()) is True
        assert RecordingSocket.calls == 2
        # an Overlapped subclass that redefines a slot the C code uses
        t = Trace()
        t.run(partial(f.start_write, b"hi", MyOverlapped()))
        assert "Socket.start_write" in t.functions
    finally:
        f.close()
        peer.close()
    # a Socket subclass redefining a used attribute
    a, b = socket.socketpair()
    a.setblocking(False)
    q = QuietSocket(a.fileno(), overlapped=True, sock=a)
    try:
        t = Trace()
        assert t.run(partial(q.start_write, b"x", winaio.Overlapped())) is True
        assert "Socket.start_write" in t.functions and b.recv(1) == b"x"
    finally:
        q.close()
        b.close()
    # a socket whose object has a timeout: CPython would wait for readiness
    a, b = socket.socketpair()
    a.settimeout(2.0)
    g = Socket(a.fileno(), overlapped=True, sock=a)
    try:
        t = Trace()
        t.run(partial(g.start_write, b"x", winaio.Overlapped()))
        assert "Socket.start_write" in t.functions
    finally:
        g.close()
        b.close()


def test_wrong_arguments_raise_as_the_python_method(restore: None) -> None:
    f, peer = _pair()
    try:
        for c in (False, True):
            _impl(c)
            with pytest.raises(TypeError):
                f.start_read(bytearray(4))  # type: ignore[call-arg]
            with pytest.raises(TypeError):
                f.start_write(b"x", winaio.Overlapped(), bogus=1)  # type: ignore[call-arg]
    finally:
        f.close()
        peer.close()


# ---------------------------------------------------------------------- the fd-reuse race


@pytest.mark.parametrize("c", [True, False])
def test_a_close_during_the_readiness_poll_never_lends_a_reused_descriptor(
    backend: str, c: bool, restore: None
) -> None:
    # The receive asks ``_recv_ready`` (a poll releasing the GIL) after counting itself in:
    # another thread closes the socket then, and a pipe is put on the number if it is free.
    # The close must be deferred to the end of the call: the receive reads the socket (or
    # fails as closed), never the pipe's bytes.
    _impl(c)
    f, peer = _pair()
    r, w = os.pipe()
    try:
        f.set_completion_modes(True, True)
        ov = winaio.Overlapped()
        assert f.start_read(bytearray(8), ov) is False  # would block: asks from now on
        peer.sendall(b"S")
        wt.wait_until(lambda: ov.status != STATUS_PENDING, LONG)
        fd = f.fd
        os.write(w, b"WRONG")
        peer.sendall(b"RIGHT")
        assert f.sock is not None
        sock = f.sock
        wt.wait_until(lambda: _readable(sock) == 5, LONG)
        poll = f._recv_ready
        assert poll is not None
        reused = []

        def racing_poll(timeout: int) -> Any:
            closer = threading.Thread(target=f.close)
            closer.start()
            closer.join(LONG)
            try:
                os.fstat(fd)
            except OSError:  # released: a reopen would get the number
                os.dup2(r, fd)
                reused.append(fd)
            assert poll is not None
            return poll(timeout)

        f._recv_ready = racing_poll
        f._recv_misses = 1
        buf = bytearray(8)
        outcome = _outcome(lambda: f.start_read(buf, winaio.Overlapped()))
        assert not reused, "the descriptor was released during the call"
        assert bytes(buf[:5]) != b"WRONG"
        assert outcome in (("ok", True), ("Win32Error", 6)) or outcome[0] == "IoError"
        with pytest.raises(OSError):  # released once the call was done
            os.fstat(fd)
    finally:
        if reused:
            os.close(reused[0])
        os.close(r)
        os.close(w)
        f.close()
        peer.close()


@pytest.mark.parametrize("c", [True, False])
def test_an_exception_from_left_chains_the_one_that_propagated(
    c: bool, restore: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The socket is closed during the call (by the readiness poll) and the receive fails
    # (a reset): ``finally`` calls ``users.left()``, which releases the descriptor and here
    # raises; its exception is raised with the receive's as its context, on both paths.
    _impl(c)
    f, peer = _pair()
    try:
        f.set_completion_modes(True, True)
        ov = winaio.Overlapped()
        assert f.start_read(bytearray(8), ov) is False  # would block: asks from now on
        peer.sendall(b"S")
        wt.wait_until(lambda: ov.status != STATUS_PENDING, LONG)
        fd = f.fd
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        assert f.sock is not None
        assert select.select([f.sock], [], [], LONG)[0]
        poll = f._recv_ready
        assert poll is not None

        def closing_poll(timeout: int) -> Any:
            f.close()  # deferred: this call counts itself among the users
            assert poll is not None
            return poll(timeout)

        real_left = FdUsers.left

        def failing_left(self: FdUsers) -> None:
            real_left(self)
            raise RuntimeError("left")

        monkeypatch.setattr(FdUsers, "left", failing_left)
        f._recv_ready = closing_poll
        f._recv_misses = 1
        with pytest.raises(RuntimeError) as info:
            f.start_read(bytearray(8), winaio.Overlapped())
        assert isinstance(info.value.__context__, winaio.IoError)
        with pytest.raises(OSError):  # released by left()
            os.fstat(fd)
    finally:
        f.close()
        peer.close()
