"""review8: the pure-Python completion funnel under interrupts (2026-12-06 night).

review7 made the C funnel (``_fastdeliver.c``, ``_fastpost.c``, ``_fastsock.c``) lose no
effect to a signal raised at the entry of a Python function it calls (``fio_again``,
tests/io/test_fastpath_review2.py). The pure-Python funnel - the reference, the fallback, and
what runs on CPython 3.13+ - still lost work: a KeyboardInterrupt raised anywhere in it left
the steps after the cut undone (the packet, the APC, the file's bookkeeping), and the port's
own code could lose a popped GQCS waiter or the packets handed to it.

Where a signal lands in Python code: at the first eval-breaker check after it came - the
entry of a Python function, the return of a C function called from Python code (``CALL``
checks after the call), a backward jump. The sweep here raises at each such point in turn
(``_Sweep``: a profile hook raising at the k-th ``call`` event of a function called from the
funnel's own frames, or at the k-th ``c_return`` inside them; raising at ``c_return`` drops
the call's result after its effect, as a signal handler does), one interrupt per run, and
checks that every effect of the completion is made once: each waiter woken (event, GQCS,
direct port waiter, the alertable issuer), each packet queued or handed over once, each APC
queued once, the request forgotten by its file, the descriptor of a closing file closed, no
lock held. The same sweep runs on the C funnel where it is built (its Python callees' entries
are its only cut points).

Not swept (docs/design.md "The pure-Python funnel under interrupts"): the kernel's own walk
(``wake_waiters``' callees), ``_files.FileObject._forget_locked``'s inside, and the points
the design section lists as not fixable without a cost on the hot path.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import winaio
import winaio.win32 as w
from winaio._backends.uring import reaper as reaper_mod
from winaio._backends.uring.lead import RingParker
from winaio._io import _dispatch, _slot
from winaio._io import _port as port_mod
from winaio._io._disk import DiskFile
from winaio._io._files import FileObject
from winaio._io._ops import FileReadOp, Operation
from winaio._io._overlapped import Overlapped
from winaio._io._port import CompletionPort
from winaio._io._sockets import Socket
from winaio._kernel._dispatcher import ThreadState, WaitBlock
from winaio._kernel._handles import HANDLE_TABLE
from winaio._kernel._objects import Event
from winaio._kernel._threads import current_thread_state
from winaio._kernel._wait import wait_for_one as _wait_for_one
from winaio.errors import Win32Error
from winaio.testing import (
    PyParker,
    Sweep,
    SweepInterrupt,
    accelerator_for_test,
    left_behind,
    profiled,
    sweep_cut_points,
    wait_until,
)

C_DONE = reaper_mod._C_DONE


def _asleep(ts: ThreadState) -> bool:
    parker: Any = ts.parker
    return bool((parker.lock if isinstance(parker, PyParker) else parker).locked())


#: The funnel's own code: a ``c_return`` inside these frames, or the entry of a function they
#: call, is a cut point the funnel must survive.
_OWN: set[Any] = {
    f.__code__
    for f in (
        _dispatch.deliver,
        _dispatch.py_deliver_batch,
        _dispatch.notify_locked,
        _dispatch.notify_success,
        _dispatch._queue_routine,
        CompletionPort._post_locked,
        CompletionPort._posted_locked,
        CompletionPort.release_held_locked,
        CompletionPort._release_locked,
        port_mod._take,
        FileObject._forget_locked,
        FileObject._release_fd,
    )
}


def _sweep_at(
    k: int, callers: set[Any], own: set[Any] | None = None, skip: set[str] | None = None
) -> Sweep:
    """The sweep of the funnel's cut points (module docstring): its own frames (``_OWN``) and
    ``own``; the entries of functions called from ``callers`` (the frame a C funnel's Python
    callees return to); not the C functions named in ``skip``."""
    return Sweep(k, _OWN | (own or set()), callers, skip or ())


class _World:
    """Requests in flight on files bound to a port, with every kind of waiter: two GQCS
    waiters (one parked on a lock, one on a Python parker), a direct waiter of the port, a
    waiter on each request's event; ``routine``: the requests have a completion routine and
    their issuer waits alertably (Python parker); ``closing``: their files are closing."""

    def __init__(self, n: int, routine: bool = False, closing: bool = False) -> None:
        null = os.open(os.devnull, os.O_RDONLY)
        self.issuer = ThreadState(7000, 7000)
        self.port = port = CompletionPort(8)
        self.getters: list[tuple[ThreadState, WaitBlock]] = []
        for i in range(2):
            ts = ThreadState(7001 + i, 7001 + i)
            if i:
                ts.parker = PyParker()
            wb = WaitBlock(ts, (), False, False, port._detach)
            wb.data = 1
            port._getters.append(wb)
            ts.wait, ts.block_listener = wb, port
            self.getters.append((ts, wb))
        self.direct = ThreadState(7010, 7010)
        self.direct_wb = WaitBlock(self.direct, (port,), False, False)
        port._waiters[self.direct_wb] = None
        self.direct.wait = self.direct_wb
        self.event_waiters: list[tuple[ThreadState, WaitBlock]] = []
        self.ops: list[Operation] = []
        self.routine = routine
        self.closing = closing
        self.fds: list[int] = []
        if routine:
            self.issuer.parker = PyParker()
            self.issuer.wait = WaitBlock(self.issuer, (), False, True)
        for i in range(n):
            f = FileObject(os.dup(null), overlapped=True, backend=object())  # type: ignore[arg-type]
            self.fds.append(f.fd)
            f.port, f.key = port, i
            event = Event(True, False)
            ts = ThreadState(7020 + i, 7020 + i)
            if i % 2:
                ts.parker = PyParker()
            wb = WaitBlock(ts, (event,), False, False)
            event._waiters[wb] = None
            ts.wait = wb
            self.event_waiters.append((ts, wb))
            op = object.__new__(FileReadOp)
            op.file, op.overlapped, op.event, op.skip_port = f, Overlapped(0, event), event, False
            op.routine = (lambda *args: None) if routine else None
            op.issuer, op.done, op.registered, op.submitted = self.issuer, False, True, True
            op.cancel_requested, op.token, op.sync_done = False, None, None
            f._pending[op] = None
            self.issuer.extensions.setdefault("io", {})[op] = None  # (its issuer's list)
            f.closing = closing
            self.ops.append(op)
        os.close(null)

    def problems(self) -> list[str]:
        """What an interrupted delivery lost (empty: nothing); closes what is left open."""
        bad = left_behind()
        port = self.port
        if port.holding:
            bad.append("the port left held")
        handed = []
        for ts, wb in self.getters:
            if wb.result is None:
                if wb not in port._getters:
                    bad.append("a GQCS waiter popped and left waiting")
            else:
                if not ts.wake_pending or _asleep(ts) or wb in port._getters:
                    bad.append("a GQCS waiter handed packets and left asleep")
                handed += wb.data or []
        if port._packets and (self.direct_wb.result is None or _asleep(self.direct)):
            bad.append("a direct waiter asleep on a port with packets")
        for ts, wb in self.event_waiters:
            if wb.result is None or not ts.wake_pending or _asleep(ts):
                bad.append("a waiter asleep on a signaled event")
        posted = [p.overlapped for p in [*port._packets, *handed]]
        for op in self.ops:
            ov = op.overlapped
            if not op.done or ov.information != 7 or ov.status != 0:
                bad.append("a request not done")
            if self.routine:
                apcs = sum(1 for _, args in self.issuer.apcs if args[2] is ov)
                if apcs != 1:
                    bad.append(f"an APC queued {apcs} times")
                if not self.issuer.wake_pending or _asleep(self.issuer):
                    bad.append("the alertable issuer asleep with an APC")
            elif (posted_n := sum(1 for o in posted if o is ov)) != 1:
                bad.append(f"a packet posted {posted_n} times")
            if op.registered or op in op.file._pending or op in self.issuer.extensions["io"]:
                bad.append("a request still registered")
            if self.closing and op.file.fd != -1:
                bad.append("a closing file's descriptor left open")
        for op in self.ops:
            if op.file.fd >= 0:
                os.close(op.file.fd)
            op.file.fd = -1
        return bad


def _driver(impl: str, how: str) -> Callable[[list[Operation]], Any]:
    """The delivery under test, called from :func:`_deliver` (the C funnel's callers)."""
    if impl == "c":
        if C_DONE is None:
            if os.environ.get("WINAIO_REQUIRE_ACCEL", "") not in ("", "0"):
                pytest.fail("WINAIO_REQUIRE_ACCEL=1 but winaio._io._fastio was not built")
            pytest.skip("the C accelerator (winaio._io._fastio) was not built")
        return C_DONE[0] if how == "batch" else C_DONE[3]
    return _dispatch.py_deliver_batch if how == "batch" else _dispatch.deliver


def _deliver(fn: Callable[..., Any], batch: list[Any]) -> None:
    if len(batch) == 1:
        fn(*batch[0])
        return
    try:
        fn(batch)
    except BaseException:
        # The reaper's part (``ReaperCuts.deliver_rest``): what the batch did not take yet is
        # delivered before the interrupt goes on (the C batch stops after the request it
        # was delivering; the Python one finishes the batch itself).
        sys.setprofile(None)
        for op, status, information in batch:
            if not op.done:
                _dispatch.deliver(op, status, information)
        raise


@pytest.mark.parametrize("impl", ["python", "c"])
@pytest.mark.parametrize(
    ("how", "shape"),
    [("deliver", "port"), ("deliver", "routine"), ("deliver", "closing"), ("batch", "port"),
     ("batch", "routine")],
)  # fmt: skip
def test_an_interrupt_anywhere_in_the_funnel_loses_no_effect(
    impl: str, how: str, shape: str
) -> None:
    """The sweep over every cut point of one delivery (``deliver``) or of a batch of three
    (``deliver_batch``): whatever point the interrupt cut, every effect of every completion is
    made once before it propagates. Before the fix the Python funnel raised at once: an
    interrupt at ``wake_waiters``' entry (walked again) left the packet unposted and the
    request registered; one at ``_queue_routine``'s or ``_post_locked``'s entry lost the APC
    or the packet; one after ``getters.pop()`` in the port lost the GQCS waiter; a batch left
    the rest of the cut request's steps undone."""
    fn = _driver(impl, how)
    n = 3 if how == "batch" else 1

    def run(k: int) -> tuple[Sweep, list[str]]:
        world = _World(n, routine=shape == "routine", closing=shape == "closing")
        batch = [(op, 0, 7) for op in world.ops]
        sweep = _sweep_at(k, {_deliver.__code__} if impl == "c" else set())
        profiled(sweep, lambda: _deliver(fn, batch))
        return sweep, world.problems()

    assert sweep_cut_points(run) == {}


@pytest.mark.parametrize("impl", ["python", "c"])
@pytest.mark.parametrize("target", ["port", "getter"])
def test_an_interrupt_anywhere_in_an_immediate_success_loses_no_effect(
    socket_pair: Any, impl: str, target: str
) -> None:
    """A socket receive that finds its data at once (the Python ``notify_success``, the C
    immediate path): the sweep over its notification's cut points. The port's packet (queued,
    or handed to a GQCS waiter) was lost to an interrupt at ``_post_locked``'s entry or inside
    it (review2 left the Python port case out: "can be cut anywhere")."""
    with accelerator_for_test(impl):
        f, peer = socket_pair()
        port = CompletionPort(4)
        f.associate(port, "k")
        # (the C path's Python callees return to ``_immediate``'s frame)
        callers = {Socket.start_read.__code__ if impl == "python" else _immediate.__code__}

        def run(k: int) -> tuple[Sweep, list[str]]:
            getter: tuple[ThreadState, WaitBlock] | None = None
            if target == "getter":
                ts = ThreadState(7101, 7101)
                ts.parker = PyParker()
                wb = WaitBlock(ts, (), False, False, port._detach)
                wb.data = 1
                port._getters.append(wb)
                ts.wait = wb
                getter = (ts, wb)
            peer.sendall(b"abcdefgh")
            wait_until(lambda: f.sock.recv(8, socket.MSG_PEEK) == b"abcdefgh", 5.0, "data")
            ov = Overlapped(0)
            buf = bytearray(16)
            sweep = _sweep_at(k, callers)
            profiled(sweep, lambda: _immediate(f, buf, ov))
            bad = left_behind()
            if ov.status != 0 or ov.information != 8 or bytes(buf[:8]) != b"abcdefgh":
                bad.append("the receive lost")
            packets = list(port._packets)
            port._packets.clear()
            if getter is not None:
                ts, wb = getter
                if wb.result is not None:
                    packets += wb.data or []
                    if not ts.wake_pending or _asleep(ts) or wb in port._getters:
                        bad.append("a GQCS waiter handed the packet and left asleep")
                elif wb not in port._getters:
                    bad.append("a GQCS waiter popped and left waiting")
                else:
                    port._getters.remove(wb)
            if [p.overlapped for p in packets] != [ov]:
                bad.append(f"{len(packets)} packets")
            port._running.clear()
            return sweep, bad

        try:
            assert sweep_cut_points(run) == {}
        finally:
            port.close()


def _immediate(f: Any, buf: bytearray, ov: Overlapped) -> None:
    assert f.start_read(buf, ov) is True


# ---------------------------------------------------------------------- bad inputs (win32)


class _WsaPair:
    """A connected loopback pair of overlapped SOCKET handles; ``server`` has ``b"hello"``
    waiting to be read."""

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
        assert w.send(self.client, b"hello", 0) == 5
        wait_until(lambda: self.peek() == b"hello", 5.0, "the data arrived")

    def socket(self) -> int:
        s = w.WSASocket(w.AF_INET, w.SOCK_STREAM, w.IPPROTO_TCP, None, 0, w.WSA_FLAG_OVERLAPPED)
        self.handles.append(s)
        return s

    def peek(self, handle: int | None = None) -> bytes:
        """What waits to be read on ``handle`` (the server's by default), left there."""
        sock = HANDLE_TABLE.get(self.server if handle is None else handle, Socket, pseudo=False)
        try:
            return sock.sock.recv(16, socket.MSG_PEEK | socket.MSG_DONTWAIT)  # type: ignore[union-attr]
        except BlockingIOError:
            return b""

    def close(self) -> None:
        for h in self.handles:
            w.closesocket(h)


@pytest.fixture
def wsa_pair() -> Any:
    p = _WsaPair()
    try:
        yield p
    finally:
        p.close()


_NOT_AN_OUT_PARAMETER = 5  # (an int where a Ref, or None, is expected)


@pytest.mark.parametrize("impl", ["python", "c"])
@pytest.mark.parametrize("bad", ["recv-count", "recv-flags", "send-count"])
def test_an_out_parameter_that_cannot_be_written_fails_before_the_io(
    wsa_pair: _WsaPair, impl: str, bad: str
) -> None:
    """WSARecv's ``lpNumberOfBytesRecvd`` / ``lpFlags`` and WSASend's ``lpNumberOfBytesSent``
    that are no out-parameter (an int): the receive took the data (or the send sent it), then
    an AttributeError came out of the write of the count - no Win32 status, and the bytes
    gone with it (the caller cannot know how many). As Winsock does for a bad pointer
    (WSAEFAULT), the call now fails before any I/O."""
    p = wsa_pair
    with accelerator_for_test(impl):
        ov = w.OVERLAPPED()
        if bad == "send-count":
            r = w.WSASend(p.server, [b"abc"], 1, _NOT_AN_OUT_PARAMETER, 0, ov, None)
        elif bad == "recv-count":
            r = w.WSARecv(p.server, [bytearray(8)], 1, _NOT_AN_OUT_PARAMETER, w.Ref(0), ov, None)
        else:
            r = w.WSARecv(p.server, [bytearray(8)], 1, w.Ref(0), _NOT_AN_OUT_PARAMETER, ov, None)
        assert (r, w.WSAGetLastError()) == (w.SOCKET_ERROR, w.WSAEFAULT)
        assert p.peek() == b"hello"  # nothing received
        if bad == "send-count":
            time.sleep(0.05)
            assert p.peek(p.client) == b""  # nothing sent


@pytest.mark.parametrize("impl", ["python", "c"])
@pytest.mark.parametrize("call", ["WSARecv", "WSASend", "ReadFileEx", "start_read"])
def test_a_completion_routine_that_cannot_be_called_is_refused(
    wsa_pair: _WsaPair, impl: str, call: str, tmp_path: Any
) -> None:
    """A completion routine that is not callable (here an int) was accepted: the request ran
    (a receive took the data), its APC was queued, and the TypeError came out of the thread's
    next alertable wait, whatever it was (a ``connect``'s, a SleepEx). Now the call fails at
    once with its status (WSAEFAULT, ERROR_INVALID_PARAMETER), touching nothing."""
    p = wsa_pair
    ts = current_thread_state()
    with accelerator_for_test(impl):
        ov = w.OVERLAPPED()
        if call == "WSARecv":
            r = w.WSARecv(p.server, [bytearray(8)], 1, w.Ref(0), w.Ref(0), ov, 5)
            assert (r, w.WSAGetLastError()) == (w.SOCKET_ERROR, w.WSAEFAULT)
        elif call == "WSASend":
            r = w.WSASend(p.server, [b"abc"], 1, w.Ref(0), 0, ov, 5)
            assert (r, w.WSAGetLastError()) == (w.SOCKET_ERROR, w.WSAEFAULT)
        elif call == "ReadFileEx":
            path = tmp_path / "f"
            path.write_bytes(b"x" * 64)
            h = w.CreateFileW(str(path), w.GENERIC_READ, 0, None, w.OPEN_EXISTING,
                              w.FILE_FLAG_OVERLAPPED, None)  # fmt: skip
            try:
                assert w.ReadFileEx(h, bytearray(8), 8, ov, 5) is False
                assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
            finally:
                w.CloseHandle(h)
        else:
            sock = HANDLE_TABLE.get(p.server, Socket, pseudo=False)
            with pytest.raises(Win32Error) as info:
                sock.start_read(bytearray(8), Overlapped(0), routine=5)  # type: ignore[arg-type]
            assert info.value.winerror == w.ERROR_INVALID_PARAMETER
        assert not ts.apcs
        assert w.SleepEx(0, True) == 0  # (no APC to run)
        assert p.peek() == b"hello"


@pytest.mark.parametrize("impl", ["python", "c"])
def test_wsarecv_and_wsasend_take_keyword_arguments(wsa_pair: _WsaPair, impl: str) -> None:
    """The Python functions take their parameters by name too (what a pure-Python install,
    CPython 3.13, runs); the C ones refused any keyword (``takes no keyword arguments``):
    the same program failed where the accelerator was built. A call with keywords goes to
    the Python function now."""
    p = wsa_pair
    with accelerator_for_test(impl):
        buf, n, flags = bytearray(8), w.Ref(0), w.Ref(0)
        r = w.WSARecv(p.server, [buf], 1, n, flags, lpOverlapped=w.OVERLAPPED(),
                      lpCompletionRoutine=None)  # fmt: skip
        assert (r, n.value, bytes(buf[:5])) == (0, 5, b"hello")
        sent = w.Ref(0)
        r = w.WSASend(s=p.server, lpBuffers=[b"abc"], dwBufferCount=1, lpNumberOfBytesSent=sent,
                      dwFlags=0, lpOverlapped=w.OVERLAPPED(), lpCompletionRoutine=None)  # fmt: skip
        assert (r, sent.value) == (0, 3)


# ---------------------------------------------------------------------- the blocking read


@pytest.mark.parametrize("impl", ["python", "c"])
@pytest.mark.parametrize("call", ["read", "write"])
def test_an_interrupted_blocking_read_leaves_no_request_behind(
    socket_pair: Any, impl: str, call: str
) -> None:
    """``FileObject.read``/``write`` (``RequestMethods._wait``) issue an overlapped request and
    wait for it. A KeyboardInterrupt in the wait left the request pending after the call had
    raised: the bytes that came later were taken into a buffer nobody reads any more (lost),
    and the request outlived its call. As for a time-out, the request is now cancelled and
    waited for before the interrupt goes on; what comes later is for the next read."""
    with accelerator_for_test(impl):
        f, peer = socket_pair()
        if call == "write":  # fill the socket's buffers: the write must wait
            f.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            try:
                while True:
                    f.sock.send(b"x" * 65536)
            except BlockingIOError:
                pass
        code = _wait_for_one.__code__
        hits: list[int] = []

        def profile(frame: Any, event: str, arg: Any) -> None:
            if event == "call" and frame.f_code is code and not hits:
                hits.append(1)
                raise SweepInterrupt

        buf = bytearray(16)
        sys.setprofile(profile)
        try:
            with pytest.raises(SweepInterrupt):
                if call == "read":
                    f.read(buf)
                else:
                    f.write(b"y" * 100000)
        finally:
            sys.setprofile(None)
        assert hits == [1]
        assert f.pending_requests == 0  # cancelled and over before the interrupt went on
        if call == "read":
            peer.sendall(b"later")
            n = f.read(buf, timeout=5.0)
            assert bytes(buf[:n]) == b"later"


# ---------------------------------------------------------------------- the valgrind hold


def test_the_instruction_counts_hold_the_ring_where_its_loop_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``benchmarks/sock_instructions.py`` (the callgrind counts) keeps the ring thread's watch
    from taking the ring over while valgrind slows the measured thread (``_hold_the_ring``).
    It set ``uring.backend.WATCH_MIN``, which nobody has read since the ring thread's loop
    moved to ``uring.ringthread`` (3b0fb6b): the hold did nothing (a background to the one
    valgrind run that hung, review8 (b)). The names it sets must be the loop's globals."""
    from winaio._backends.uring import ringthread

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import sock_instructions

    class _Lead:
        closed = False

    class _Backend:
        _lead = _Lead()

    monkeypatch.setattr("winaio._runtime.backend", lambda: _Backend())
    monkeypatch.setattr(ringthread, "WATCH_MIN", ringthread.WATCH_MIN)  # (restored after)
    monkeypatch.setattr(ringthread, "WATCH_MAX", ringthread.WATCH_MAX)
    loop = ringthread.RingThread._loop.__code__.co_names
    assert "WATCH_MIN" in loop and "WATCH_MAX" in loop  # (what the hold must set)
    try:
        sock_instructions._hold_the_ring()
        assert (ringthread.WATCH_MIN, ringthread.WATCH_MAX) == (100.0, 100.0)
    finally:
        monkeypatch.undo()


# ---------------------------------------------------------------------- the cached read


def _cached(file: Any, buf: bytearray, ov: Overlapped) -> None:
    assert file.start_read(buf, ov) is True


@pytest.mark.parametrize("impl", ["python", "c"])
@pytest.mark.parametrize("target", ["event", "getter"])
def test_an_interrupt_anywhere_in_a_cached_read_loses_no_effect(
    tmp_path: Any, impl: str, target: str
) -> None:
    """An overlapped ReadFile served from the page cache (``DiskFile.read_now``: the
    notification inlined after the syscall). Its Python twin lost the packet to an interrupt
    at ``wake_waiters``' entry, at the packet's making or queueing, or at ``_posted_locked``'s
    entry (a GQCS waiter asleep on a queued packet). The syscall's own return is left out:
    the count is lost there before it is stored (docs/design.md)."""
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(64)))
    path.read_bytes()  # (in the page cache)
    with accelerator_for_test(impl):
        file, _ = winaio.open_file(
            str(path), read=True, write=False, disposition=3, overlapped=True
        )
        port = CompletionPort(4)
        file.associate(port, "k")
        own = {DiskFile.read_now.__code__} if impl == "python" else set()
        callers = own or {_cached.__code__}

        def run(k: int) -> tuple[Sweep, list[str]]:
            waiter: tuple[ThreadState, WaitBlock] | None = None
            event: Event | None = None
            ts = ThreadState(7201, 7201)
            ts.parker = PyParker()
            if target == "getter":
                wb = WaitBlock(ts, (), False, False, port._detach)
                wb.data = 1
                port._getters.append(wb)
            else:
                event = Event(True, False)
                wb = WaitBlock(ts, (event,), False, False)
                event._waiters[wb] = None
            ts.wait = wb
            waiter = (ts, wb)
            ov = Overlapped(0, event)
            buf = bytearray(16)
            sweep = _sweep_at(k, callers, own, skip={"preadv"})
            profiled(sweep, lambda: _cached(file, buf, ov))
            bad = left_behind()
            if ov.status != 0 or ov.information != 16 or bytes(buf) != bytes(range(16)):
                bad.append("the read lost")
            packets = list(port._packets)
            port._packets.clear()
            ts, wb = waiter
            if target == "getter":
                if wb.result is not None:
                    packets += wb.data or []
                    if not ts.wake_pending or _asleep(ts) or wb in port._getters:
                        bad.append("a GQCS waiter handed the packet and left asleep")
                elif wb not in port._getters:
                    bad.append("a GQCS waiter popped and left waiting")
                else:
                    port._getters.remove(wb)
            elif wb.result is None or not ts.wake_pending or _asleep(ts):
                bad.append("a waiter asleep on a signaled event")
            if [p.overlapped for p in packets] != [ov]:
                bad.append(f"{len(packets)} packets")
            port._running.clear()
            return sweep, bad

        try:
            assert sweep_cut_points(run) == {}
        finally:
            port.close()
            file.close()


