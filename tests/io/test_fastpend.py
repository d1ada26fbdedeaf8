"""The C pended receive (``_io/_fastpend.c``, installed on ``Receives.pend_receive``, the
backend's receive side whose method ``IoUringBackend.pend_receive`` is, by ``uring/fastpend``)
against its Python reference (issue 9, sockets' C paths).

- Differential (Hypothesis over the request's shape: event or not, skip_port, bound to a port
  or not, buffer size and offset, this thread owning the ring or not): the request's every
  slot, its registration (the file's pending set and ``stream_in``, the issuer's list), the SQE
  bytes written (opcode, ioprio, fd, address, length, user_data; the last 24 bytes zero), the
  in-flight table, the line, the deferred list and its hint, the counters: equal under C and
  Python.
- The unusual shapes take the Python continuation, with the Python effects: a file being
  closed (ERROR_INVALID_HANDLE, nothing registered), a closed backend (completed with
  STATUS_INVALID_HANDLE), a full SQ ring (the general path), a patched method on the way
  (``open_direct_locked``) and a subclass of the receive side (its own ``_pend_locked`` runs).
  The cancel between the two holds is in tests/io/test_socket_pending.py, which runs on both.
- The hot shape runs no Python frame of the replaced functions; a socket's bound ``_pend``
  follows a later switch-off; nothing leaks over many receives (requests collected,
  tracemalloc steady, the table and lines empty).
"""

from __future__ import annotations

import ctypes
import gc
import os
import socket
import struct
import sys
import threading
import traceback
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from winaio._backends import uring
from winaio._backends.uring import fastpend
from winaio._backends.uring.abi import SubmissionQueueFull
from winaio._backends.uring.abi.prep import SqePrep
from winaio._backends.uring.receives import Receives
from winaio._backends.uring.streams import StreamLines
from winaio._backends.uring.submission import Submission
from winaio._io import _accel
from winaio._io._cancel import cancel_io_ex
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._io._port import CompletionPort
from winaio._io._sockets import Socket
from winaio._kernel._dispatcher import LOCK
from winaio._kernel._objects import Event
from winaio._kernel._threads import current_thread_state
from winaio.codes import NtStatus, WinError
from winaio.errors import Win32Error
from winaio.testing import python_frames, require_c_path, wait_until

OK, REASON = uring.probe_backend()
pytestmark = [
    pytest.mark.skipif(not OK, reason=f"io_uring backend unavailable: {REASON}"),
    pytest.mark.usefixtures("slots_off"),  # (the C pend_receive's request path)
]

LONG = 5.0
SUCCESS = int(NtStatus.STATUS_SUCCESS)
CANCELLED = int(NtStatus.STATUS_CANCELLED)
INVALID_HANDLE = int(NtStatus.STATUS_INVALID_HANDLE)
SQE = struct.Struct("<BBHiqQIIQ24s")
OP_RECV = 27
#: The Python functions the C pended receive replaces.
REPLACED = {
    "pend_receive",
    "register_receive",
    "_pend_locked",
    "open_direct_locked",
    "prep_recv",
    "current_thread_state",
    "_pend_rest",
}


def _need_c() -> None:
    require_c_path(_accel.BUILT)


#: For the tests that look at the C path itself (the differential ones hold everywhere).
needs_c_path = pytest.mark.skipif(
    _accel.BUILT and not fastpend.FAST,
    reason="the C pend_receive hands every call to Python on this CPython (3.11/3.12 only)",
)


@pytest.fixture
def switch() -> Iterator[Callable[[bool], None]]:
    """``switch(c)``: the C functions (``c``) or the Python ones; restored after the test."""
    _need_c()
    before = _accel.enabled()
    yield _accel.use
    _accel.use(before)


@pytest.fixture
def backend(armed_uring: uring.IoUringBackend) -> uring.IoUringBackend:
    return armed_uring


