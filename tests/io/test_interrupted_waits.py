"""A blocked wait ended by an exception: Ctrl-C (a signal handler's KeyboardInterrupt, raised
in the main thread while it blocks in GetQueuedCompletionStatus or a wait), on both backends.

The exception propagates, and the wait is over: it must not stay registered. Before the fix a
GQCS interrupted this way left its wait block on the port's waiter stack, and the next packet
was handed to it - to nobody: lost; an interrupted wait on an auto-reset event consumed the
next SetEvent the same way. Pinned here:

- an interrupted GQCS leaves no waiter behind, counts its thread as running again, and the
  next packets all reach the next GQCS (also when the thread led the io_uring ring while it
  blocked: its pending receive still completes to the port);
- packets handed to the waiter at the very instant of the interrupt go back to the head of
  the queue (a parker that posts, then raises, makes that instant deterministic);
- an interrupted wait on an auto-reset event does not swallow the next SetEvent;
- a FILE request the interrupted thread was running itself (the thread backend's
  ``IdleWork``) goes back to the queue and completes once, run by the next waiter;
- io_uring: an interrupt in the ring leader's enter does not lose the burst of submissions
  that enter was to make (the owner defers its submissions to its next wait), nor leaves a
  stale waiter on the ring when it lands as the thread becomes the ring's waiter.

The interrupt is a SIGUSR1 handler raising a BaseException (what KeyboardInterrupt is), sent
to the main thread (where CPython runs signal handlers) once it blocks.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar

import pytest

import winaio
import winaio.testing as wt
from winaio._backends._threads import ThreadBackend
from winaio._backends.uring.lead import Leadership
from winaio._backends.uring.ring import BackendRing
from winaio._io._disk import DiskFile
from winaio._io._issue import start
from winaio._io._ops import FileWriteOp
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._kernel._dispatcher import LOCK
from winaio._kernel._threads import current_thread_state
from winaio.codes import NtStatus

LONG = 5.0
SUCCESS = int(NtStatus.STATUS_SUCCESS)
# the io_uring leader's wait chain in C (``_fastring.c``) and in Python, in turn
pytestmark = pytest.mark.usefixtures("fast_path_impl")


class Interrupted(BaseException):
    """Stands for KeyboardInterrupt (a BaseException raised by a signal handler)."""


@pytest.fixture
def interrupt() -> Iterator[Callable[[], threading.Thread]]:
    """``interrupt()``: once the calling (main) thread blocks in a winaio wait, raise
    :class:`Interrupted` in it from a signal handler. Returns the helper thread (join it)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread only")

    armed: list[bool] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if armed:  # once per interrupt(), however many signals it took to get here
            armed.clear()
            raise Interrupted

    previous = signal.signal(signal.SIGUSR1, handler)
    me = current_thread_state()
    main = threading.main_thread().ident
    assert main is not None

    def start() -> threading.Thread:
        armed.append(True)

        def kick() -> None:
            wt.wait_until(lambda: me.wait is not None, LONG, "the main thread blocks")
            # Again until it lands: a signal that arrives just before the thread sleeps in
            # a lock's acquire does not interrupt that sleep (CPython runs the handler on
            # EINTR only), as a second Ctrl-C is sometimes needed.
            deadline = LONG
            while armed and deadline > 0:
                signal.pthread_kill(main, signal.SIGUSR1)
                threading.Event().wait(0.05)
                deadline -= 0.05

        t = threading.Thread(target=kick)
        t.start()
        return t

    try:
        yield start
    finally:
        signal.signal(signal.SIGUSR1, previous)