# ---------------------------------------------------------------------- a ring leader's token


class _Lead:
    """The part of a Leadership a parker's release uses: ``owner`` (None: the release records
    the parker as ``claimant``, ``Leadership.claim``), the poke."""

    def __init__(self) -> None:
        self.pokes = 0
        self.owner: object = None
        self.claimant: object = None

    def poke(self) -> None:
        self.pokes += 1


def test_an_interrupt_anywhere_in_a_ring_parkers_release_still_pokes() -> None:
    """``RingParker.release`` (Python: a ring leader's parker) gives the token, then pokes the
    leader out of io_uring_enter when it sleeps there. An interrupt at the token's
    ``lock.release()`` return (or at the poke's entry) left the leader asleep in the kernel
    with its token: woken only by the next CQE. Now the poke is made whatever the cut."""
    release = RingParker.release.__code__
    for k in range(1, 20):
        lock = threading.Lock()
        lock.acquire()
        lead = _Lead()
        parker = RingParker(ThreadState(7301, 7301), lock, lead)  # type: ignore[arg-type]
        parker.in_kernel = True
        sweep = _sweep_at(k, {release}, {release})
        profiled(sweep, parker.release)
        assert not lock.locked() and lead.pokes >= 1, sweep.where
        if not sweep.hit:
            assert k > 1
            return
    raise AssertionError("more than 20 cut points")


