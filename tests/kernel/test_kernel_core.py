"""The Pythonic core API of the kernel layer (objects, seconds, exceptions, typed results).

The Win32 conformance suite (tests/conformance) checks the same behaviours through
``winaio.win32``; these tests pin the core's own contract.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest

import winaio
from winaio._kernel import _threads
from winaio._kernel._dispatcher import LOCK
from winaio.codes import WaitCode, WinError
from winaio.errors import ThreadTerminated, Win32Error
from winaio.testing import (
    Sweep,
    left_held,
    profiled,
    shift_wall_clock,
    sweep_cut_points,
    wait_until,
    wait_until_blocked,
    wait_until_waiters,
)


@pytest.fixture(autouse=True)
def _drain_apcs() -> Any:
    yield
    winaio.test_alert()


def test_wait_result_properties() -> None:
    event = winaio.Event(initial_state=True)
    result = winaio.wait(event, 0)
    assert result.signaled and result.status is winaio.WaitStatus.SIGNALED
    assert result.index == 0 and result.code == WaitCode.WAIT_OBJECT_0
    assert not event.is_set()  # auto-reset consumed
    timeout = winaio.wait(event, 0)
    assert timeout.timed_out and not timeout.signaled and timeout.index is None
    assert timeout is winaio.wait(event, 0)  # results are cached singletons


def test_event_operations_return_previous_state() -> None:
    # spec: win32 §2.3 (NT Set/Reset/Pulse report the previous state)
    event = winaio.Event(manual_reset=True)
    assert event.set() is False
    assert event.set() is True
    assert event.reset() is True
    assert event.pulse() is False and not event.is_set()


def test_wait_any_reports_index_and_wait_all_consumes_atomically() -> None:
    # spec: win32 #8 #9 #10
    a, b = winaio.Event(), winaio.Event(initial_state=True)
    assert winaio.wait_any([a, b], 0).index == 1
    b.set()
    assert winaio.wait_all([a, b], 0).timed_out
    assert b.is_set()  # a failed wait-all touches nothing
    a.set()
    assert winaio.wait_all([a, b], 0).code == WaitCode.WAIT_OBJECT_0
    assert not a.is_set() and not b.is_set()


@pytest.mark.parametrize("count", [0, 65])
def test_wait_any_rejects_bad_counts(count: int) -> None:
    # spec: win32 #7
    with pytest.raises(Win32Error) as info:
        winaio.wait_any([winaio.Event() for _ in range(count)], 0)
    assert info.value.winerror == WinError.ERROR_INVALID_PARAMETER


def test_wait_rejects_duplicates_non_waitables_and_negative_timeouts() -> None:
    event = winaio.Event()
    with pytest.raises(Win32Error) as info:
        winaio.wait_all([event, event], 0)
    assert info.value.winerror == WinError.ERROR_INVALID_PARAMETER
    with pytest.raises(Win32Error) as info:
        winaio.wait(object(), 0)  # type: ignore[arg-type]
    assert info.value.winerror == WinError.ERROR_INVALID_HANDLE
    with pytest.raises(Win32Error) as info:
        winaio.wait(event, -1)
    assert info.value.winerror == WinError.ERROR_INVALID_PARAMETER


def test_semaphore_limits() -> None:
    # spec: win32 #15 #16
    with pytest.raises(Win32Error) as info:
        winaio.Semaphore(2, 1)
    assert info.value.winerror == WinError.ERROR_INVALID_PARAMETER
    sem = winaio.Semaphore(0, 1)
    assert sem.release() == 0
    with pytest.raises(Win32Error) as info:
        sem.release()
    assert info.value.winerror == WinError.ERROR_TOO_MANY_POSTS
    assert sem.count == 1
    with pytest.raises(Win32Error) as info:
        sem.release(0)
    assert info.value.winerror == WinError.ERROR_INVALID_PARAMETER


def test_mutex_recursion_and_not_owner() -> None:
    # spec: win32 #17
    mutex = winaio.Mutex(initial_owner=True)
    assert mutex.owner_thread_id == winaio.current_thread().thread_id
    for _ in range(3):
        assert winaio.wait(mutex, 0).signaled
    errors: list[int] = []

    def foreign_release() -> None:
        try:
            mutex.release()
        except Win32Error as exc:
            errors.append(exc.winerror)

    assert winaio.wait(winaio.start_thread(foreign_release), 5).signaled
    assert errors == [WinError.ERROR_NOT_OWNER]
    assert [mutex.release() for _ in range(4)] == [4, 3, 2, 1]
    assert mutex.owner_thread_id is None


def test_mutex_abandoned_by_plain_python_thread() -> None:
    # spec: win32 #18 (exit effects also run for threads not created by winaio)
    mutex = winaio.Mutex()
    thread = threading.Thread(target=lambda: winaio.wait(mutex))
    thread.start()
    thread.join(5)
    result = winaio.wait(mutex, 5)
    assert result.abandoned and result.status is winaio.WaitStatus.ABANDONED
    assert not mutex.abandoned
    mutex.release()


def test_blocked_waiter_released_by_set() -> None:
    # spec: win32 #11
    event = winaio.Event()
    results: list[winaio.WaitResult] = []
    waiter = winaio.start_thread(lambda: results.append(winaio.wait(event, 5)))
    wait_until_waiters(event, 1)
    event.set()
    assert winaio.wait(waiter, 5).signaled
    assert results[0].signaled and not event.is_set()


def test_apcs_run_fifo_at_alertable_points_only() -> None:
    # spec: win32 #27 #29 #30 #33
    calls: list[object] = []
    me = winaio.current_thread()

    def first() -> None:
        calls.append(1)
        winaio.queue_apc(me, calls.append, 3)  # queued during dispatch, runs in the same wait

    winaio.queue_apc(me, first)
    winaio.queue_apc(me, calls.append, 2)
    assert winaio.sleep(0) is False and calls == []  # not alertable
    assert winaio.wait(winaio.Event(), 0.01).timed_out and calls == []
    assert winaio.sleep(5, alertable=True) is True
    assert calls == [1, 2, 3]
    assert winaio.test_alert() is False


def test_signaled_object_beats_queued_apc() -> None:
    # spec: win32 #32
    calls: list[int] = []
    winaio.queue_apc(winaio.current_thread(), calls.append, 1)
    assert winaio.wait(winaio.Event(initial_state=True), 0, alertable=True).signaled
    assert calls == []
    assert winaio.wait(winaio.Event(), 0, alertable=True).io_completion
    assert calls == [1]


def test_apc_wakes_alertable_waiter_in_other_thread() -> None:
    calls: list[str] = []
    results: list[winaio.WaitResult] = []
    thread = winaio.start_thread(
        lambda: results.append(winaio.wait(winaio.Event(), 5, alertable=True))
    )
    wait_until_blocked(thread)
    winaio.queue_apc(thread, calls.append, "ran")
    assert winaio.wait(thread, 5).signaled
    assert results[0].io_completion and calls == ["ran"]


def test_queue_apc_to_exited_thread_fails() -> None:
    # spec: win32 #36 #38
    thread = winaio.start_thread(lambda: None)
    assert winaio.wait(thread, 5).signaled
    with pytest.raises(Win32Error) as info:
        winaio.queue_apc(thread, print)
    assert info.value.winerror == WinError.ERROR_GEN_FAILURE


def test_special_apc_to_self_runs_at_once() -> None:
    # spec: win32 #41
    calls: list[int] = []
    winaio.queue_special_apc(winaio.current_thread(), calls.append, 1)
    assert calls == [1]
    assert winaio.sleep(0, alertable=True) is False


def test_suspended_thread_runs_queued_apc_first_and_exit_code() -> None:
    # spec: win32 #37
    order: list[str] = []
    thread = winaio.start_thread(lambda: order.append("start") or 7, suspended=True)
    winaio.queue_apc(thread, order.append, "apc")
    assert thread.exit_code is None
    assert thread.resume() == 1
    assert winaio.wait(thread, 5).signaled
    assert order == ["apc", "start"] and thread.exit_code == 7


def test_exit_thread_and_terminate() -> None:
    def body() -> None:
        winaio.exit_thread(42)

    thread = winaio.start_thread(body)
    assert winaio.wait(thread, 5).signaled and thread.exit_code == 42

    event = winaio.Event()
    blocked = winaio.start_thread(lambda: winaio.wait(event))
    wait_until_blocked(blocked)
    blocked.terminate(9)
    assert winaio.wait(blocked, 5).signaled and blocked.exit_code == 9
    assert event.waiter_count == 0  # its wait was unlinked
    assert blocked.python_thread is not None
    blocked.python_thread.join(5)
    assert not blocked.python_thread.is_alive()


def test_terminate_self_raises() -> None:
    caught: list[int] = []

    def body() -> None:
        try:
            winaio.current_thread().terminate(3)
        except ThreadTerminated as exc:
            caught.append(exc.exit_code)
            raise

    thread = winaio.start_thread(body)
    assert winaio.wait(thread, 5).signaled
    assert caught == [3] and thread.exit_code == 3


def test_signal_and_wait() -> None:
    # spec: win32 #22 #24
    auto = winaio.Event()
    assert winaio.signal_and_wait(auto, auto, 0).signaled
    assert winaio.wait(auto, 0).timed_out
    full = winaio.Semaphore(1, 1)
    other = winaio.Event(initial_state=True)
    with pytest.raises(Win32Error) as info:
        winaio.signal_and_wait(full, other, 0)
    assert info.value.winerror == WinError.ERROR_TOO_MANY_POSTS
    assert other.is_set()
    with pytest.raises(Win32Error) as info:
        winaio.signal_and_wait(winaio.current_thread(), other, 0)
    assert info.value.winerror == WinError.ERROR_INVALID_HANDLE


def test_timer_relative_periodic_and_routine() -> None:
    # spec: win32 #45 #46
    timer = winaio.WaitableTimer()
    fired: list[tuple[object, int, int]] = []
    timer.set(0.01, period=0.02, routine=lambda arg, low, high: fired.append((arg, low, high)))
    assert winaio.wait(timer, 5).signaled
    assert winaio.wait(timer, 5).signaled
    assert winaio.sleep(5, alertable=True)
    timer.cancel()
    assert fired and fired[0][0] is None
    filetime = fired[0][1] | fired[0][2] << 32
    now = dt.datetime.now(dt.UTC)
    when = dt.datetime(1601, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=filetime // 10)
    assert abs((now - when).total_seconds()) < 60


def test_timer_absolute_follows_wall_clock() -> None:
    # spec: win32 #44
    timer = winaio.WaitableTimer(manual_reset=True)
    relative = winaio.WaitableTimer(manual_reset=True)
    timer.set(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3))
    relative.set(3.0)
    try:
        shift_wall_clock(10)
        assert winaio.wait(timer, 2).signaled
        assert winaio.wait(relative, 0).timed_out
    finally:
        shift_wall_clock(-10)
        relative.cancel()


def test_timer_rejects_bad_arguments() -> None:
    timer = winaio.WaitableTimer()
    with pytest.raises(Win32Error) as info:
        timer.set(1.0, period=-1)
    assert info.value.winerror == WinError.ERROR_INVALID_PARAMETER
    with pytest.raises(Win32Error):
        timer.set(dt.datetime(2030, 1, 1))  # naive datetime: ambiguous
    assert not timer.active


@pytest.mark.parametrize("suspended", [False, True])
def test_an_interrupt_anywhere_in_start_thread_starts_the_thread_once(suspended: bool) -> None:
    """# spec: win32 #1 (CreateThread). A Ctrl-C inside ``start_thread`` (a swept cut point:
    a callee's entry, a C call's return in its frames) goes on once the thread is started: it
    is in the live table (OpenThread finds it, ResumeThread starts a suspended one whose
    handle the interrupt took) and its routine runs exactly once. Before: a cut before
    ``Thread.start`` ran left no thread (a caller that counted one - the pool - waited for it
    for ever), one after it left the running thread out of the live table."""
    codes = {_threads.start_thread.__code__, _threads._new_thread.__code__}

    def run(k: int) -> tuple[Sweep, list[str]]:
        ran: list[int] = []
        go = threading.Event()
        name = f"sweep-start-{suspended}-{k}"

        def routine() -> None:
            ran.append(threading.get_native_id())
            go.wait(10.0)

        sweep = Sweep(k, codes)
        profiled(sweep, lambda: _threads.start_thread(routine, suspended=suspended, name=name))
        bad = left_held(LOCK)
        mine = [t for t in threading.enumerate() if t.name == name]
        if len(mine) != 1:
            return sweep, [*bad, f"{len(mine)} threads started"]
        thread = mine[0]
        try:
            wait_until(
                lambda: (
                    thread.native_id is not None
                    and _threads.thread_state_by_id(thread.native_id) is not None
                ),
                5.0,
                "the thread in the live table",
            )
        except AssertionError:
            bad.append("the thread is not in the live table")
            go.set()
            return sweep, bad
        ts = _threads.thread_state_by_id(thread.native_id or 0)
        assert ts is not None and ts.thread is not None
        if ts.thread.python_thread is not thread:
            bad.append("another thread's state in the live table")
        if suspended:
            ts.thread.resume()
        try:
            wait_until(lambda: ran, 5.0, "the routine ran")
        except AssertionError:
            bad.append("the routine never ran")
        go.set()
        thread.join(10.0)
        if ran != [thread.native_id]:
            bad.append(f"the routine ran {len(ran)} times")
        return sweep, bad

    assert sweep_cut_points(run, limit=100, at_least=3) == {}