@pytest.fixture(params=["io_uring", "threads"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    with wt.backend_for_test(request.param) as name:
        yield name


def test_an_interrupted_gqcs_leaves_no_waiter_to_swallow_the_next_packet(
    interrupt: Callable[[], threading.Thread],
) -> None:
    port = winaio.CompletionPort()
    kicker = interrupt()
    with pytest.raises(Interrupted):
        port.get(None)
    kicker.join()
    me = current_thread_state()
    assert me.wait is None and port.running_threads == 1
    port.post(1, "a")
    port.post(2, "b")
    got = [port.get(LONG), port.get(LONG)]
    assert [p.key if p else None for p in got] == ["a", "b"]
    port.close()


def test_an_interrupted_event_wait_does_not_swallow_the_next_set(
    interrupt: Callable[[], threading.Thread],
) -> None:
    ev = winaio.Event()  # auto-reset: one waiter consumes one SetEvent
    kicker = interrupt()
    with pytest.raises(Interrupted):
        winaio.wait(ev, None)
    kicker.join()
    assert ev.waiter_count == 0 and current_thread_state().wait is None
    ev.set()
    assert winaio.wait(ev, 0).code == 0


def test_an_interrupted_gqcs_that_led_the_ring_still_gets_its_receive(
    backend: str, interrupt: Callable[[], threading.Thread], socket_pair: Any
) -> None:
    # spec: win32 #109 (the receive is port-bound: it outlives the interrupted wait too)
    s, peer = socket_pair()
    port = winaio.CompletionPort()
    try:
        s.associate(port, "s")
        buf = bytearray(8)
        assert s.start_read(buf, winaio.Overlapped(0)) is False
        kicker = interrupt()
        with pytest.raises(Interrupted):
            port.get(None)  # io_uring: this thread waits in the kernel on the ring
        kicker.join()
        peer.sendall(b"data")
        packet = port.get(LONG)
        assert packet is not None and (packet.key, packet.status) == ("s", SUCCESS)
        assert bytes(buf[: packet.bytes_transferred]) == b"data"[: packet.bytes_transferred]
        assert port.get(0) is None
    finally:
        port.close()


class _PostThenRaise:
    """A parker whose blocking acquire first lets a packet be handed to the waiting thread
    (posted to its port), then raises: the interrupt lands after the hand-off."""

    def __init__(self, lock: Any, port: winaio.CompletionPort) -> None:
        self.lock = lock
        self.port = port
        self.armed = True

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if blocking and self.armed:
            self.armed = False
            self.port.post(7, "handed")
            raise Interrupted
        return bool(self.lock.acquire(blocking, timeout))

    def release(self) -> None:
        self.lock.release()


def test_packets_handed_at_the_instant_of_the_interrupt_go_back_to_the_queue() -> None:
    port = winaio.CompletionPort()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            ts = current_thread_state()
            original = ts.parker
            with LOCK:  # in none of its waits: the parker may be replaced
                ts.parker = _PostThenRaise(original, port)
            try:
                with pytest.raises(Interrupted):
                    port.get(None)
            finally:
                with LOCK:
                    ts.parker = original
            assert ts.wait is None and not ts.wake_pending
            assert port.queued == 1 and port.running_threads == 1
            packet = port.get(0)
            assert packet is not None and (packet.key, packet.bytes_transferred) == ("handed", 7)
            assert port.get(0) is None  # the parker is locked again: a timeout, not a token
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join(LONG)
    assert not t.is_alive()
    if errors:
        raise errors[0]
    port.close()


class _InterruptedOnce(FileWriteOp):
    """A write whose first run is interrupted inside its syscall (as a signal handler's
    exception lands there); later runs are plain writes."""

    __slots__ = ()
    runs: ClassVar[list[str]] = []

    def run_blocking(self) -> tuple[int, int]:
        self.runs.append(threading.current_thread().name)
        if len(self.runs) == 1:
            raise Interrupted
        return super().run_blocking()


def test_a_request_a_waiting_thread_runs_inline_survives_its_interrupt(tmp_path: Path) -> None:
    """The thread backend's waiting thread runs a lone queued FILE request itself
    (``IdleWork``); an exception there propagates out of its GQCS, and the request goes back
    to the queue instead of staying "running" forever: the next waiter runs it, once."""
    b = ThreadBackend(workers=0)  # only a waiting thread can run it
    port = winaio.CompletionPort()
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
    f = DiskFile(fd, overlapped=True, seekable=True, backend=b)
    try:
        f.associate(port, "f")
        _InterruptedOnce.runs = []
        op = _InterruptedOnce(f, Overlapped(0), [memoryview(b"data")], 0)
        assert start(op) == STATUS_PENDING
        with pytest.raises(Interrupted):
            port.get(None)  # runs it here: interrupted
        got: list[Any] = []
        t = threading.Thread(target=lambda: got.append(port.get(None)))
        t.start()
        t.join(LONG)
        assert not t.is_alive(), "the interrupted request never completed"
        (packet,) = got
        assert packet is not None and (packet.status, packet.bytes_transferred) == (SUCCESS, 4)
        assert len(_InterruptedOnce.runs) == 2 and port.get(0) is None
        assert (tmp_path / "f").read_bytes() == b"data" and f.pending_requests == 0
    finally:
        f.close()
        port.close()
        b.close()


def test_an_interrupt_in_the_leaders_enter_does_not_lose_the_burst_it_took(
    armed_uring: Any, kit: Any, monkeypatch: pytest.MonkeyPatch, socket_pair: Any
) -> None:
    """io_uring: the ring's owner defers its submissions to its next wait, whose io_uring_enter
    submits them (``take_burst``). An exception raised there (Ctrl-C: the enter returns EINTR
    and the signal handler raises) left the burst published, unsubmitted and in nobody's list:
    the receive never reached the kernel. It is submitted from the leader's way out."""
    b = armed_uring
    s, peer = socket_pair(b)
    port = winaio.CompletionPort()
    parked = kit.park(b, monkeypatch)  # nothing but this thread submits or reaps
    try:
        s.associate(port, "s")
        buf = bytearray(8)
        assert s.start_read(buf, winaio.Overlapped(0)) is False
        peer.sendall(b"1")
        assert port.get(LONG) is not None  # this thread waited on the ring: it owns it now
        assert b._lead.owner is current_thread_state().parker
        assert s.start_read(buf, winaio.Overlapped(0)) is False
        assert b._deferral.unsubmitted  # deferred to this thread's next wait
        real_enter = BackendRing.enter
        hits: list[int] = []

        def enter(ring: BackendRing, to_submit: int, wait_nr: int) -> int:
            if ring is b._ring and to_submit and wait_nr and not hits:
                hits.append(to_submit)
                raise Interrupted  # as the signal handler would, where the enter returned
            return real_enter(ring, to_submit, wait_nr)

        monkeypatch.setattr(BackendRing, "enter", enter)
        with pytest.raises(Interrupted):
            port.get(None)
        monkeypatch.setattr(BackendRing, "enter", real_enter)
        assert hits == [1]
        peer.sendall(b"2")
        packet = port.get(LONG)
        assert packet is not None and (packet.key, packet.status) == ("s", SUCCESS)
        assert packet.bytes_transferred == 1 and buf[:1] == b"2"
    finally:
        parked.release()
        port.close()


def test_an_interrupt_as_a_thread_becomes_the_rings_waiter_leaves_no_stale_waiter(
    armed_uring: Any, kit: Any, monkeypatch: pytest.MonkeyPatch, socket_pair: Any
) -> None:
    """io_uring: an exception raised just as a blocking thread became the ring's waiter
    (``enter_or_follow`` returned) left it registered as the waiter: no thread reaped any
    more, every later waiter followed it, and the ring thread's watch never takes over from a
    waiter - every completion of the ring stuck. The waiter is cleared on the way out."""
    b = armed_uring
    s, peer = socket_pair(b)
    port = winaio.CompletionPort()
    try:
        s.associate(port, "s")
        buf = bytearray(8)
        assert s.start_read(buf, winaio.Overlapped(0)) is False
        real = Leadership.enter_or_follow
        hits: list[bool] = []

        def enter_then_interrupted(lead: Leadership, parker: Any) -> bool:
            leading = real(lead, parker)
            if lead is b._lead and not hits:
                hits.append(leading)
                raise Interrupted  # where a signal handler may raise: the call's return
            return leading

        monkeypatch.setattr(Leadership, "enter_or_follow", enter_then_interrupted)
        with pytest.raises(Interrupted):
            port.get(None)
        monkeypatch.setattr(Leadership, "enter_or_follow", real)
        assert hits == [True] and b._lead.waiter is None
        assert current_thread_state().wait is None
        peer.sendall(b"data")
        packet = port.get(LONG)
        assert packet is not None and (packet.key, packet.status) == ("s", SUCCESS)
    finally:
        port.close()
