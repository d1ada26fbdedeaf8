"""Win32 conformance: waitable timers and clocks (behaviours 43-47).

Wine: k32/timer.c test_timer / test_timeouts; MS: SetWaitableTimer, CancelWaitableTimer,
PTIMERAPCROUTINE. The wall clock is moved with ``winaio.testing.shift_wall_clock`` only.
"""

from __future__ import annotations

import time

import winaio.win32 as w

SENTINEL = 0xDEADBEEF
MS = 10_000  # 100 ns units per millisecond
SEC = 1000 * MS


def _routine_recorder(calls: list):
    def routine(arg: object, low: int, high: int) -> None:
        calls.append((arg, low, high, w.GetCurrentThreadId()))

    return routine


# ---------------------------------------------------------------------------------------------
# #43 SetWaitableTimer arguments
# ---------------------------------------------------------------------------------------------


def test_set_timer_relative_and_absolute_due_times(kit) -> None:
    # spec: win32 #43
    t = kit.timer(manual=False)
    w.SetLastError(SENTINEL)
    assert w.SetWaitableTimer(t, -10000, 500, None, None, False)
    # absolute 10000 (a moment in 1601) is in the past: due at once
    assert w.SetWaitableTimer(t, 10000, 500, None, None, False)
    assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0
    assert w.CancelWaitableTimer(t)


def test_set_timer_negative_period_fails(kit) -> None:
    # spec: win32 #43
    t = kit.timer(manual=False)
    for period in (-1, -500):
        w.SetLastError(SENTINEL)
        assert not w.SetWaitableTimer(t, -10000, period, None, None, False)
        assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    # the failed calls did not arm the timer
    assert w.WaitForSingleObject(t, 50) == w.WAIT_TIMEOUT


def test_new_timer_is_nonsignaled(kit) -> None:
    # spec: win32 #43 (a created timer is inactive and nonsignaled until set)
    for manual in (True, False):
        t = kit.timer(manual=manual)
        assert w.WaitForSingleObject(t, 20) == w.WAIT_TIMEOUT
        assert w.CancelWaitableTimer(t)  # cancelling an inactive timer succeeds
        assert w.WaitForSingleObject(t, 0) == w.WAIT_TIMEOUT


# ---------------------------------------------------------------------------------------------
# #44 relative vs absolute time under wall-clock changes
# ---------------------------------------------------------------------------------------------


def test_system_time_follows_wall_clock_shift(wall_clock) -> None:
    # spec: win32 #44 (GetSystemTimeAsFileTime is the shifted wall clock, as 100 ns FILETIME)
    before = w.GetSystemTimeAsFileTime()
    unix_now = int(time.time() * SEC) + 116444736000000000
    assert abs(before - unix_now) < 60 * SEC
    wall_clock.shift_wall_clock(10)
    after = w.GetSystemTimeAsFileTime()
    assert 10 * SEC <= after - before < 15 * SEC
    wall_clock.reset_wall_clock()
    assert w.GetSystemTimeAsFileTime() - before < 5 * SEC


def test_relative_wait_not_shortened_by_clock_jump(kit, wall_clock, testing) -> None:
    # spec: win32 #44
    e = kit.event(manual=True)
    result: list[tuple[int, float]] = []

    def body() -> None:
        t0 = time.monotonic()
        r = w.WaitForSingleObject(e, 300)
        result.append((r, time.monotonic() - t0))

    t = kit.thread(body)
    testing.wait_until_blocked(t.tid)
    wall_clock.shift_wall_clock(10)
    t.join()
    [(r, elapsed)] = result
    assert r == w.WAIT_TIMEOUT
    assert elapsed >= 0.25


def test_relative_wait_not_lengthened_by_backward_clock_jump(kit, wall_clock, testing) -> None:
    # spec: win32 #44 (§2.1 step 4: neither shortens nor lengthens)
    e = kit.event(manual=True)
    result: list[int] = []

    def body() -> None:
        result.append(w.WaitForSingleObject(e, 200))

    t = kit.thread(body)
    kit.on_cleanup(lambda: w.SetEvent(e))
    testing.wait_until_blocked(t.tid)
    wall_clock.shift_wall_clock(-10)
    t.join(5000)  # a 10 s lengthening would miss this bound
    assert result == [w.WAIT_TIMEOUT]


