"""A Ctrl-C landing right after a lock is acquired leaves no lock held.

CPython runs a signal handler (SIGINT's KeyboardInterrupt) where it checks for signals: at
the end of a call, among other points. After ``lock.acquire(); try:`` the first such point is
the end of the ``acquire()`` call itself, before the ``try``: the exception left the lock held,
and every later user of it (the dispatcher lock: every thread of the process) hung. ``with
lock:`` checks only inside its block, whose exit releases the lock: every path a caller's own
thread takes uses it (``_kernel._dispatcher.acquire_lock``).

Each case stages the interrupt deterministically (``winaio.testing.interrupt_after_acquire``:
the lock held by a helper until the main thread blocks on it at that site, the SIGINT flag
tripped without interrupting the wait, then the lock released) and checks that the interrupt
came out, that the lock is free, and that the state the call touched is consistent (no wait
left registered, no request lost). Every case failed (the lock leaked) before the change.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from winaio._backends._reactor import StreamReactor
from winaio._backends._threads import ThreadBackend
from winaio._io import _port
from winaio._io._backend import IdleWork
from winaio._io._files import FileObject
from winaio._io._issue import start, submit_pending_file
from winaio._io._kernel_events import PY_EVENT_SET
from winaio._io._ops import FileWriteOp
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._io._port import CompletionPort
from winaio._kernel import _apc, _objects, _wait
from winaio._kernel._dispatcher import LOCK
from winaio._kernel._objects import Event, Mutex, Semaphore
from winaio._kernel._threads import current_thread_state
from winaio._pool._pool import ThreadPool
from winaio.codes import NtStatus
from winaio.testing import Interrupted, interrupt_after_acquire, wait_until

SUCCESS = int(NtStatus.STATUS_SUCCESS)
LONG = 5.0

pytestmark = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signals are handled on the main thread only",
)


def _interrupted(result: Interrupted) -> None:
    assert isinstance(result.raised, KeyboardInterrupt), result
    assert not result.leaked, "the lock stayed held after the interrupt"


def test_set_event() -> None:
    event = Event(manual_reset=True)
    # (the Python method, the reference: the C one, installed on the class, is covered by
    # tests/win32/test_fastevent.py)
    _interrupted(interrupt_after_acquire(LOCK, lambda: PY_EVENT_SET(event), PY_EVENT_SET))
    event.set()  # the lock is usable; the event works
    assert event.is_set()


def test_queue_user_apc() -> None:
    ts = current_thread_state()
    ran: list[int] = []
    _interrupted(
        interrupt_after_acquire(
            LOCK, lambda: _apc.queue_user_apc(ts, ran.append, (1,)), _apc.queue_user_apc
        )
    )
    _apc.run_apcs(ts)  # queued or not: nothing is left half-queued
    assert ran in ([], [1])


def test_wait_registration() -> None:
    ts = current_thread_state()
    event = Event(manual_reset=True)
    _interrupted(
        interrupt_after_acquire(
            LOCK, lambda: _wait.wait_for_one(event, LONG, False), _wait.wait_for_one
        )
    )
    assert ts.wait is None and not event._waiters  # no wait left registered


def test_multiple_object_wait_registration() -> None:
    ts = current_thread_state()
    events = (Event(manual_reset=True), Event(manual_reset=True))
    _interrupted(
        interrupt_after_acquire(
            LOCK,
            lambda: _wait.wait_for_objects(events, False, LONG, False),
            _wait.wait_for_objects,
        )
    )
    assert ts.wait is None and not events[0]._waiters and not events[1]._waiters


def test_a_wait_that_wakes_and_retakes_the_lock() -> None:
    # The wait registers, parks, times out, then takes the lock again to end: there.
    ts = current_thread_state()
    event = Event(manual_reset=True)
    _interrupted(
        interrupt_after_acquire(
            LOCK,
            lambda: _wait.wait_for_one(event, 0.05, False),
            _wait.block,
            markers=("with LOCK",),
            ready=lambda: ts.wait is not None,
        )
    )
    assert ts.wait is None and not event._waiters and not ts.wake_pending


def test_port_wait() -> None:
    port = CompletionPort()
    # (a timed wait: the Python method, also where its C accelerator is installed)
    _interrupted(interrupt_after_acquire(LOCK, lambda: port.get(LONG), _port._PY_GET_MANY))
    assert not port._getters
    port.post(1, "k")
    packet = port.get(0)  # the port still works, and this thread with it
    assert packet is not None and packet.key == "k"
    port.close()


def test_pool_submit() -> None:
    pool = ThreadPool(max_threads=1)
    try:
        done = threading.Event()
        _interrupted(
            interrupt_after_acquire(LOCK, lambda: pool.submit(done.set), ThreadPool.submit)
        )
        pool.submit(done.set)
        assert done.wait(LONG)
    finally:
        pool.close()


@pytest.fixture
def threads_file(tmp_path: Path) -> Iterator[tuple[ThreadBackend, Any, CompletionPort]]:
    backend = ThreadBackend(workers=2)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
    f = FileObject(fd, overlapped=True, seekable=True, backend=backend)
    port = CompletionPort()
    f.associate(port, "f")
    try:
        yield backend, f, port
    finally:
        f.close()
        port.close()
        backend.close()
    assert IdleWork.queued == 0


def test_thread_backend_submit(threads_file: tuple[ThreadBackend, Any, CompletionPort]) -> None:
    backend, f, port = threads_file
    op = FileWriteOp(f, Overlapped(0), [memoryview(b"w" * 64)], 0)
    # Through the backend alone (the I/O layer's registration comes first and is its own).
    _interrupted(
        interrupt_after_acquire(backend._lock, lambda: backend.submit(op), ThreadBackend.submit)
    )
    if op in backend._in_flight:  # got in before the interrupt: it completes
        assert op in backend._queue or op.done
    second = FileWriteOp(f, Overlapped(64), [memoryview(b"x" * 64)], 64)
    assert start(second) == STATUS_PENDING  # the backend still takes requests
    assert port.get(LONG) is not None


def test_pending_file_registration(
    threads_file: tuple[ThreadBackend, Any, CompletionPort],
) -> None:
    _, f, port = threads_file
    op = FileWriteOp(f, Overlapped(0), [memoryview(b"w" * 64)], 0)
    _interrupted(
        interrupt_after_acquire(LOCK, lambda: submit_pending_file(op), submit_pending_file)
    )
    # Registered (then it went on to the backend and completes) or not (nothing to do).
    registered = op.registered or op.done
    second = FileWriteOp(f, Overlapped(64), [memoryview(b"x" * 64)], 64)
    assert start(second) == STATUS_PENDING
    expected = {id(second.overlapped)} | ({id(op.overlapped)} if registered else set())
    got = set()
    for _ in expected:
        packet = port.get(LONG)
        assert packet is not None and packet.status == SUCCESS
        got.add(id(packet.overlapped))
    assert got == expected


def test_thread_backend_reactor_command(
    threads_file: tuple[ThreadBackend, Any, CompletionPort],
) -> None:
    # The interrupt lands once the command is queued and the wake-up marked pending: before,
    # the eventfd was never written, and no later command woke the reactor either.
    backend, f, _ = threads_file
    reactor = backend._reactor
    op = FileWriteOp(f, Overlapped(0), [memoryview(b"w" * 64)], 0)  # (in no queue: a no-op)
    _interrupted(
        interrupt_after_acquire(
            reactor._lock, lambda: reactor.post("cancel", op), StreamReactor.post
        )
    )
    wait_until(lambda: not reactor._commands and not reactor._wake_pending, LONG)


# ------------------------------------------------------------ an interrupt as the waiters wake
# The object is signaled, then ``wake_waiters`` walks its waiters: a Ctrl-C at its entry (where
# CPython checks for signals) used to leave the object signaled and its waiters asleep until
# their time-out. The walk is finished before the interrupt goes on.


class _Stop(BaseException):
    """Stands for KeyboardInterrupt."""


def _interrupt_the_wake(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    real = _objects.wake_waiters
    calls: list[int] = []

    def interrupted(obj: Any) -> None:
        calls.append(1)
        monkeypatch.setattr(_objects, "wake_waiters", real)  # once
        raise _Stop

    monkeypatch.setattr(_objects, "wake_waiters", interrupted)
    return calls


@pytest.mark.parametrize("kind", ["event", "semaphore", "mutex"])
def test_an_interrupt_waking_the_waiters_leaves_none_asleep(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    obj: Any
    if kind == "event":
        obj = Event(manual_reset=True)
        # (the Python method: the C one wakes a lone plain waiter itself, without the walk)
        signal: Any = lambda: PY_EVENT_SET(obj)  # noqa: E731
    elif kind == "semaphore":
        obj = Semaphore(0, 1)
        signal = lambda: obj.release(1)  # noqa: E731
    else:
        obj = Mutex(initial_owner=True)
        signal = obj.release
    results: list[int] = []
    waiter = threading.Thread(target=lambda: results.append(_wait.wait_for_one(obj, LONG, False)))
    waiter.start()
    wait_until(lambda: len(obj._waiters) == 1, LONG)
    calls = _interrupt_the_wake(monkeypatch)
    with pytest.raises(_Stop):
        signal()
    assert calls == [1]
    waiter.join(LONG * 2)
    assert results == [0]  # woken by the signal, not by its time-out