# ---------------------------------------------------------------------- the receive slot (slot)

_OWN |= {
    f.__code__
    for f in (
        _dispatch._deliver_slot_locked,
        _dispatch._slot_done_locked,
        _dispatch._slot_rest,
        _dispatch._release_closing,
    )
}


class _SlotWorld(_World):
    """``n`` REAPED receive slots (``_io._slot``, the Python twin) on files bound to the port,
    each file with a waiter on it (a slot has no event: F is signaled); ``closing``: the files
    are closing (the last delivery releases the descriptor)."""

    def __init__(self, n: int, closing: bool = False) -> None:
        super().__init__(0)
        null = os.open(os.devnull, os.O_RDONLY)
        self.closing = closing
        self.slots: list[Any] = []
        for i in range(n):
            f = FileObject(os.dup(null), overlapped=True, backend=object())  # type: ignore[arg-type]
            self.fds.append(f.fd)
            f.port, f.key = self.port, i
            f._signaled = False
            ts = ThreadState(7040 + i, 7040 + i)
            if i % 2:
                ts.parker = PyParker()
            wb = WaitBlock(ts, (f,), False, False)
            f._waiters[wb] = None
            ts.wait = wb
            self.event_waiters.append((ts, wb))
            slot = _slot.ReceiveSlot()
            slot.view = memoryview(bytearray(16))
            slot.pin()
            slot.file, slot.overlapped, slot.issuer = f, Overlapped(0), self.issuer
            slot.state, slot.res, slot.gen, slot.index = _slot.REAPED, 7, 3, i
            f.stream_in = 1
            f.closing = closing
            self.slots.append(slot)
        self.files = [slot.file for slot in self.slots]
        self.ovs = [slot.overlapped for slot in self.slots]
        os.close(null)

    def problems(self) -> list[str]:
        files, ovs = self.files, self.ovs
        bad = []
        for slot, f, ov in zip(self.slots, files, ovs, strict=True):
            if slot.state != _slot.IDLE or slot.gen != 4 or slot.file is not None:
                bad.append(f"a slot left {slot!r}")
            if slot.pinned:
                bad.append("a slot left pinned")
            if ov.information != 7 or ov.status != 0:
                bad.append("an IOSB not written")
            if f.stream_in:
                bad.append("a receive still counted")
        self.ops = []
        bad += super().problems()
        posted = [p.overlapped for p in self.port._packets]
        for _, wb in self.getters:
            posted += [p.overlapped for p in wb.data or []] if wb.result is not None else []
        for ov in ovs:
            if (n := sum(1 for o in posted if o is ov)) != 1:
                bad.append(f"a packet posted {n} times")
        for f in files:
            if self.closing and f.fd != -1:
                bad.append("a closing file's descriptor left open")
            if f.fd >= 0:
                os.close(f.fd)
            f.fd = -1
        return bad


