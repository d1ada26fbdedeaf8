"""Timers and the wall clock, ported from Wine's ``dlls/kernel32/tests/timer.c``: due times in
the distant past and relative ones (test_timer), and which waits a jump of the system clock
shortens - absolute waitable-timer and thread-pool-timer due times - and which it does not -
time-outs, Sleep, relative and periodic timers (test_timeouts). The clock is moved with
``winaio.testing.shift_wall_clock`` (Wine uses SetSystemTime); 3 s becomes 1 s."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import winaio.testing as wt
import winaio.win32 as w

SEC = 10_000_000  # FILETIME ticks per second
DUE_MS = 1000


def test_set_waitable_timer_absolute_in_the_past_and_relative(kit) -> None:
    # [W:k32/timer.c:test_timer] (a positive due time is absolute: 10000 ticks after 1601 is
    # long past and fires at once; a negative one is relative)
    for due in (10000, -10000):
        h = kit.keep(w.CreateWaitableTimer(None, False, None))
        assert w.SetWaitableTimer(h, due, 0x1F4, None, None, False)
        assert w.WaitForSingleObject(h, 1000) == w.WAIT_OBJECT_0
        assert w.CancelWaitableTimer(h)


@pytest.fixture
def clock() -> Iterator[None]:
    try:
        yield
    finally:
        wt.reset_wall_clock()


def _elapsed(body: Callable[[], Any]) -> Callable[[], float]:
    def run() -> float:
        t0 = time.monotonic()
        body()
        return time.monotonic() - t0

    return run


def test_timeouts_across_a_clock_jump(kit, clock) -> None:
    # [W:k32/timer.c:test_timeouts] (the wall clock jumps 10 s forward while nine threads wait:
    # only the absolute due times are reached early)
    def wait_event() -> None:
        ev = w.CreateEvent(None, False, False, None)
        assert w.WaitForSingleObject(ev, DUE_MS) == w.WAIT_TIMEOUT
        w.CloseHandle(ev)

    def waitable(due: int, period: int = 0, waits: int = 1) -> Callable[[], None]:
        def body() -> None:
            timer = w.CreateWaitableTimer(None, period == 0, None)
            start = w.GetSystemTimeAsFileTime() if due > 0 else 0
            assert w.SetWaitableTimer(timer, start + due, period, None, None, False)
            for _ in range(waits):
                assert w.WaitForSingleObject(timer, 5000) == w.WAIT_OBJECT_0
            w.CloseHandle(timer)

        return body

    def pool_timer(absolute: bool) -> Callable[[], None]:
        def body() -> None:
            ev = w.CreateEvent(None, False, False, None)
            timer = w.CreateThreadpoolTimer(lambda inst, ctx, t: w.SetEvent(ctx), ev, None)
            assert timer is not None
            due = w.GetSystemTimeAsFileTime() + DUE_MS * 10_000 if absolute else -DUE_MS * 10_000
            w.SetThreadpoolTimer(timer, due, 0, 0)
            assert w.WaitForSingleObject(ev, 5000) == w.WAIT_OBJECT_0
            w.WaitForThreadpoolTimerCallbacks(timer, False)
            w.CloseThreadpoolTimer(timer)
            w.CloseHandle(ev)

        return body

    bodies = {
        "WaitForSingleObject": (wait_event, False),
        "Sleep": (lambda: w.Sleep(DUE_MS), False),
        "SleepEx": (lambda: w.SleepEx(DUE_MS, True), False),
        "WaitableTimer_rel": (waitable(-DUE_MS * 10_000), False),
        "WaitableTimer_abs": (waitable(DUE_MS * 10_000), True),
        "WaitableTimer_period": (waitable(-1, DUE_MS, 2), False),
        "SetThreadpoolTimer_rel": (pool_timer(False), False),
        "SetThreadpoolTimer_abs": (pool_timer(True), True),
    }
    elapsed: dict[str, float] = {}
    threads = []
    for name, (body, _early) in bodies.items():

        def run(name: str = name, body: Callable[[], Any] = body) -> int:
            elapsed[name] = _elapsed(body)()
            return 0

        threads.append(kit.thread(run))
    w.Sleep(200)  # Wine: Sleep(500), then adjust_system_time(10)
    wt.shift_wall_clock(10)
    for t in threads:
        t.join()
    limit = 0.7 * DUE_MS / 1e3
    shortened = {n for n, (_b, early) in bodies.items() if not early and elapsed[n] < limit}
    not_shortened = {n for n, (_b, early) in bodies.items() if early and elapsed[n] >= limit}
    assert shortened == set() and not_shortened == set(), elapsed