def test_relative_timer_unaffected_by_clock_jump(kit, wall_clock) -> None:
    # spec: win32 #44
    t = kit.timer(manual=True)
    t0 = time.monotonic()
    assert w.SetWaitableTimer(t, -300 * MS, 0, None, None, False)
    wall_clock.shift_wall_clock(10)
    assert w.WaitForSingleObject(t, 0) == w.WAIT_TIMEOUT  # not fired early
    assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0
    assert time.monotonic() - t0 >= 0.25

    # and a backward jump does not delay it
    assert w.SetWaitableTimer(t, -100 * MS, 0, None, None, False)
    wall_clock.shift_wall_clock(-20)
    assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0


def test_absolute_timer_fires_when_clock_jumps_past_due(kit, wall_clock) -> None:
    # spec: win32 #44
    t = kit.timer(manual=True)
    due = w.GetSystemTimeAsFileTime() + 3 * SEC
    assert w.SetWaitableTimer(t, due, 0, None, None, False)
    assert w.WaitForSingleObject(t, 0) == w.WAIT_TIMEOUT
    wall_clock.shift_wall_clock(10)
    # "at once": well before the 3 s it would otherwise take
    assert w.WaitForSingleObject(t, 2000) == w.WAIT_OBJECT_0


def test_absolute_timer_wakes_blocked_waiter_on_clock_jump(kit, wall_clock, testing) -> None:
    # spec: win32 #44 (§10b: absolute timers are re-checked when the wall clock jumps)
    t = kit.timer(manual=False)
    result: list[int] = []

    def body() -> None:
        result.append(w.WaitForSingleObject(t, 5000))

    due = w.GetSystemTimeAsFileTime() + 3 * SEC
    assert w.SetWaitableTimer(t, due, 0, None, None, False)
    th = kit.thread(body)
    testing.wait_until_waiters(t, 1)
    wall_clock.shift_wall_clock(10)
    th.join(2000)
    assert result == [w.WAIT_OBJECT_0]


def test_absolute_timer_delayed_by_backward_clock_jump(kit, wall_clock) -> None:
    # spec: win32 #44 (absolute due times follow the wall clock both ways)
    t = kit.timer(manual=True)
    due = w.GetSystemTimeAsFileTime() + 200 * MS
    assert w.SetWaitableTimer(t, due, 0, None, None, False)
    wall_clock.shift_wall_clock(-10)
    assert w.WaitForSingleObject(t, 500) == w.WAIT_TIMEOUT
    wall_clock.reset_wall_clock()
    assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0


# ---------------------------------------------------------------------------------------------
# #45 periodic and one-shot timers
# ---------------------------------------------------------------------------------------------


def test_periodic_sync_timer_satisfies_two_waits(kit) -> None:
    # spec: win32 #45
    t = kit.timer(manual=False)
    w.SetLastError(SENTINEL)
    assert w.SetWaitableTimer(t, -10 * MS, 50, None, None, False)
    assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0
    assert w.GetLastError() == SENTINEL
    assert w.CancelWaitableTimer(t)


def test_periodic_sync_timer_due_zero(kit) -> None:
    # spec: win32 #45 (Wine test_timeouts: due time 0, period 50)
    t = kit.timer(manual=False)
    assert w.SetWaitableTimer(t, 0, 50, None, None, False)
    assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0
    assert w.CancelWaitableTimer(t)


def test_one_shot_sync_timer_signals_once(kit) -> None:
    # spec: win32 #45 (contrast: without a period the synchronization timer is reset by the
    # first satisfied wait and never re-armed)
    t = kit.timer(manual=False)
    assert w.SetWaitableTimer(t, -10 * MS, 0, None, None, False)
    assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(t, 100) == w.WAIT_TIMEOUT


def test_one_shot_manual_timer_stays_signaled(kit) -> None:
    # spec: win32 #45 (§1.2: a manual-reset timer stays signaled)
    t = kit.timer(manual=True)
    assert w.SetWaitableTimer(t, -10 * MS, 0, None, None, False)
    assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(t, 0) == w.WAIT_OBJECT_0
    assert w.WaitForMultipleObjects(1, [t], True, 0) == w.WAIT_OBJECT_0


