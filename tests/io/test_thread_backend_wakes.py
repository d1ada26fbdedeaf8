"""The thread backend's hand-offs (``_backends._threads`` module docstring, issue 9): workers
park on futex parkers and are woken after the backend lock without the GIL; a lone port-bound
request whose issuer is a thread of that port wakes nobody while an idle worker watches (the
issuer runs it at its next GetQueuedCompletionStatus); a watching worker recovers one whose
issuer never waits; waiters ended by a worker's delivery are woken after the dispatcher lock
(``_kernel._parker.defer_wakes``). Pinned by counts, never by timing; every wait is bounded.
"""

from __future__ import annotations

import mmap
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from winaio._backends import _threads
from winaio._backends._threads import ThreadBackend
from winaio._backends.uring.lead import RingParker
from winaio._io._backend import IdleWork
from winaio._io._issue import start
from winaio._io._ops import FileReadOp, FileWriteOp
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._io._port import CompletionPort
from winaio._kernel._dispatcher import LOCK, wake_thread
from winaio._kernel._objects import Event
from winaio._kernel._parker import (
    AVAILABLE,
    WorkerParker,
    bind,
    defer_wakes,
    deferral,
    flush_wakes,
)
from winaio._kernel._threads import current_thread_state
from winaio._kernel._wait import sleep as sleep_ex
from winaio._kernel._wait import wait_for_one
from winaio.codes import NtStatus
from winaio.testing import wait_until

SUCCESS = int(NtStatus.STATUS_SUCCESS)
LONG = 10.0

needs_futex = pytest.mark.skipif(not AVAILABLE, reason="no futex syscall number for this CPU")


@pytest.fixture
def backend() -> Iterator[ThreadBackend]:
    b = ThreadBackend(workers=2)
    try:
        yield b
    finally:
        b.close()


def _write(f: Any, i: int) -> FileWriteOp:
    op = FileWriteOp(f, Overlapped(64 * i), [memoryview(b"w" * 64)], 64 * i)
    assert start(op) == STATUS_PENDING
    return op


def _loop(f: Any, port: CompletionPort, count: int, first: int = 0) -> None:
    for i in range(first, first + count):
        _write(f, i)
        packet = port.get(None)
        assert packet is not None and (packet.status, packet.bytes_transferred) == (SUCCESS, 64)


