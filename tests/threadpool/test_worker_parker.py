"""The pool workers' parker (``_kernel._parker.WorkerParker``): a futex-based binary semaphore
with ``threading.Lock``'s parker semantics, and the submit hand-off that wakes a worker after
dropping the dispatcher lock (``ThreadPool._handoff_locked``).

Internal names are used to reach the parker; every blocking step is bounded.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import winaio
from winaio._kernel._dispatcher import LOCK
from winaio._kernel._parker import AVAILABLE, WorkerParker
from winaio._kernel._threads import current_thread_state
from winaio._pool import _worker

from .conftest import LONG, SHORT

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="no futex syscall number for this CPU")


def test_token_semantics() -> None:
    parker = WorkerParker()
    assert not parker.acquire(False)  # no token yet
    parker.release()
    parker.release()  # extra releases collapse into one token (wake_pending allows one)
    assert parker.acquire(False)
    assert not parker.acquire(False)
    parker.wake()
    assert parker.acquire(True, SHORT)
    start = time.monotonic()
    assert not parker.acquire(True, SHORT)  # a timed wait that nobody ends
    assert time.monotonic() - start >= SHORT * 0.9
    assert not parker.acquire(True, 0)


def test_a_waiting_parker_sleeps_in_the_kernel() -> None:
    # Regression: the futex address once travelled as a truncated 32-bit int; FUTEX_WAIT then
    # failed at once (EFAULT) and every idle worker spun, burning a CPU.
    parker = WorkerParker()
    used: list[float] = []

    def waiter() -> None:
        start = time.thread_time()
        assert not parker.acquire(True, 0.3)
        used.append(time.thread_time() - start)

    thread = threading.Thread(target=waiter)
    thread.start()
    thread.join(LONG)
    assert used and used[0] < 0.05, f"{used} CPU seconds in a 0.3 s wait"


def test_an_idle_pool_uses_no_cpu(make_pool: Any) -> None:
    pool = make_pool(max_threads=4, min_threads=4)
    _idle(pool, 4)
    start = time.process_time()  # every thread of the process
    time.sleep(0.3)
    assert time.process_time() - start < 0.1


@pytest.mark.parametrize("how", ["release", "wake"])
def test_a_blocked_acquire_is_woken(how: str) -> None:
    parker = WorkerParker()
    got: list[bool] = []
    entered = threading.Event()

    def waiter() -> None:
        entered.set()
        got.append(parker.acquire(True, LONG))

    thread = threading.Thread(target=waiter)
    thread.start()
    assert entered.wait(LONG)
    deadline = time.monotonic() + LONG
    while not parker.sleeping and time.monotonic() < deadline:
        time.sleep(0.001)  # until it is in FUTEX_WAIT (or about to be)
    getattr(parker, how)()
    thread.join(LONG)
    assert got == [True]
    assert not parker.acquire(False)  # the token was consumed


def test_an_untimed_acquire_sees_a_token_given_before_it_slept() -> None:
    # The release that finds ``sleeping`` False skips the syscall: the word alone carries it.
    parker = WorkerParker()
    parker.wake()
    done = threading.Event()
    thread = threading.Thread(target=lambda: (parker.acquire(), done.set()))
    thread.start()
    assert done.wait(LONG)
    thread.join(LONG)


def test_pool_workers_park_on_worker_parkers(make_pool: Any) -> None:
    pool = make_pool(max_threads=2, min_threads=2)
    ready = winaio.Semaphore(0, 2)
    hold = winaio.Event(manual_reset=True)
    kinds: list[type] = []

    def probe() -> None:
        kinds.append(type(current_thread_state().parker))
        ready.release()
        winaio.wait(hold, LONG)  # both workers busy at once: each probe runs on its own

    pool.submit(probe)
    pool.submit(probe)
    for _ in range(2):
        assert winaio.wait(ready, LONG).signaled
    hold.set()
    assert kinds == [WorkerParker, WorkerParker]


def _idle(pool: winaio.ThreadPool, workers: int) -> None:
    deadline = time.monotonic() + LONG
    while len(pool.port._getters) < workers:  # every worker back waiting on the port
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_handoff_runs_each_callback_once(make_pool: Any) -> None:
    # Idle workers waiting on the port: each submit hands its token to one of them (LIFO) and
    # wakes it after the lock; whichever runs first takes the oldest callback.
    pool = make_pool(max_threads=4, min_threads=4, concurrency=4)
    seen: list[int] = []
    done = winaio.Semaphore(0, 3)

    def record(i: int) -> None:
        with LOCK:
            seen.append(i)
        done.release()

    for _ in range(20):
        seen.clear()
        _idle(pool, 4)
        for i in range(3):
            pool.submit(record, i)
        for _ in range(3):
            assert winaio.wait(done, LONG).signaled
        assert sorted(seen) == [0, 1, 2]
        assert not winaio.wait(done, 0).signaled  # none ran twice


def test_a_stray_token_is_a_spurious_wakeup(make_pool: Any) -> None:
    # A token that arrives after its wait ended (a hand-off's wake-up racing the worker's
    # timeout) only ends the worker's next wait early; that wait goes on: nothing runs twice,
    # nothing is lost, and the pool still closes.
    pool = make_pool(max_threads=1, min_threads=1)
    runs: list[int] = []
    done = winaio.Semaphore(0, 10)

    def record(i: int) -> None:
        runs.append(i)
        done.release()

    pool.submit(record, 0)
    assert winaio.wait(done, LONG).signaled
    _idle(pool, 1)
    (worker,) = pool._workers
    parker = worker._state.parker
    assert isinstance(parker, WorkerParker)
    parker.wake()  # the worker wakes, finds its wait not ended, and waits again
    assert not winaio.wait(done, SHORT).signaled
    _idle(pool, 1)
    for i in range(1, 4):
        pool.submit(record, i)
    for _ in range(3):
        assert winaio.wait(done, LONG).signaled
    assert runs == [0, 1, 2, 3]


def test_close_wakes_a_worker_whose_handoff_wakeup_was_lost(make_pool: Any) -> None:
    # The hand-off's wake-up comes after the dispatcher lock; a submitter interrupted between
    # the two (KeyboardInterrupt) never gives it. close() wakes such workers again: the queued
    # callback runs and close() joins instead of waiting forever.
    pool = make_pool(max_threads=1, min_threads=1, idle_timeout=60.0)
    _idle(pool, 1)
    ran = winaio.Event(manual_reset=True)
    with LOCK:
        pool._queues[1].append((ran.set, ()))
        parker = pool._handoff_locked(pool.port)
    assert isinstance(parker, WorkerParker)  # not woken: as if the submitter was interrupted
    assert not winaio.wait(ran, SHORT).signaled
    start = time.monotonic()
    pool.close()
    assert time.monotonic() - start < LONG / 2  # not the worker's idle timeout
    assert ran.is_set()
    assert pool.thread_count == 0


class _InPlaceParker:
    """A parker that, armed, ends its thread's port wait *in place* (what the io_uring ring
    leader does when it reaps the completion its own wait is for: ``_dispatcher.Parker``):
    ``awake_in_wait`` set, a packet posted to the port under the lock, the wait tested."""

    def __init__(self, inner: Any, port: winaio.CompletionPort, key: Any) -> None:
        self.inner, self.port, self.key = inner, port, key
        self.armed = False
        self.ended_in_place = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        ts = current_thread_state()
        if self.armed and ts.wait is not None:
            self.armed = False
            ts.awake_in_wait = True
            with LOCK:
                self.port._post_locked(self.key, None, 0, 7)
            ts.awake_in_wait = False
            if ts.wait is None:  # ended by this very post: no token given
                self.ended_in_place += 1
                return False
        return bool(self.inner.acquire(blocking, timeout))

    def release(self) -> None:
        self.inner.release()


def test_a_worker_wait_ended_in_place_returns_without_the_lock(
    make_pool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = make_pool(max_threads=1, min_threads=1)
    port = pool.port
    got: list[tuple[Any, int]] = []
    done = threading.Event()
    counted = {"n": 0, "on": False}
    real_acquire = _worker._acquire

    def counting_acquire(*args: Any) -> Any:
        if counted["on"] and threading.current_thread() is worker_thread[0]:
            counted["n"] += 1
        return real_acquire(*args)

    monkeypatch.setattr(_worker, "_acquire", counting_acquire)

    class Key:
        def _on_packet(self, packet: Any, ts: Any) -> None:
            counted["on"] = False
            got.append((packet.key, packet.bytes_transferred))
            done.set()

    key = Key()
    worker_thread: list[threading.Thread] = []
    parkers: list[_InPlaceParker] = []

    def install() -> None:
        ts = current_thread_state()
        worker_thread.append(threading.current_thread())
        with LOCK:  # in none of its waits, under the lock: the kernel allows the swap
            parker = _InPlaceParker(ts.parker, port, key)
            ts.parker = parker
        parkers.append(parker)
        parker.armed = True
        counted["on"] = True  # from here to the packet's callback: the worker's next wait

    pool.submit(install)
    assert done.wait(LONG)
    assert got == [(key, 7)] and parkers[0].ended_in_place == 1
    # One hold of the dispatcher lock: the wait's registration. (Before: a second one to
    # end the wait the parker had already ended.)
    assert counted["n"] == 1
    # The worker goes on serving tokens through the wrapped parker.
    ran = threading.Event()
    pool.submit(ran.set)
    assert ran.wait(LONG)