@pytest.mark.parametrize("impl", ["python", "c"])
@pytest.mark.parametrize("closing", [False, True])
def test_an_interrupt_anywhere_in_a_slot_delivery_loses_no_effect(impl: str, closing: bool) -> None:
    """The sweep over a batch of three REAPED receive slots (``deliver_batch``'s slot items,
    the C one handing them to the Python function): whatever point the interrupt cut, each
    slot's IOSB, F (its waiter woken), its one packet and its bookkeeping (IDLE, the next
    generation, the pin and the receive's count gone, a closing file's descriptor released)
    are made before it propagates (with the reaper's ``cuts.deliver_rest`` for the slots the cut
    batch had not reached: ``_dispatch.deliver_slot_rest``)."""
    fn = _driver(impl, "batch")

    def run(k: int) -> tuple[Sweep, list[str]]:
        world = _SlotWorld(3, closing=closing)
        batch = list(world.slots)
        sweep = _sweep_at(k, {_deliver_slots.__code__} if impl == "c" else set())
        profiled(sweep, lambda: _deliver_slots(fn, batch))
        return sweep, world.problems()

    assert sweep_cut_points(run) == {}


def _deliver_slots(fn: Callable[..., Any], batch: list[Any]) -> None:
    try:
        fn(batch)
    except BaseException:
        sys.setprofile(None)
        for slot in batch:  # (``ReaperCuts.deliver_rest``)
            _dispatch.deliver_slot_rest(slot)
        raise