def test_a_port_loop_wakes_no_worker_per_request(
    backend: ThreadBackend,
    tmp_path: Path,
    kit: Any,
    bound_file: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A watcher that never ticks during the test: the count is exact, not a race with ticks.
    monkeypatch.setattr(_threads, "WATCH", LONG)
    f, port = bound_file(backend)
    _loop(f, port, 300)
    counters = backend.counters()
    # Before (a SimpleQueue of requests): every request woke a worker that found nothing -
    # 300 wake-ups. Now: the first request (the issuer not yet a port thread) and the one that
    # made a worker the watcher.
    assert counters["worker_wakes"] <= 5, counters
    assert counters["watch_ticks"] == 0 and counters["watch_takes"] == 0, counters


def test_a_request_its_issuer_never_waits_for_is_taken_by_the_watcher(
    backend: ThreadBackend, tmp_path: Path, kit: Any, bound_file: Callable[..., Any]
) -> None:
    f, port = bound_file(backend)
    _loop(f, port, 3)  # a port thread now
    with backend._lock:
        backend._files += 1  # as if a request were outstanding: the watcher keeps ticking
    try:
        wait_until(lambda: backend._watcher is not None and backend._watcher in backend._idle, LONG)
        wakes = backend.counters()["worker_wakes"]
        op = _write(f, 10)  # lone, port-bound, issued by a port thread: it wakes nobody ...
        assert backend.counters()["worker_wakes"] == wakes
        # ... and this thread never waits on the port: the watcher's tick runs it.
        wait_until(lambda: op.done, LONG, "a request nobody waited for never ran")
        assert backend.counters()["watch_takes"] >= 1
    finally:
        with backend._lock:
            backend._files -= 1
    packet = port.get(0)
    assert packet is not None and packet.status == SUCCESS


def _quiescent(backend: ThreadBackend) -> Callable[[], bool]:
    def check() -> bool:
        with backend._lock:
            return backend._watcher is None and len(backend._idle) == len(backend._workers)

    return check


def test_nothing_outstanding_nothing_ticks(
    backend: ThreadBackend, tmp_path: Path, kit: Any, bound_file: Callable[..., Any]
) -> None:
    f, port = bound_file(backend)
    _loop(f, port, 50)
    # At most a tick after the last request, the watcher stops (an idle process uses no CPU).
    # Quiescent means every worker parked and none watching: ``_watcher`` is also None for a
    # moment while the watcher runs the last request, after which it may watch one more tick.
    wait_until(_quiescent(backend), LONG)
    ticks = backend.counters()["watch_ticks"]
    time.sleep(0.05)  # 50 ticks' worth of time
    assert backend.counters()["watch_ticks"] == ticks
    assert backend._files == 0


def test_requests_that_are_not_lone_or_not_port_bound_wake_a_worker(
    backend: ThreadBackend, tmp_path: Path, kit: Any, bound_file: Callable[..., Any]
) -> None:
    f, port = bound_file(backend)
    _loop(f, port, 3)
    wait_until(lambda: len(backend._idle) == 2, LONG)
    wakes = backend.counters()["worker_wakes"]
    ops = [_write(f, 20 + i) for i in range(2)]  # the second one is not lone
    assert backend.counters()["worker_wakes"] == wakes + 1
    for _ in ops:
        assert port.get(LONG) is not None


def _in_fresh_thread(body: Any) -> None:
    """Run ``body`` on a new thread (its parker still the kernel's original lock: this test
    process's main thread may lead an io_uring ring already)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            body()
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(LONG * 3)
    assert not thread.is_alive()
    if errors:
        raise errors[0]


@needs_futex
def test_a_waiter_ended_by_a_worker_is_woken_after_the_lock(
    backend: ThreadBackend, tmp_path: Path, kit: Any, bound_file: Callable[..., Any]
) -> None:
    f, port = bound_file(backend)

    def body() -> None:
        ts = current_thread_state()
        _write(f, 0)
        assert ts.parker.__class__ is WorkerParker  # bound by the issue (``_parker.bind``)
        assert port.get(LONG) is not None
        for i in range(1, 30):
            _write(f, i)
            # A wait with a timeout runs nothing itself: a worker runs the request and its
            # delivery ends this wait; the wake-up is deferred past the dispatcher lock.
            packet = port.get(LONG)
            assert packet is not None and packet.status == SUCCESS

    _in_fresh_thread(body)
    assert backend.counters()["deferred_wakes"] >= 1, backend.counters()


@needs_futex
def test_deferred_wakes_wake_after_the_flush() -> None:
    parker = WorkerParker()
    got: list[bool] = []
    thread = threading.Thread(target=lambda: got.append(parker.acquire(True, LONG)))
    thread.start()
    wait_until(lambda: parker.sleeping, LONG)
    previous = defer_wakes()
    try:
        with LOCK:
            parker.release()  # the token is given; the syscall is collected
        assert got == []
    finally:
        woken = flush_wakes(previous)
    assert woken == 1
    thread.join(LONG)
    assert got == [True]
    assert flush_wakes(defer_wakes()) == 0  # nothing collected: nothing to do


@needs_futex
def test_bind_keeps_an_outstanding_token() -> None:
    result: list[Any] = []

    def body() -> None:
        ts = current_thread_state()
        with LOCK:
            wake_thread(ts)  # a token nobody took yet (a late wake-up)
        assert bind(ts)
        parker = ts.parker
        result.append((parker.__class__, parker.acquire(False), parker.acquire(False)))
        assert not bind(ts)  # already a futex parker

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(LONG)
    assert result == [(WorkerParker, True, False)]


def test_without_futex_parkers_the_workers_keep_locks(
    tmp_path: Path, kit: Any, bound_file: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_threads, "FUTEX_PARKERS", False)
    b = ThreadBackend(workers=2)
    try:
        f, port = bound_file(b)
        _loop(f, port, 20)
        ops = [_write(f, 100 + i) for i in range(8)]
        for _ in ops:
            assert port.get(LONG) is not None
        wait_until(lambda: len(b._idle) == 2, LONG)
        assert all(p.__class__ is _threads._LockParker for p in b._idle)
        f.close()
        port.close()
    finally:
        b.close()


class _Wrapping:
    """A parker that wraps the thread's original lock as ``lock`` (as ``RingParker`` does)."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return bool(self.lock.acquire(blocking, timeout))

    def release(self) -> None:
        self.lock.release()


@needs_futex
def test_bind_swaps_the_lock_a_wrapping_parker_keeps() -> None:
    result: list[Any] = []

    def body() -> None:
        ts = current_thread_state()
        with LOCK:
            wrapper = _Wrapping(ts.parker)
            ts.parker = wrapper
            wake_thread(ts)  # an outstanding token, given through the wrapper
        assert bind(ts)
        result.append((ts.parker is wrapper, wrapper.lock.__class__, wrapper.acquire(False)))

    _in_fresh_thread(body)
    assert result == [(True, WorkerParker, True)]


class _Lead:
    """The part of a Leadership a parker's release uses: ``owner`` (None: the release records
    the parker as ``claimant``, ``Leadership.claim``), the poke."""

    def __init__(self) -> None:
        self.pokes = 0
        self.owner: object = None
        self.claimant: object = None

    def poke(self) -> None:
        self.pokes += 1


def test_a_ring_leaders_poke_is_deferred_with_the_wakes() -> None:
    ts = current_thread_state()
    lead = _Lead()
    inner = threading.Lock()
    inner.acquire()
    parker = RingParker(ts, inner, lead)  # type: ignore[arg-type]
    parker.in_kernel = True  # its thread sleeps in io_uring_enter
    previous = defer_wakes()
    try:
        with LOCK:
            parker.release()
        assert lead.pokes == 0  # the token is given; the poke waits for the lock's release
    finally:
        assert flush_wakes(previous) == 1
    assert lead.pokes == 1 and inner.acquire(False)
    with LOCK:
        parker.release()  # no deferral: poked at once, as before
    assert lead.pokes == 2


class _FakeParker:
    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


def test_a_burst_wakes_one_idle_worker_which_wakes_the_next(tmp_path: Path, kit: Any) -> None:
    b = ThreadBackend(workers=0)
    try:
        f = kit.file(b, tmp_path / "f")
        fakes = [_FakeParker() for _ in range(4)]
        b._idle.extend(fakes)  # four idle workers (that never run: the logic alone)
        ops = [_write(f, i) for i in range(8)]
        # Before: one wake-up per submit while idle workers were left - four.
        assert [p.wakes for p in fakes] == [0, 0, 0, 1]
        assert b.counters()["worker_wakes"] == 1 and b._woken == {fakes[3]}
        with b._lock:  # the woken worker looks: it takes the head and wakes the next
            b._woken.discard(fakes[3])
            op, chain = b._take_locked(fakes[3])
        assert op is ops[0] and chain is fakes[2] and b._woken == {fakes[2]}
        assert b.counters()["chain_wakes"] == 1
        with b._lock:  # one on its way already: nobody else is woken
            op, chain = b._take_locked(fakes[3])
        assert op is ops[1] and chain is None
        with b._lock:
            for taken in (ops[0], ops[1]):
                taken.token = "queued"  # back to queued: the close cancels them too
                b._queue.appendleft(taken)
                IdleWork.queued += 1
    finally:
        b.close()
    assert IdleWork.queued == 0


def test_a_burst_wakes_one_worker_and_the_workers_wake_each_other(
    tmp_path: Path, kit: Any, bound_file: Callable[..., Any]
) -> None:
    b = ThreadBackend(workers=4)
    try:
        f, port = bound_file(b)
        gate = threading.Event()
        ran: list[str] = []

        class _Held(FileWriteOp):
            __slots__ = ()

            def run_blocking(self) -> tuple[int, int]:
                ran.append(threading.current_thread().name)
                gate.wait(LONG)  # every worker busy at once: the burst spreads over all four
                return super().run_blocking()

        wait_until(lambda: len(b._idle) == 4, LONG)
        for i in range(8):
            op = _Held(f, Overlapped(64 * i), [memoryview(b"b" * 64)], 64 * i)
            assert start(op) == STATUS_PENDING
        # Each of the four was woken once, by the issuer or by another worker (how many by
        # which depends on when each runs: the exact split is pinned below, without threads).
        wait_until(lambda: len(set(ran)) == 4, LONG)
        counters = b.counters()
        assert counters["worker_wakes"] + counters["chain_wakes"] == 4, counters
        gate.set()
        for _ in range(8):
            packet = port.get(LONG)
            assert packet is not None and packet.status == SUCCESS
        f.close()
        port.close()
    finally:
        b.close()


class _Probe(FileReadOp):
    """A read that, delivered by a worker with its wakes deferred, adds a wake of its own:
    by the time the wakes are made, is the request (its pinned buffer) still alive?"""

    __slots__ = ()
    alive_at_wake: ClassVar[list[bool]] = []
    #: Set once the issuer dropped its reference: a worker woken at once by the submit could
    #: otherwise deliver while the issuer's own frame (still in ``start``) holds the request.
    dropped: ClassVar[threading.Event] = threading.Event()

    def run_blocking(self) -> tuple[int, int]:
        assert self.dropped.wait(LONG)
        return super().run_blocking()

    def complete(self, status: int, information: int) -> None:
        super().complete(status, information)
        wakes = deferral.wakes
        if wakes is not None:
            me = weakref.ref(self)
            seen = self.alive_at_wake  # (not ``self`` in the closure: it would keep it alive)
            wakes.append(lambda: seen.append(me() is not None))


def test_a_request_is_dropped_before_its_waiter_is_woken(
    backend: ThreadBackend, tmp_path: Path, bound_file: Callable[..., Any]
) -> None:
    # The waiter is woken without the GIL: it may run before the worker goes on, and free the
    # request's buffer at once (tests/win32/test_overlapped_offset.py closes its mmap right
    # after the dequeue: BufferError while the worker still held the request).
    (tmp_path / "f").write_bytes(b"r" * 4096)
    f, port = bound_file(backend, direct=True)  # reads that pend
    _Probe.alive_at_wake = []

    def body() -> None:
        for i in range(50):
            mem = mmap.mmap(-1, 4096)
            view = memoryview(mem)
            _Probe.dropped.clear()
            op = _Probe(f, Overlapped(0), [view], 0)
            assert start(op) == STATUS_PENDING
            del op
            _Probe.dropped.set()
            packet = port.get(LONG)  # (a timed wait: a worker runs the read)
            assert packet is not None and packet.status == SUCCESS, i
            view.release()
            mem.close()  # BufferError if anything still pins it

    _in_fresh_thread(body)
    assert _Probe.alive_at_wake and not any(_Probe.alive_at_wake)


def test_a_ring_leader_with_nothing_on_the_ring_parks_plainly(
    armed_uring: Any, tmp_path: Path, bound_file: Callable[..., Any]
) -> None:
    # A thread that led an io_uring ring, then waits with nothing in flight there (thread
    # backend I/O, an event another thread sets): it parks on its kept lock, woken by a futex
    # rather than led in io_uring_enter and poked, and gives the ring back to the eventfd.
    b = armed_uring
    lead = b._lead
    (tmp_path / "f").write_bytes(b"u" * 4096)
    f, port = bound_file(b, direct=True)
    event = Event(manual_reset=False)
    seen: dict[str, Any] = {}

    def body() -> None:
        mem = mmap.mmap(-1, 4096)
        view = memoryview(mem)
        op = FileReadOp(f, Overlapped(0), [view], 0)
        assert start(op) == STATUS_PENDING
        del op
        assert port.get(LONG) is not None  # led the ring for its own read: the owner now
        ts = current_thread_state()
        seen["parker"] = ts.parker.__class__
        seen["owner_before"] = lead.owner is ts.parker
        # Woken by another thread's token with nothing on the ring: the owner gives it back.
        threading.Timer(0.05, event.set).start()
        seen["first"] = wait_for_one(event, LONG, False)
        seen["owner_after"] = lead.owner
        leads, waits = lead.leads, lead.waits
        threading.Timer(0.05, event.set).start()
        seen["result"] = wait_for_one(event, LONG, False)  # parks on its kept lock
        seen["led"] = (lead.leads - leads, lead.waits - waits)
        view.release()
        mem.close()

    _in_fresh_thread(body)
    assert seen["parker"] is RingParker and seen["owner_before"]
    assert seen["first"] == 0 and seen["result"] == 0
    assert seen["owner_after"] is None
    assert seen["led"] == (0, 0), seen  # before: it led the ring and slept in the kernel


@pytest.fixture
def lazy_port(
    backend: ThreadBackend,
    tmp_path: Path,
    kit: Any,
    bound_file: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Any, CompletionPort]]:
    """A file bound to a port whose thread (this one) issues lone requests that wake nobody:
    an idle worker watches, on a tick that never comes during the test (``WATCH`` = LONG), so
    a request taken before the wait's end was handed on by the park, not by a tick."""
    monkeypatch.setattr(_threads, "WATCH", LONG)
    f, port = bound_file(backend)
    _loop(f, port, 3)  # a port thread now
    wait_until(lambda: backend._watcher is not None and backend._watcher in backend._idle, LONG)
    yield f, port