class Conn:
    """A connection: a winaio socket on ``b`` (bound to ``port`` under key 7 if given), its
    peer; closed by :meth:`close`."""

    def __init__(self, b: uring.IoUringBackend, port: CompletionPort | None) -> None:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            self.peer = socket.create_connection(listener.getsockname(), timeout=LONG)
            conn, _ = listener.accept()
        conn.setblocking(False)
        self.f = Socket(conn.fileno(), overlapped=True, sock=conn, backend=b)
        if port is not None:
            self.f.associate(port, 7)

    def close(self) -> None:
        self.f.close()
        self.peer.close()


def _ov(event: Event | None = None, skip_port: bool = False) -> Overlapped:
    """An OVERLAPPED as ``Socket.start_read`` hands it over (Internal STATUS_PENDING)."""
    ov = Overlapped(event=event, skip_port=skip_port)
    ov.status = STATUS_PENDING
    return ov


def _address(obj: Any) -> int:
    if isinstance(obj, ctypes._SimpleCData):
        return ctypes.addressof(obj)
    return ctypes.addressof(ctypes.c_char.from_buffer(obj))


def _op_slots(op: Any) -> list[str]:
    return sorted(
        {n for cls in type(op).__mro__ for n in getattr(cls, "__slots__", ())} - {"__weakref__"}
    )


@contextmanager
def _parked(b: uring.IoUringBackend) -> Iterator[None]:
    """``b``'s ring thread held at the top of its loop (``ParkedRingThread`` of conftest).

    Its exit waits until the ring thread has made the eventfd read it was parked in: that
    read takes every write made so far, and made late (a loaded machine keeps the released
    thread off the CPU) it took the next park's wake-up too - that park then waited for a
    wake-up that never came, 5 s a time (the flake of this test's 60 s timeout: 8 such waits,
    48 s, in one run with two busy loops; none and 11 s with this wait). The wake-up is still
    repeated (a read in progress when the patch goes in may take it)."""
    gate, inside, left = threading.Event(), threading.Event(), threading.Event()
    real = os.eventfd_read
    ring_thread = b._ring_thread.thread

    def parked(fd: int) -> int:
        if threading.current_thread() is ring_thread:
            inside.set()
            gate.wait()
            try:
                return real(fd)
            finally:
                left.set()
        return real(fd)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "eventfd_read", parked)
        try:
            for _ in range(30):
                os.eventfd_write(b._efd, 1)  # make it start a round
                if inside.wait(1.0):
                    break
            else:
                frame = sys._current_frames().get(ring_thread.ident or 0)
                where = traceback.format_stack(frame) if frame is not None else "no frame"
                raise AssertionError(
                    f"the ring thread did not park (alive: {ring_thread.is_alive()}, "
                    f"sleeping: {b._ring_thread.sleeping}, rounds: {b._ring_thread.rounds}): "
                    f"{where}"
                )
            yield
        finally:
            gate.set()
            if inside.is_set():
                left.wait(LONG)  # (its read made: the next park's wake-up is the next's)


def _pend_and_look(b: uring.IoUringBackend, c: Conn, ov: Overlapped, view: memoryview) -> Any:
    """``b.pend_receive`` of ``view`` on ``c``, and everything it set, with the objects named
    (nothing completes: no data is sent; the snapshot is taken under the backend's lock)."""
    f = c.f
    ts = current_thread_state()
    ring, table = b._ring, b._table
    ud = table.next_ud
    submitted, tail, stream_in = b._receives.submitted, ring._sq_tail, f.stream_in
    names: dict[int, str] = {id(f): "file", id(ov): "ov", id(view): "view", id(ts): "ts"}
    if ov.event is not None:
        names[id(ov.event)] = "event"
    owner = b._lead.owner is ts.parker  # (the ring thread is parked: it cannot change)
    b.pend_receive(f, ov, view)
    with b._lock:
        (op,) = f._pending
        line = b._streams.lines[f.fd * 2]
        names[id(op)], names[id(line)] = "op", "line"

        def name(v: Any) -> Any:
            if isinstance(v, list):
                return [name(x) for x in v]
            if v is None or isinstance(v, bool | int):
                return v
            return names.get(id(v), type(v).__name__)

        at = ((ring._sq_tail - 1) & ring._sq_mask) << 6
        sqe = list(SQE.unpack_from(ring._sqes, at))
        address = _address(view)
        return {
            "op": {n: name(getattr(op, n)) for n in _op_slots(op)},
            "pending": [name(x) for x in f._pending],
            "stream_in": f.stream_in - stream_in,
            "issuer_list": op in ts.extensions.get("io", {}),
            "line": {
                "fd": line.fd == f.fd,
                "key": line.key == 2 * f.fd,
                "ops": name(list(line.ops)),
                "poll_ud": line.poll_ud - ud,
                "direct": line.direct,
                "busy": line.busy,
                "keep": _address(line.keep) == address,
            },
            "table": name(list(table[ud])),
            "next_ud": table.next_ud - ud,
            "submitted": b._receives.submitted - submitted,
            "sq_tail": ring._sq_tail - tail,
            # The ring's owner defers (and hints); anyone else submits at once. Who owns
            # the ring after a wait depends on who delivered: the rule is compared.
            "deferred": (ud in b._unsubmitted) is owner,
            "hinted": b._deferral.hinted is owner,
            "sqe": [*sqe[:5], sqe[5] == address, *sqe[6:8], sqe[8] - ud, sqe[9] == bytes(24)],
            "token": name(op.token),
        }


