"""The alias layer's WSARecv / WSASend / WSAGetLastError in C (``_io/_fastwsa.c``) against the
Python functions (``win32._winsock_overlapped._WSARecv`` ...), which stay the reference.

- A differential over call shapes: the hot shape (pending, immediate, no byte-count Ref) and
  every shape the C hands to the Python function (an hEvent, two buffers, a tuple of buffers,
  flags, a completion routine, a Ref subclass, bad and closed handles, unhashable handles, an
  unconnected socket (a Win32Error from the core: ``_wsa_fail``), a non-overlapped socket):
  same return value, last error, out-parameters, OVERLAPPED fields and bytes on the wire.
- The hot shapes run no Python frame (they really are served in C), and the switch
  (``_accel.use``) sends every call to the Python function.
- References, descriptors and memory stay flat over many calls.

The socket suites that go through these functions (``conformance_io``, ``conformance_wine*``)
run on both implementations through their ``sock_impl`` fixtures.
"""

from __future__ import annotations

import gc
import os
import select
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import winaio.win32 as w
from winaio import testing as wt
from winaio._io import _accel
from winaio.win32 import _winsock_overlapped

MSG_PEEK = 0x2
SENTINEL = 0xDEADBEEF


@pytest.fixture(params=["c", "python"])
def wsa_impl(request: pytest.FixtureRequest) -> Iterator[str]:
    with wt.accelerator_for_test(request.param) as impl:
        yield impl


def _needs_c() -> None:
    if isinstance(w.WSARecv, type(_winsock_overlapped._WSARecv)):  # a Python function: not built
        if os.environ.get("WINAIO_REQUIRE_ACCEL", "") not in ("", "0"):
            pytest.fail("WINAIO_REQUIRE_ACCEL=1 but winaio._io._fastio was not built")
        pytest.skip("the C accelerator (winaio._io._fastio) was not built")


class Pair:
    """A connected loopback pair of overlapped SOCKET handles (client, server), closed at the
    end of the test."""

    def __init__(self) -> None:
        self.handles: list[int] = []
        lst = self.socket()
        assert w.bind(lst, ("127.0.0.1", 0)) == 0 and w.listen(lst, 4) == 0
        self.client = self.socket()
        assert w.connect(self.client, w.getsockname(lst)) == 0, w.WSAGetLastError()
        self.server = w.accept(lst)
        self.handles.append(self.server)
        w.closesocket(lst)
        self.handles.remove(lst)

    def socket(self, flags: int = w.WSA_FLAG_OVERLAPPED) -> int:
        s = w.WSASocket(w.AF_INET, w.SOCK_STREAM, w.IPPROTO_TCP, None, 0, flags)
        self.handles.append(s)
        return s

    def close(self) -> None:
        for h in self.handles:
            w.closesocket(h)
        self.handles.clear()


@pytest.fixture
def pair() -> Iterator[Pair]:
    p = Pair()
    try:
        yield p
    finally:
        p.close()


def _readable(sock: Any) -> None:
    fd = sock.fileno() if hasattr(sock, "fileno") else sock
    assert select.select([fd], [], [], 5)[0], "the peer's data did not come"


def _core(h: int) -> Any:
    return w._base.handle_entry(h)[0]


class _Ref(w.Ref[int]):
    """A Ref subclass: not the C's shape (the Python function takes it)."""


def _routine(*args: Any) -> None:  # pragma: no cover - never run (the call fails or pends)
    pass