def test_sync_timer_releases_one_waiter_manual_timer_all(kit, testing) -> None:
    # spec: win32 #45 (§1.2 timer rows)
    sync = kit.timer(manual=False)
    manual = kit.timer(manual=True)
    results: dict[str, list[int]] = {"sync": [], "manual": []}

    def waiter(h: int, key: str):
        def body() -> None:
            results[key].append(w.WaitForSingleObject(h, 5000))

        return kit.thread(body)

    sync_workers = [waiter(sync, "sync") for _ in range(2)]
    manual_workers = [waiter(manual, "manual") for _ in range(2)]
    kit.on_cleanup(lambda: w.SetWaitableTimer(sync, -1, 0, None, None, False))
    testing.wait_until_waiters(sync, 2)
    testing.wait_until_waiters(manual, 2)
    assert w.SetWaitableTimer(sync, -1, 0, None, None, False)
    assert w.SetWaitableTimer(manual, -1, 0, None, None, False)
    handles = [t.handle for t in manual_workers]
    assert w.WaitForMultipleObjects(2, handles, True, 5000) == w.WAIT_OBJECT_0
    r = w.WaitForMultipleObjects(2, [t.handle for t in sync_workers], False, 5000)
    assert r in (w.WAIT_OBJECT_0, w.WAIT_OBJECT_0 + 1)
    other = sync_workers[1 - r]
    assert other.is_running(100)
    assert results["sync"] == [w.WAIT_OBJECT_0]
    assert w.SetWaitableTimer(sync, -1, 0, None, None, False)
    for t in sync_workers + manual_workers:
        t.join()
    assert results == {"sync": [0, 0], "manual": [0, 0]}


# ---------------------------------------------------------------------------------------------
# #46 completion routines
# ---------------------------------------------------------------------------------------------


def test_timer_routine_runs_in_setting_thread_alertable_wait(kit) -> None:
    # spec: win32 #46
    t = kit.timer(manual=True)
    calls: list = []
    arg = object()
    before = w.GetSystemTimeAsFileTime()
    assert w.SetWaitableTimer(t, -10 * MS, 0, _routine_recorder(calls), arg, False)
    # a non-alertable wait sees the signal but never runs the routine
    assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0
    assert w.SleepEx(10, False) == 0
    assert calls == []
    w.SetLastError(SENTINEL)
    assert w.SleepEx(5000, True) == w.WAIT_IO_COMPLETION
    assert w.GetLastError() == SENTINEL
    after = w.GetSystemTimeAsFileTime()
    assert len(calls) == 1
    got_arg, low, high, tid = calls[0]
    assert got_arg is arg
    assert tid == w.GetCurrentThreadId()
    assert 0 <= low <= 0xFFFFFFFF
    assert 0 <= high <= 0xFFFFFFFF
    fired_at = (high << 32) | low
    assert before - 20 * MS <= fired_at <= after + 20 * MS
    assert w.SleepEx(0, True) == 0  # a one-shot timer queues one call


def test_timer_routine_not_run_by_other_threads(kit, testing) -> None:
    # spec: win32 #46 (only the setting thread runs it, even if another thread is alertable)
    t = kit.timer(manual=True)
    calls: list = []
    other: list[int] = []

    def body() -> None:
        other.append(w.SleepEx(300, True))

    th = kit.thread(body)
    testing.wait_until_blocked(th.tid)
    assert w.SetWaitableTimer(t, -10 * MS, 0, _routine_recorder(calls), "x", False)
    assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0
    th.join()
    assert other == [0]
    assert calls == []
    assert w.SleepEx(0, True) == w.WAIT_IO_COMPLETION
    assert [(a, tid) for a, _, _, tid in calls] == [("x", w.GetCurrentThreadId())]


def test_timer_routine_set_by_worker_runs_in_worker(kit) -> None:
    # spec: win32 #46 (the APC goes to the thread that called SetWaitableTimer)
    t = kit.timer(manual=False)
    calls: list = []
    seen: list[int] = []

    def body() -> None:
        assert w.SetWaitableTimer(t, -10 * MS, 0, _routine_recorder(calls), 7, False)
        seen.append(w.SleepEx(5000, True))

    th = kit.thread(body)
    th.join()
    assert seen == [w.WAIT_IO_COMPLETION]
    assert [(a, tid) for a, _, _, tid in calls] == [(7, th.tid)]
    assert w.SleepEx(0, True) == 0  # nothing for the main thread