def _finish(c: Conn, ov: Overlapped, port: CompletionPort | None) -> None:
    """Cancel the receive pending on ``c`` and wait for its completion (and packet)."""
    try:
        cancel_io_ex(c.f, ov)
    except Win32Error as exc:
        assert exc.winerror == int(WinError.ERROR_NOT_FOUND)
    if port is not None and not ov.skip_port:
        packet = port.get(LONG)
        assert packet is not None and packet.overlapped is ov
    wait_until(lambda: ov.status != STATUS_PENDING, LONG, "the receive completed")
    assert ov.status == CANCELLED


def _own_the_ring(c: Conn, port: CompletionPort) -> None:
    """A receive completed through ``port`` by this thread, which leads the ring meanwhile
    (and owns it afterwards). The peer sends once this thread waits: sent before, the
    receive could complete while nobody leads, the ring thread deliver it, and the wait find
    its packet queued - no wait, no ownership (the next receives submitted at once)."""
    buf = bytearray(8)
    ov = _ov()
    c.f._pend(c.f, ov, memoryview(buf))
    sender = threading.Timer(0.05, c.peer.send, (b"w",))
    sender.start()
    try:
        packet = port.get(LONG)
    finally:
        sender.join(LONG)
    assert packet is not None and packet.overlapped is ov
    assert c.f.backend._lead.owner is current_thread_state().parker