#: name -> (function, what the peer sends first, how the call is made)
CASES: dict[str, tuple[str, bytes, Callable[[Pair, Any, Any, Any], Any]]] = {
    "recv pending": ("recv", b"", lambda p, buf, n, ov: w.WSARecv(
        p.server, [buf], 1, n, w.Ref(0), ov, None)),
    "recv immediate": ("recv", b"hello", lambda p, buf, n, ov: w.WSARecv(
        p.server, [buf], 1, n, w.Ref(0), ov, None)),
    "recv no count": ("recv", b"hello", lambda p, buf, n, ov: w.WSARecv(
        p.server, [buf], 1, None, w.Ref(0), ov, None)),
    "recv memoryview": ("recv", b"hello", lambda p, buf, n, ov: w.WSARecv(
        p.server, [memoryview(buf)], 1, n, w.Ref(0), ov, None)),
    "recv peek": ("recv", b"hello", lambda p, buf, n, ov: w.WSARecv(
        p.server, [buf], 1, n, w.Ref(MSG_PEEK), ov, None)),
    "recv flags None": ("recv", b"", lambda p, buf, n, ov: w.WSARecv(
        p.server, [buf], 1, n, None, ov, None)),
    "recv flags subclass": ("recv", b"hello", lambda p, buf, n, ov: w.WSARecv(
        p.server, [buf], 1, n, _Ref(0), ov, None)),
    "recv two buffers": ("recv", b"hello", lambda p, buf, n, ov: w.WSARecv(
        p.server, [buf[:2], bytearray(8)], 2, n, w.Ref(0), ov, None)),
    "recv tuple": ("recv", b"hello", lambda p, buf, n, ov: w.WSARecv(
        p.server, (buf,), 1, n, w.Ref(0), ov, None)),
    "recv count True": ("recv", b"hello", lambda p, buf, n, ov: w.WSARecv(
        p.server, [buf], True, n, w.Ref(0), ov, None)),
    "recv routine": ("recv", b"", lambda p, buf, n, ov: w.WSARecv(
        p.server, [buf], 1, n, w.Ref(0), ov, _routine)),
    "recv bad handle": ("recv", b"", lambda p, buf, n, ov: w.WSARecv(
        0x7FFFFFF0, [buf], 1, n, w.Ref(0), ov, None)),
    "recv unhashable handle": ("recv", b"", lambda p, buf, n, ov: w.WSARecv(
        [], [buf], 1, n, w.Ref(0), ov, None)),
    "recv not connected": ("recv", b"", lambda p, buf, n, ov: w.WSARecv(
        p.socket(), [buf], 1, n, w.Ref(0), ov, None)),
    "recv not overlapped": ("recv", b"", lambda p, buf, n, ov: w.WSARecv(
        p.socket(0), [buf], 1, n, w.Ref(0), ov, None)),
    "send": ("send", b"", lambda p, buf, n, ov: w.WSASend(
        p.server, [b"echo"], 1, n, 0, ov, None)),
    "send no count": ("send", b"", lambda p, buf, n, ov: w.WSASend(
        p.server, [b"echo"], 1, None, 0, ov, None)),
    "send flags": ("send", b"", lambda p, buf, n, ov: w.WSASend(
        p.server, [b"echo"], 1, n, MSG_PEEK, ov, None)),
    "send two buffers": ("send", b"", lambda p, buf, n, ov: w.WSASend(
        p.server, [b"ec", b"ho"], 2, n, 0, ov, None)),
    "send not connected": ("send", b"", lambda p, buf, n, ov: w.WSASend(
        p.socket(), [b"echo"], 1, n, 0, ov, None)),
    "send bad handle": ("send", b"", lambda p, buf, n, ov: w.WSASend(
        0x7FFFFFF0, [b"echo"], 1, n, 0, ov, None)),
}  # fmt: skip


def _observe(name: str, with_event: bool) -> dict[str, Any]:
    """Run CASES[name] on a fresh pair: everything the caller can see afterwards."""
    _, first, call = CASES[name]
    p = Pair()
    try:
        if first:
            w.send(p.client, first, 0)
            _readable(_core(p.server).sock)
        buf = bytearray(16)
        n = w.Ref(SENTINEL)
        ov = w.OVERLAPPED()
        ov.InternalHigh = 0x1234
        if with_event:
            ov.hEvent = w.CreateEvent(None, True, False, None)
        w.SetLastError(SENTINEL)
        try:
            result: Any = call(p, buf, n, ov)
        except Exception as exc:  # (a TypeError for an unhashable handle, as in Python)
            result = type(exc).__name__
        seen = {
            "result": result,
            "last_error": w.WSAGetLastError(),
            "count": n.value,
            "internal": ov.Internal,
            "internal_high": ov.InternalHigh,
            "buffer": bytes(buf),
        }
        core = _core(p.client)
        core.sock.setblocking(False)
        try:
            seen["peer_got"] = core.sock.recv(64)
        except BlockingIOError:
            seen["peer_got"] = b""
        if with_event:
            w.CloseHandle(ov.hEvent)
        return seen
    finally:
        p.close()


