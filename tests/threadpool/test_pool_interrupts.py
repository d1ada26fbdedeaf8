"""The thread pool's wake sites under interrupts (pure, 2026-12-06).

A submitter (the main thread, where a signal handler's KeyboardInterrupt lands) queues a
callback's token under the dispatcher lock and owes, after the lock, the wake-up of the idle
worker it handed the token to (``ThreadPool._handoff_locked``: the wake-up is given without
the lock, so the worker finds it free) or the start of a worker it counted. A Ctrl-C at any
eval-breaker check on that way - a Python callee's entry, a C call's return - left the worker
asleep with the token until ``close()`` (or for ever: ``getters.pop()``'s return lost the
popped worker) and the counted worker never started: the callback never ran and ``close()``
waited for ever. The sweep raises at each cut point in turn (one per run) and checks that
the callback runs and the pool closes. docs/design.md "The pure-Python immediate paths under
interrupts (pure, ...)".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from winaio._kernel import _threads
from winaio._kernel._dispatcher import LOCK
from winaio._kernel._objects import Event
from winaio._pool._objects import PoolObject, PoolWork
from winaio._pool._pool import ThreadPool
from winaio._pool._timer import PoolTimer
from winaio._pool._wait import PoolWait
from winaio.testing import Sweep, left_held, profiled, sweep_cut_points, wait_until

_CODES = {
    f.__code__
    for f in (
        ThreadPool.submit,
        ThreadPool._enqueue,
        ThreadPool._handoff_locked,
        ThreadPool._post_one_locked,
        ThreadPool._post_tokens_locked,
        PoolWork.submit,
    )
}


def _closed(pool: ThreadPool) -> bool:
    """``pool.close()`` returns within 10 s (a worker that never woke or started keeps it
    waiting for ever)."""
    t = threading.Thread(target=pool.close, daemon=True)
    t.start()
    t.join(10.0)
    return not t.is_alive()


@pytest.mark.parametrize("how", ["submit", "call", "work"])
@pytest.mark.parametrize("idle", [True, False])
def test_an_interrupt_anywhere_in_a_submit_still_runs_the_callback(how: str, idle: bool) -> None:
    """``ThreadPool.submit`` (TrySubmitThreadpoolCallback), ``call`` and ``PoolWork.submit``
    (SubmitThreadpoolWork), to an idle worker (the hand-off) or to a pool with none (a worker
    started): wherever the interrupt lands once the callback is queued, it runs, and the pool
    closes."""
    assert sweep_cut_points(lambda k: _run(k, how, idle), limit=100, at_least=2) == {}


def _run(k: int, how: str, idle: bool) -> tuple[Sweep, list[str]]:
    pool = ThreadPool(4, 0, idle_timeout=30.0)
    ran: list[int] = []
    work = pool.create_work(lambda _instance: ran.append(1)) if how == "work" else None
    if idle:  # a worker parked on the port, waiting for a token
        pool.submit(ran.append, 0)
        wait_until(lambda: bool(ran) and bool(pool._port._getters), 5.0, "an idle worker")
        ran.clear()
    submit: Callable[[], object] = (
        (lambda: pool.submit(ran.append, 1))
        if how == "submit"
        else (lambda: pool.call(ran.append, 1))
        if how == "call"
        else work.submit  # type: ignore[union-attr]
    )
    sweep = Sweep(k, _CODES)
    submitted = profiled(sweep, submit)
    bad = left_held(LOCK)
    try:
        wait_until(lambda: ran == [1], 5.0, "the callback ran")
    except AssertionError:
        if submitted or _queued(pool):  # (queued, or the call returned: it must run)
            bad.append(f"the callback never ran: {ran}")
    if work is not None:
        work.close()
    if not _closed(pool):
        bad.append("close() never returned")
    return sweep, bad


def _queued(pool: ThreadPool) -> bool:
    """A callback is queued (a callback, a call or a work object in a priority queue)."""
    with LOCK:
        return any(pool._queues)


_SPAWN_SITES = {
    f.__code__
    for f in (
        ThreadPool.submit_callback,
        ThreadPool._spawn,
        PoolObject.__init__,
        ThreadPool._object_added,
        PoolTimer.set,
        PoolWait.set,
        _threads.start_thread,
        _threads._new_thread,
    )
}


@pytest.mark.parametrize("how", ["submit_callback", "create_work", "timer", "wait"])
def test_an_interrupt_anywhere_at_a_callers_spawn_site_still_runs_the_callback(how: str) -> None:
    """The other sites where a caller's thread starts a worker it counted under the lock:
    TrySubmitThreadpoolCallback with an environment (``submit_callback``), the creation of a
    pool object (``PoolObject.__init__``: the worker kept for it), a timer set to expire now
    (``PoolTimer.set``), a wait on a signaled object (``PoolWait.set``). Wherever the interrupt
    lands once the worker is counted, it starts: the callback runs (once queued) and the pool
    closes. Before: a cut at the lock's exit or at ``_spawn``'s entry (or in ``_spawn`` before
    the thread started) left a counted worker that never started: ``close()`` waited for
    ever; so did one inside ``start_thread`` before the thread started."""

    def run(k: int) -> tuple[Sweep, list[str]]:
        pool = ThreadPool(4, 0, idle_timeout=30.0)
        ran: list[int] = []
        objects: list[Any] = []
        event = Event(True, True)

        def call() -> None:
            if how == "submit_callback":
                pool.submit_callback(lambda _i: ran.append(1))
            elif how == "create_work":
                objects.append(pool.create_work(lambda _i: ran.append(1)))
            elif how == "timer":
                objects.append(pool.create_timer(lambda _i: ran.append(1)))
                objects[-1].set(0)
            else:
                objects.append(pool.create_wait(lambda _i, _r: ran.append(1)))
                objects[-1].set(event)

        sweep = Sweep(k, _SPAWN_SITES)
        returned = profiled(sweep, call)
        bad = left_held(LOCK)
        if how == "create_work" and objects:
            objects[0].submit()
        # (queued, or the call returned: it must run; a cut before that queued nothing)
        if returned or bool(objects and how == "create_work") or _queued(pool) or ran:
            try:
                wait_until(lambda: ran == [1], 5.0, "the callback ran")
            except AssertionError:
                bad.append(f"the callback never ran: {ran}")
        for obj in objects:
            obj.close()
        if not _closed(pool):
            bad.append("close() never returned")
        return sweep, bad

    assert sweep_cut_points(run, limit=100, at_least=2) == {}