shapes = st.fixed_dictionaries(
    {
        "event": st.booleans(),
        "skip_port": st.booleans(),
        "bound": st.booleans(),
        "owner": st.booleans(),
        "size": st.integers(1, 5000),
        "offset": st.integers(0, 17),
    }
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(shape=shapes)
def test_c_and_python_pend_a_receive_alike(
    backend: uring.IoUringBackend, switch: Callable[[bool], None], shape: dict[str, Any]
) -> None:
    seen = {}
    for c_impl in (True, False):
        switch(c_impl)
        port = CompletionPort() if shape["bound"] or shape["owner"] else None
        conn = Conn(backend, port)
        try:
            event = Event(manual_reset=True) if shape["event"] else None
            ov = _ov(event, shape["skip_port"])
            buf = bytearray(shape["size"] + shape["offset"])
            view = memoryview(buf)[shape["offset"] :]
            with _parked(backend):  # nothing but this thread submits or reaps
                if shape["owner"]:
                    assert port is not None
                    _own_the_ring(conn, port)  # (it leads: the ring thread cannot deliver)
                seen[c_impl] = _pend_and_look(backend, conn, ov, view)
            _finish(conn, ov, port)
        finally:
            conn.close()
            if port is not None:
                port.close()
    assert seen[True] == seen[False]
    look = seen[True]
    assert look["sqe"][0] == OP_RECV and look["sqe"][2] == backend._receives._recv_ioprio
    assert look["op"]["registered"] and look["op"]["submitted"] and look["line"]["keep"]


def _both(switch: Callable[[bool], None], run: Callable[[], Any]) -> dict[bool, Any]:
    out = {}
    for c_impl in (True, False):
        switch(c_impl)
        out[c_impl] = run()
    return out


def test_a_file_being_closed_is_refused_before_anything(
    backend: uring.IoUringBackend, switch: Callable[[bool], None]
) -> None:
    def run() -> Any:
        c = Conn(backend, None)
        try:
            with LOCK:
                c.f.closing = True
            with pytest.raises(Win32Error) as info:
                backend.pend_receive(c.f, _ov(), memoryview(bytearray(4)))
            with LOCK:
                c.f.closing = False
            return info.value.winerror, list(c.f._pending), c.f.stream_in
        finally:
            c.close()

    seen = _both(switch, run)
    assert seen[True] == seen[False] == (int(WinError.ERROR_INVALID_HANDLE), [], 0)


def test_a_closed_backend_completes_the_receive_invalid_handle(
    switch: Callable[[bool], None],
) -> None:
    def run() -> Any:
        b = uring.IoUringBackend(8)
        c = Conn(b, None)
        try:
            b.close()
            ov = _ov()
            b.pend_receive(c.f, ov, memoryview(bytearray(4)))
            return ov.status, ov.information, list(c.f._pending)
        finally:
            c.close()

    seen = _both(switch, run)
    assert seen[True] == seen[False] == (INVALID_HANDLE, 0, [])


def test_a_full_sq_ring_takes_the_general_path(
    backend: uring.IoUringBackend, switch: Callable[[bool], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = SqePrep._sq_reserve
    refused: list[int] = []
    rests: list[Any] = []
    real_rest = Receives._pend_rest

    def full_once(ring: Any) -> None:
        if not refused:
            refused.append(ring._sq_tail)
            raise SubmissionQueueFull("full")
        real(ring)

    def rest(b: Any, op: Any) -> None:
        rests.append(op)
        real_rest(b, op)

    monkeypatch.setattr(SqePrep, "_sq_reserve", full_once)
    monkeypatch.setattr(Receives, "_pend_rest", rest)

    def run() -> Any:
        refused.clear()
        rests.clear()
        port = CompletionPort()
        c = Conn(backend, port)
        try:
            ring = backend._ring
            with backend._lock:
                ring._sq_limit = ring._sq_tail  # the next prep re-reads the kernel's head
            buf = bytearray(16)
            ov = _ov()
            backend.pend_receive(c.f, ov, memoryview(buf))
            (op,) = c.f._pending
            assert refused and rests == [op]
            c.peer.send(b"general")
            packet = port.get(LONG)
            assert packet is not None and packet.overlapped is ov
            return packet.status, packet.bytes_transferred, bytes(buf[:7]), port.get(0)
        finally:
            c.close()
            port.close()

    seen = _both(switch, run)
    assert seen[True] == seen[False] == (SUCCESS, 7, b"general", None)


def test_a_patched_method_on_the_way_runs(
    backend: uring.IoUringBackend, switch: Callable[[bool], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = StreamLines.open_direct_locked
    calls: list[int] = []

    def spy(self: StreamLines, *args: Any) -> Any:
        calls.append(args[1])
        return real(self, *args)

    monkeypatch.setattr(StreamLines, "open_direct_locked", spy)

    def run() -> int:
        calls.clear()
        port = CompletionPort()
        c = Conn(backend, port)
        try:
            ov = _ov()
            backend.pend_receive(c.f, ov, memoryview(bytearray(8)))
            _finish(c, ov, port)
            return len(calls)
        finally:
            c.close()
            port.close()

    assert _both(switch, run) == {True: 1, False: 1}


class _Sub(Receives):
    """A receive side's subclass with its own ``_pend_locked`` (a spy)."""

    calls = 0

    def _pend_locked(self, *args: Any) -> bool | None:
        type(self).calls += 1
        return super()._pend_locked(*args)


def test_a_receive_side_subclass_runs_its_own_methods(switch: Callable[[bool], None]) -> None:
    def run() -> int:
        _Sub.calls = 0
        b = uring.IoUringBackend(8)
        b._receives.__class__ = _Sub  # (its layout: the same object, a subclass's methods)
        port = CompletionPort()
        c = Conn(b, port)
        try:
            ov = _ov()
            b.pend_receive(c.f, ov, memoryview(bytearray(8)))
            _finish(c, ov, port)
            return _Sub.calls
        finally:
            c.close()
            port.close()
            b.close()

    assert _both(switch, run) == {True: 1, False: 1}


@needs_c_path
def test_the_hot_shape_runs_no_python_frame_of_the_path(
    backend: uring.IoUringBackend, switch: Callable[[bool], None]
) -> None:
    port = CompletionPort()
    conns = [Conn(backend, port) for _ in range(3)]
    try:
        for c_impl in (True, False):
            switch(c_impl)
            ovs = [_ov() for _ in conns]
            with _parked(backend):  # this thread alone reaps: it owns the ring
                _own_the_ring(conns[0], port)
                assert backend._lead.owner is current_thread_state().parker
                frames = [  # (partial: no frame of the test's own)
                    python_frames(partial(backend.pend_receive, c.f, ov, memoryview(bytearray(8))))
                    for c, ov in zip(conns, ovs, strict=True)
                ]
            if c_impl:
                assert not set().union(*frames) & REPLACED
                # The ring owner's later receives, the hint given: no Python at all.
                assert frames[1] == frames[2] == set()
            else:
                assert {"pend_receive", "register_receive", "_pend_locked"} <= frames[1]
            for c, ov in zip(conns, ovs, strict=True):
                _finish(c, ov, port)
    finally:
        for c in conns:
            c.close()
        port.close()


def test_a_sockets_bound_pend_follows_the_switch_off(
    backend: uring.IoUringBackend, switch: Callable[[bool], None]
) -> None:
    switch(True)
    port = CompletionPort()
    c = Conn(backend, port)
    try:
        switch(False)
        ov = _ov()
        frames = python_frames(partial(c.f._pend, c.f, ov, memoryview(bytearray(8))))
        assert "_pend_locked" in frames  # the Python path, though bound while C was on
        _finish(c, ov, port)
    finally:
        c.close()
        port.close()


def test_nothing_leaks_over_many_receives(
    backend: uring.IoUringBackend, switch: Callable[[bool], None]
) -> None:
    switch(True)
    port = CompletionPort()
    c = Conn(backend, port)
    buf = bytearray(64)
    refs: list[weakref.ref[Any]] = []

    def rounds(n: int) -> None:
        for i in range(n):
            ov = _ov()
            backend.pend_receive(c.f, ov, memoryview(buf))
            if len(refs) < 50:
                (op,) = c.f._pending
                refs.append(weakref.ref(op))
                del op
            c.peer.send(bytes([i % 256]) * 3)
            packet = port.get(LONG)
            assert packet is not None and packet.overlapped is ov
            assert (packet.status, packet.bytes_transferred) == (SUCCESS, 3)

    try:
        rounds(300)  # warm-up: spare lines, caches
        gc.collect()
        tracemalloc.start()
        try:
            rounds(200)
            gc.collect()
            first = tracemalloc.get_traced_memory()[0]
            rounds(2000)
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - first
        finally:
            tracemalloc.stop()
        assert grown < 64 * 1024, grown  # not per receive (2000 receives)
        assert all(r() is None for r in refs)
        with backend._lock:
            assert not backend._streams.lines and not backend._table
        assert c.f.pending_requests == 0 and c.f.stream_in == 0
    finally:
        c.close()
        port.close()


def _last_sqe(b: uring.IoUringBackend) -> tuple[Any, ...]:
    ring = b._ring
    return SQE.unpack_from(ring._sqes, ((ring._sq_tail - 1) & ring._sq_mask) << 6)


@needs_c_path
def test_a_backend_attribute_rebound_between_receives_is_seen(
    backend: uring.IoUringBackend, switch: Callable[[bool], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The C path remembers the backend's attributes while its dict does not change (its
    # version): a rebound one (here the RECV flags) is what the next receive uses.
    switch(True)
    port = CompletionPort()
    c = Conn(backend, port)
    try:
        receives = backend._receives
        for ioprio in (receives._recv_ioprio, 0, 0, receives._recv_ioprio):
            monkeypatch.setattr(receives, "_recv_ioprio", ioprio)
            ov = _ov()
            frames = python_frames(partial(backend.pend_receive, c.f, ov, memoryview(bytearray(8))))
            assert "_pend_locked" not in frames  # (the C path)
            assert _last_sqe(backend)[2] == ioprio
            _finish(c, ov, port)
    finally:
        c.close()
        port.close()


def test_each_thread_is_the_issuer_of_its_receives(
    backend: uring.IoUringBackend, switch: Callable[[bool], None]
) -> None:
    # The C path remembers a thread's ThreadState in the thread's own state: each thread's
    # receive is its own (a request not bound to a port dies with its issuer, spec §8).
    switch(True)
    port = CompletionPort()
    conns = [Conn(backend, port) for _ in range(3)]
    issuers: list[tuple[Any, Any]] = []

    def pend(c: Conn, ov: Overlapped) -> None:
        backend.pend_receive(c.f, ov, memoryview(bytearray(8)))
        (op,) = c.f._pending
        issuers.append((op.issuer, current_thread_state()))

    try:
        ovs = [_ov() for _ in conns]
        pend(conns[0], ovs[0])
        for c, ov in zip(conns[1:], ovs[1:], strict=True):
            t = threading.Thread(target=pend, args=(c, ov))
            t.start()
            t.join(LONG)
        assert len(issuers) == 3 and all(a is b for a, b in issuers)
        assert len({id(a) for a, _ in issuers}) == 3
        for c, ov in zip(conns, ovs, strict=True):
            _finish(c, ov, port)
    finally:
        for c in conns:
            c.close()
        port.close()


class _Interrupted(BaseException):
    """Stands for KeyboardInterrupt (a signal handler's exception)."""


def test_an_interrupt_in_the_submit_leaves_the_request_whole(
    switch: Callable[[bool], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    # ``_submit_locked`` (the SQ side's ``submit_locked``) is called last, after every state
    # write (SOCKC's rule): an exception at its entry (a Ctrl-C) propagates with the request
    # registered, in the table and its line's head, submitted by the call made again
    # (review7: it stayed on the deferred list, never submitted), and the backend's lock
    # released; as in Python.
    real = Submission.submit_locked
    raised: list[int] = []

    me = threading.get_ident()

    def interrupted(sq: Any, ts: Any) -> bool:
        if not raised and threading.get_ident() == me:  # (not the ring thread's submits)
            raised.append(1)
            raise _Interrupted
        return bool(real(sq, ts))

    monkeypatch.setattr(Submission, "submit_locked", interrupted)  # (before the backend)

    def run() -> Any:
        raised.clear()
        b = uring.IoUringBackend(16)  # nobody owns its ring: the issuer submits at once
        port = CompletionPort()
        c = Conn(b, port)
        try:
            ov = _ov()
            with pytest.raises(_Interrupted):
                b.pend_receive(c.f, ov, memoryview(bytearray(8)))
            # Released, not left held: the ring thread may hold it for a moment (its own
            # submits and reaps), so a non-blocking try would race it (failed 1 run in 5).
            assert b._lock.acquire(timeout=LONG)
            try:
                (op,) = c.f._pending
                line = b._streams.lines[2 * c.f.fd]
                state = (
                    list(line.ops) == [op],
                    op.token is line,
                    b._table[line.poll_ud] == (op, line),
                    b._unsubmitted == [],
                    c.f.stream_in,
                )
                real(b._sq, current_thread_state())  # (nothing left to submit: a no-op)
            finally:
                b._lock.release()
            c.peer.send(b"late")
            packet = port.get(LONG)
            assert packet is not None and packet.overlapped is ov
            return state, packet.status, packet.bytes_transferred
        finally:
            c.close()
            port.close()
            b.close()

    seen = _both(switch, run)
    assert seen[True] == seen[False] == ((True, True, True, True, 1), SUCCESS, 4)