def _lone(backend: ThreadBackend, f: Any, i: int) -> FileWriteOp:
    """Issue a lone request that wakes nobody (left to this thread's next port wait)."""
    before = backend.counters()
    op = _write(f, i)
    after = backend.counters()
    assert after["worker_wakes"] == before["worker_wakes"] and not op.done
    assert current_thread_state().on_block is not None
    return op


def _handed_on_by_the_park(backend: ThreadBackend, parks: int) -> None:
    counters = backend.counters()
    assert counters["park_wakes"] == parks, counters
    assert counters["watch_ticks"] == 0 and counters["watch_takes"] == 0, counters


def test_a_lone_request_whose_issuer_waits_elsewhere_is_handed_to_a_worker(
    backend: ThreadBackend, lazy_port: tuple[Any, CompletionPort]
) -> None:
    # Before: the issuer blocked in WaitForSingleObject (here on the port itself, signaled
    # while packets are queued: it dequeues nothing) and its request waited for the watcher's
    # next tick; now the wait's block() wakes a worker for it before it parks.
    f, port = lazy_port
    _lone(backend, f, 10)
    assert wait_for_one(port, LONG, False) == 0  # the packet came while this thread waited
    assert current_thread_state().on_block is None
    _handed_on_by_the_park(backend, 1)
    packet = port.get(0)
    assert packet is not None and packet.status == SUCCESS