@pytest.mark.parametrize("with_event", [False, True], ids=["no-event", "event"])
@pytest.mark.parametrize("name", list(CASES))
def test_c_and_python_do_the_same(name: str, with_event: bool) -> None:
    _needs_c()
    seen = {}
    for impl in ("c", "python"):
        with wt.accelerator_for_test(impl):
            seen[impl] = _observe(name, with_event)
    assert seen["c"] == seen["python"], name
    if name == "send":
        assert seen["c"]["result"] == 0 and seen["c"]["peer_got"] == b"echo"
    if name == "recv pending" and not with_event:
        assert seen["c"]["result"] == w.SOCKET_ERROR
        assert seen["c"]["last_error"] == w.WSA_IO_PENDING


def test_the_hot_shapes_run_in_c(pair: Pair, wsa_impl: str) -> None:
    _needs_c()
    buf = bytearray(16)
    n, flags = w.Ref(0), w.Ref(0)
    w.WSAGetLastError()  # (this thread's state exists)
    ov_s, ov_r = w.OVERLAPPED(), w.OVERLAPPED()
    sent = wt.python_frames(lambda: w.WSASend(pair.client, [b"ping"], 1, n, 0, ov_s, None))
    _readable(_core(pair.server).sock)
    got = wt.python_frames(lambda: w.WSARecv(pair.server, [buf], 1, n, flags, ov_r, None))
    frames = [f - {"<lambda>"} for f in (sent, set(), got, wt.python_frames(w.WSAGetLastError))]
    assert bytes(buf[:4]) == b"ping"
    alias = {"_WSARecv", "_WSASend", "_WSAGetLastError", "current_thread_state"}
    if wsa_impl == "c":
        assert not (frames[0] | frames[2] | frames[3]) & alias, frames
        # the core's immediate paths are C too: no Python frame at all
        assert not frames[0] and not frames[2] and not frames[3], frames
    else:
        assert "_WSASend" in frames[0] and "_WSARecv" in frames[2]
        assert "_WSAGetLastError" in frames[3]


def test_a_thread_first_call_adopts_it(wsa_impl: str) -> None:
    # WSAGetLastError on a plain thread with no kernel state yet: current_thread_state adopts
    # it (the C hands the call to the Python function), and the value is 0.
    got: list[int] = []
    import threading

    t = threading.Thread(target=lambda: got.append(w.WSAGetLastError()))
    t.start()
    t.join()
    assert got == [0]


def test_no_leak_over_many_calls(pair: Pair, wsa_impl: str) -> None:
    buf = bytearray(64)
    n, flags = w.Ref(0), w.Ref(0)
    server = _core(pair.server)
    ov_r, ov_s = w.OVERLAPPED(), w.OVERLAPPED()

    def rounds(count: int) -> None:
        for _ in range(count):
            assert w.WSASend(pair.client, [b"x" * 32], 1, n, 0, ov_s, None) == 0
            _readable(server.sock)
            flags.value = 0
            assert w.WSARecv(pair.server, [buf], 1, n, flags, ov_r, None) == 0
            assert n.value == 32
            w.WSARecv(0x7FFFFFF0, [buf], 1, n, flags, ov_r, None)  # WSAENOTSOCK
            assert w.WSAGetLastError() == w.WSAENOTSOCK

    rounds(200)
    gc.collect()
    fds = len(os.listdir("/proc/self/fd"))
    refs = sys.gettotalrefcount() if hasattr(sys, "gettotalrefcount") else None
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        rounds(2000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, grown
    assert len(os.listdir("/proc/self/fd")) == fds
    if refs is not None:  # (debug builds only)
        assert sys.gettotalrefcount() - refs < 100
    assert sys.getrefcount(buf) < 10 and sys.getrefcount(ov_r) < 10


def test_the_switch_sends_every_call_to_python(pair: Pair) -> None:
    _needs_c()
    calls: list[str] = []
    before = _accel.enabled()
    try:
        _accel.use(False)
        names = wt.python_frames(lambda: w.WSAGetLastError())
        calls += sorted(names)
    finally:
        _accel.use(before)
    assert "_WSAGetLastError" in calls
