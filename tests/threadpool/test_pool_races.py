"""Races between a pool's worker accounting and ``close()``, forced deterministically.

Each test drives one interleaving with kernel events (no sleeps, no timing): the threads that
would race are parked at the exact point where the other side must act. Internal names are used
only to hold a thread at that point and to read the pool's worker count.

Regression (CI hang in ``test_wait_on_threads_timers_calls_and_ports``): a signaller satisfies a
pool wait under the dispatcher lock, the pool counts one more worker and asks the wait thread to
start it (a thread cannot be started under the lock); when the pool closed before the wait
thread got to it, the wait thread exited without starting it, ``thread_count`` stayed 1 with no
thread behind it, and ``close()`` spun forever waiting for it.
"""

from __future__ import annotations

import threading
from typing import Any

import winaio
from winaio._kernel._dispatcher import LOCK

LONG = 5.0


class _StopProbe:
    """An item armed on the pool's wait thread whose only job is to tell when the pool's close
    has stopped the wait thread's items (its ``_stop_locked`` runs then, under the lock)."""

    _window = 0.0

    def __init__(self) -> None:
        self._gen = 0
        self.stopped = winaio.Event(manual_reset=True)

    def _due_locked(self, waiter: Any, deadline: float, now: float) -> bool:
        return False

    def _stop_locked(self) -> None:
        self.stopped._signal_locked(None)  # type: ignore[arg-type]  # SetEvent, under the lock


def _close_in_thread(pool: winaio.ThreadPool) -> bool:
    """Close ``pool`` from another thread; True if it returned within LONG. If it hangs, undo
    the leaked count so that the failing test does not leave a spinning thread behind."""
    closer = threading.Thread(target=pool.close, name="test-closer", daemon=True)
    closer.start()
    closer.join(LONG)
    if not closer.is_alive():
        return True
    with LOCK:
        pool._threads = 0
        gone = getattr(pool, "_gone", None)
        if gone is not None:
            gone._signal_locked(None)
    closer.join(LONG)
    return False


def test_close_hands_back_a_worker_the_wait_thread_was_asked_to_start(make_pool) -> None:
    pool = make_pool(max_threads=2)
    # 1. The only worker is busy in a callback, so nobody waits on the port.
    worker_busy = winaio.Event(manual_reset=True)
    release_worker = winaio.Event(manual_reset=True)

    def occupy() -> None:
        worker_busy.set()
        winaio.wait(release_worker, LONG)

    pool.submit(occupy)
    assert winaio.wait(worker_busy, LONG).signaled
    assert pool.thread_count == 1
    # 2. The wait thread is busy too: a WT_EXECUTEINWAITTHREAD callback that returns only once
    #    the pool's close has stopped the wait thread's items.
    probe = _StopProbe()
    with LOCK:
        pool._get_waiter().arm_locked(probe)
    in_wait_thread = winaio.Event(manual_reset=True)

    def hold_wait_thread(timed_out: bool) -> None:
        in_wait_thread.set()
        winaio.wait(probe.stopped, LONG)

    trigger = winaio.Event()
    holder = winaio.register_wait(
        trigger, hold_wait_thread, once=True, in_wait_thread=True, pool=pool
    )
    trigger.set()
    assert winaio.wait(in_wait_thread, LONG).signaled
    # 3. A signaller (this thread) satisfies a pool wait: its callback is queued with nobody
    #    waiting on the port, so the pool counts a second worker and asks the (busy) wait thread
    #    to start it.
    ran = winaio.Event(manual_reset=True)
    wait = pool.create_wait(lambda instance, result: ran.set())
    signal = winaio.Event()
    wait.set(signal)
    signal.set()
    assert pool.thread_count == 2  # counted, not started
    # 4. The busy worker takes the callback: the requested worker is no longer needed.
    release_worker.set()
    assert winaio.wait(ran, LONG).signaled
    wait.close()
    holder.unregister()
    # 5. Close while the wait thread still holds the request: close() must return (it waited
    #    forever for a worker nobody would start) and leave no worker counted.
    assert _close_in_thread(pool), "close() hung on a worker that was never started"
    assert pool.thread_count == 0


def test_wait_thread_callbacks_queued_before_close_still_run(make_pool) -> None:
    # WT_EXECUTEINWAITTHREAD callbacks wait in the wait thread's own queue; closing the pool
    # dropped them (counted pending for ever: unregister(True) would then hang).
    pool = make_pool(max_threads=1)
    probe = _StopProbe()
    with LOCK:
        pool._get_waiter().arm_locked(probe)
    in_wait_thread = winaio.Event(manual_reset=True)

    def hold_wait_thread(timed_out: bool) -> None:
        in_wait_thread.set()
        winaio.wait(probe.stopped, LONG)

    first, second = winaio.Event(), winaio.Event()
    holder = winaio.register_wait(
        first, hold_wait_thread, once=True, in_wait_thread=True, pool=pool
    )
    ran: list[bool] = []
    queued = winaio.register_wait(second, ran.append, once=True, in_wait_thread=True, pool=pool)
    first.set()
    assert winaio.wait(in_wait_thread, LONG).signaled
    second.set()  # queued behind the holder on the wait thread
    assert _close_in_thread(pool)
    assert ran == [False]  # ran (not timed out) before close() returned
    assert queued.unregister() is True  # nothing pending or running
    assert holder.unregister() is True