def test_periodic_timer_routine_not_queued_twice(kit) -> None:
    # spec: win32 #46 (§2.3: queued only if none is already outstanding)
    t = kit.timer(manual=False)
    calls: list = []
    assert w.SetWaitableTimer(t, -10 * MS, 30, _routine_recorder(calls), None, False)
    for _ in range(3):  # three expirations while the thread is not alertable
        assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0
    assert calls == []
    assert w.SleepEx(0, True) == w.WAIT_IO_COMPLETION
    # one outstanding APC, not one per expiration (2 tolerates one more expiration racing in
    # while the first call is dispatched)
    assert 1 <= len(calls) <= 2
    assert w.CancelWaitableTimer(t)


# ---------------------------------------------------------------------------------------------
# #47 CancelWaitableTimer and re-setting
# ---------------------------------------------------------------------------------------------


def test_cancel_keeps_signaled_state(kit) -> None:
    # spec: win32 #47
    t = kit.timer(manual=True)
    assert w.SetWaitableTimer(t, -1, 0, None, None, False)
    assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0
    assert w.CancelWaitableTimer(t)
    assert w.WaitForSingleObject(t, 0) == w.WAIT_OBJECT_0


def test_cancel_active_timer_never_fires(kit) -> None:
    # spec: win32 #47 (canceled -> inactive; nonsignaled state unchanged)
    t = kit.timer(manual=True)
    assert w.SetWaitableTimer(t, -100 * MS, 0, None, None, False)
    assert w.CancelWaitableTimer(t)
    assert w.WaitForSingleObject(t, 300) == w.WAIT_TIMEOUT


def test_cancel_discards_queued_timer_apc(kit) -> None:
    # spec: win32 #47
    t = kit.timer(manual=True)
    calls: list = []
    assert w.SetWaitableTimer(t, -1, 0, _routine_recorder(calls), None, False)
    assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0  # fired, APC outstanding
    assert w.CancelWaitableTimer(t)
    assert w.SleepEx(50, True) == 0
    assert calls == []
    assert w.WaitForSingleObject(t, 0) == w.WAIT_OBJECT_0  # still signaled


def test_reset_active_timer_does_not_signal(kit) -> None:
    # spec: win32 #47
    for manual in (True, False):
        t = kit.timer(manual=manual)
        assert w.SetWaitableTimer(t, -5 * SEC, 0, None, None, False)
        assert w.SetWaitableTimer(t, -5 * SEC, 0, None, None, False)
        assert w.WaitForSingleObject(t, 50) == w.WAIT_TIMEOUT
        assert w.SetWaitableTimer(t, -1, 0, None, None, False)
        assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0
        assert w.CancelWaitableTimer(t)


def test_reset_cancels_pending_completion_routine(kit) -> None:
    # spec: win32 #47
    t = kit.timer(manual=True)
    calls: list = []
    assert w.SetWaitableTimer(t, -1, 0, _routine_recorder(calls), "first", False)
    assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0  # fired, APC outstanding
    assert w.SetWaitableTimer(t, -5 * SEC, 0, None, None, False)
    assert w.SleepEx(50, True) == 0
    assert calls == []
    assert w.CancelWaitableTimer(t)


def test_reset_manual_timer_clears_signal(kit) -> None:
    # spec: win32 #47 (§2.3: manual-reset timers stay signaled until SetWaitableTimer)
    t = kit.timer(manual=True)
    assert w.SetWaitableTimer(t, -1, 0, None, None, False)
    assert w.WaitForSingleObject(t, 5000) == w.WAIT_OBJECT_0
    assert w.SetWaitableTimer(t, -5 * SEC, 0, None, None, False)
    assert w.WaitForSingleObject(t, 0) == w.WAIT_TIMEOUT
    assert w.CancelWaitableTimer(t)
    assert w.WaitForSingleObject(t, 0) == w.WAIT_TIMEOUT