def test_a_lone_request_whose_issuer_waits_on_its_port_with_a_timeout_is_handed_on(
    backend: ThreadBackend, lazy_port: tuple[Any, CompletionPort]
) -> None:
    # A timed GetQueuedCompletionStatus runs nothing itself (only an untimed one does).
    f, port = lazy_port
    _lone(backend, f, 11)
    packet = port.get(LONG)
    assert packet is not None and packet.status == SUCCESS
    _handed_on_by_the_park(backend, 1)


def test_a_lone_request_whose_issuer_exits_is_handed_on(
    backend: ThreadBackend, lazy_port: tuple[Any, CompletionPort]
) -> None:
    # Port-bound I/O outlives its issuer (spec §8); nobody will wait for it in that thread.
    f, port = lazy_port
    issued: list[FileWriteOp] = []

    def issue() -> None:
        assert port.get(0) is None  # a thread of the port
        issued.append(_lone(backend, f, 12))

    thread = threading.Thread(target=issue)
    thread.start()
    thread.join(LONG)
    assert issued
    packet = port.get(LONG)
    assert packet is not None and packet.overlapped is issued[0].overlapped
    _handed_on_by_the_park(backend, 1)


def test_a_lone_request_its_issuer_runs_itself_hands_nothing_on(
    backend: ThreadBackend, lazy_port: tuple[Any, CompletionPort]
) -> None:
    # The untimed port wait runs the request itself (``IdleWork``); the hook left set finds
    # nothing queued at the next park and wakes nobody.
    f, port = lazy_port
    _lone(backend, f, 13)
    packet = port.get(None)
    assert packet is not None and packet.status == SUCCESS
    event = Event(manual_reset=True)
    event.set()
    assert wait_for_one(event, LONG, False) == 0  # not a park: the hook stays
    assert sleep_ex(0.001, False) == 0  # parks: the hook runs, finds nothing
    assert current_thread_state().on_block is None
    _handed_on_by_the_park(backend, 0)
