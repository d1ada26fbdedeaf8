"""Thread-pool timers and waits (spec §9; Wine test_tp_timer, test_tp_window_length, test_tp_wait,
test_tp_multi_wait), on a ``ManualClock`` wherever time matters so nothing depends on timing.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest

import winaio
from winaio._kernel._dispatcher import LOCK
from winaio.codes import WinError
from winaio.errors import Win32Error

LONG = 5.0
SHORT = 0.1


# ---------------------------------------------------------------------------------- timers


def test_relative_timer_fires_when_its_due_time_arrives(make_pool, recorder) -> None:
    pool, clock = make_pool.manual(max_threads=2)
    rec = recorder()
    timer = pool.create_timer(lambda instance, tag: rec(tag, instance.object), "t")
    assert not timer.is_set
    assert timer.set(1.0) is False
    assert timer.is_set
    timer.wait_callbacks()  # waits for queued/running callbacks only, not for the expiry
    clock.advance(0.5)
    assert rec.none_within()
    clock.advance(0.5)
    rec.wait()
    assert rec.calls == [("t", timer)]
    assert timer.is_set  # IsThreadpoolTimerSet stays TRUE after a one-shot fired (Wine)
    clock.advance(10)
    assert rec.none_within()
    timer.close()


def test_periodic_timer_does_not_burst_after_falling_behind(make_pool, recorder) -> None:
    pool, clock = make_pool.manual(max_threads=2)
    rec = recorder()
    timer = pool.create_timer(lambda instance: rec())
    timer.set(1.0, period=2.0)
    clock.advance(1.0)
    rec.wait()
    clock.advance(2.0)
    rec.wait()
    clock.advance(10.0)  # five periods late: one expiry, then on schedule from now
    rec.wait()
    assert rec.none_within()
    clock.advance(2.0)
    rec.wait()
    assert len(rec.calls) == 4
    assert timer.set(None) is True and not timer.is_set
    clock.advance(100)
    assert rec.none_within()
    timer.close()


def test_due_zero_fires_at_once_then_each_period(make_pool, recorder) -> None:
    pool, clock = make_pool.manual(max_threads=2)
    rec = recorder()
    timer = pool.create_timer(lambda instance: rec())
    timer.set(0)
    rec.wait()
    timer.set(0, period=1.0)
    rec.wait()
    clock.advance(1.0)
    rec.wait()
    timer.close()


def test_resetting_replaces_the_previous_setting(make_pool, recorder) -> None:
    pool, clock = make_pool.manual(max_threads=2)
    rec = recorder()
    timer = pool.create_timer(lambda instance: rec())
    timer.set(5.0)
    assert timer.set(1.0) is True
    clock.advance(1.0)
    rec.wait()
    clock.advance(10.0)
    assert rec.none_within()
    assert len(rec.calls) == 1
    timer.close()


def test_absolute_due_time_follows_the_wall_clock(make_pool, recorder) -> None:
    pool, clock = make_pool.manual(max_threads=2)
    rec = recorder()
    timer = pool.create_timer(lambda instance: rec())
    now = dt.datetime.fromtimestamp(clock.wall_ns() / 1e9, dt.UTC)
    timer.set(now + dt.timedelta(seconds=30))
    clock.advance(1.0)
    assert rec.none_within()
    clock.shift_wall(60)  # the system time jumps past the due time: fires at once
    rec.wait()
    timer.set(now - dt.timedelta(seconds=1))  # already past: fires at once
    rec.wait()
    timer.close()


def test_timer_reset_from_its_own_callback(make_pool, recorder) -> None:
    # Race: the callback re-sets the timer that is running it.
    pool, clock = make_pool.manual(max_threads=2)
    rec = recorder()

    def callback(instance: winaio.CallbackInstance) -> None:
        if len(rec.calls) < 2:
            timer.set(1.0)
        rec()

    timer = pool.create_timer(callback)
    timer.set(1.0)
    for _ in range(3):
        clock.advance(1.0)
        rec.wait()
    timer.wait_callbacks()
    clock.advance(5.0)
    assert rec.none_within()
    assert len(rec.calls) == 3
    timer.close()


def test_stopped_timer_still_runs_queued_callbacks(make_pool) -> None:
    pool, clock = make_pool.manual(max_threads=1)
    gate = winaio.Event(manual_reset=True)
    ran: list[int] = []
    pool.submit(winaio.wait, gate, LONG)  # hold the only worker
    timer = pool.create_timer(lambda instance: ran.append(1))
    timer.set(1.0)
    clock.advance(1.0)  # queued, cannot run yet
    timer.set(None)
    gate.set()
    timer.wait_callbacks()
    assert ran == [1]
    timer.close()


def test_window_coalesces_expiries(make_pool) -> None:
    # [W:nt/threadpool.c:test_tp_window_length]: the wait thread wakes at the latest due time
    # among timers due before the smallest due + window.
    pool = make_pool(max_threads=1)
    first = pool.create_timer(lambda instance: None)
    second = pool.create_timer(lambda instance: None)
    first.set(10.0, window=5.0)
    second.set(12.0)
    waiter = pool._waiter
    assert waiter is not None
    with LOCK:
        now = pool.clock.monotonic()
        merged = waiter._next_timeout_locked(now, pool.clock.wall_ns())
    assert merged is not None and 11.0 < merged <= 12.0
    first.set(10.0, window=1.0)
    with LOCK:
        now = pool.clock.monotonic()
        separate = waiter._next_timeout_locked(now, pool.clock.wall_ns())
    assert separate is not None and 9.0 < separate <= 10.0
    first.close()
    second.close()


def test_timers_stop_when_the_pool_closes(make_pool, recorder) -> None:
    pool, clock = make_pool.manual(max_threads=1)
    rec = recorder()
    timer = pool.create_timer(lambda instance: rec())
    timer.set(1.0, period=1.0)
    clock.advance(1.0)
    rec.wait()
    pool.close()
    clock.advance(5.0)
    assert rec.none_within()
    with pytest.raises(Win32Error) as info:
        timer.set(1.0)
    assert info.value.winerror == WinError.ERROR_INVALID_HANDLE


@pytest.mark.parametrize(
    "kwargs",
    [
        {"due": -1.0},
        {"due": float("nan")},
        {"due": float("inf")},
        {"due": 1.0, "period": -1.0},
        {"due": 1.0, "period": float("inf")},
        {"due": 1.0, "window": -0.5},
        {"due": dt.datetime(2030, 1, 1)},  # naive
        {"due": "soon"},
    ],
)
def test_timer_bad_times(make_pool, kwargs: dict[str, Any]) -> None:
    pool = make_pool(max_threads=1)
    timer = pool.create_timer(lambda instance: None)
    with pytest.raises(Win32Error) as info:
        timer.set(**kwargs)
    assert info.value.winerror == WinError.ERROR_INVALID_PARAMETER
    assert not timer.is_set
    timer.close()
    with pytest.raises(Win32Error) as info:
        timer.set(1.0)
    assert info.value.winerror == WinError.ERROR_INVALID_HANDLE
    with pytest.raises(Win32Error):
        timer.close()


# ---------------------------------------------------------------------------------- waits


def test_wait_is_one_shot_and_consumes_the_signal(make_pool, recorder) -> None:
    pool = make_pool(max_threads=2)
    rec = recorder()
    event = winaio.Event()  # auto-reset
    wait = pool.create_wait(lambda instance, tag, result: rec(tag, result), "w")
    assert wait.set(event) is False and wait.armed
    event.set()
    rec.wait()
    assert rec.calls[0][1].signaled
    assert not event.is_set()  # consumed by the pool's wait
    assert not wait.armed
    event.set()
    assert rec.none_within()  # one-shot: not re-armed
    assert event.is_set()
    wait.set(event)  # already signaled: fires at once
    rec.wait()
    wait.close()


def test_wait_timeouts(make_pool, recorder) -> None:
    pool, clock = make_pool.manual(max_threads=2)
    rec = recorder()
    event = winaio.Event(manual_reset=True)
    wait = pool.create_wait(lambda instance, result: rec(result))
    wait.set(event, 2.0)
    clock.advance(1.0)
    assert rec.none_within()
    clock.advance(1.0)
    rec.wait()
    assert rec.calls[-1][0].timed_out
    wait.set(event, 0)  # zero timeout, not signaled: times out at once
    rec.wait()
    assert rec.calls[-1][0].timed_out
    event.set()
    wait.set(event, 0)  # signaled: the object wins
    rec.wait()
    assert rec.calls[-1][0].signaled
    event.reset()
    later = dt.datetime.fromtimestamp(clock.wall_ns() / 1e9, dt.UTC) + dt.timedelta(seconds=5)
    wait.set(event, later)
    clock.advance(5.001)  # (the datetime is rounded to the microsecond)
    rec.wait()
    assert rec.calls[-1][0].timed_out
    wait.set(event, 5.0)
    event.set()
    rec.wait()
    assert rec.calls[-1][0].signaled
    clock.advance(10.0)  # the timeout of a satisfied wait never fires
    assert rec.none_within()
    wait.close()


def test_two_waits_on_one_semaphore_released_once(make_pool, recorder) -> None:
    # [W:nt/threadpool.c:test_tp_wait] "add two wait objects with the same semaphore"
    pool = make_pool(max_threads=2)
    rec = recorder()
    sem = winaio.Semaphore(0, 2)
    first = pool.create_wait(lambda instance, result: rec("first"))
    second = pool.create_wait(lambda instance, result: rec("second"))
    first.set(sem)
    second.set(sem)
    sem.release()
    rec.wait()
    assert rec.none_within()
    assert sem.count == 0
    sem.release()
    rec.wait()
    assert sorted(c[0] for c in rec.calls) == ["first", "second"]
    first.close()
    second.close()


def test_wait_rearmed_from_its_own_callback(make_pool, recorder) -> None:
    pool = make_pool(max_threads=2)
    rec = recorder()
    event = winaio.Event()

    def callback(instance: winaio.CallbackInstance, result: winaio.WaitResult) -> None:
        wait.set(event)  # re-arm (races with the next signal)
        rec(result)

    wait = pool.create_wait(callback)
    wait.set(event)
    for _ in range(5):
        event.set()
        rec.wait()
    wait.set(None)
    event.set()
    assert rec.none_within()
    wait.close()


def test_stopping_and_cancel_pending(make_pool, recorder) -> None:
    pool, clock = make_pool.manual(max_threads=1)
    rec = recorder()
    event = winaio.Event(manual_reset=True)
    wait = pool.create_wait(lambda instance, result: rec(result))
    wait.set(event, 1.0)
    assert wait.set(None) is True
    clock.advance(2.0)
    event.set()
    assert rec.none_within()
    event.reset()
    # cancel_pending drops queued callbacks but leaves an armed wait armed.
    gate = winaio.Event(manual_reset=True)
    pool.submit(winaio.wait, gate, LONG)
    wait.set(event, 1.0)
    clock.advance(1.0)  # queued behind the blocked worker
    wait.set(event, 1.0)  # armed again
    wait.wait_callbacks(cancel_pending=True)
    gate.set()
    assert rec.none_within()
    assert wait.armed
    clock.advance(1.0)
    rec.wait()
    wait.close()


def test_wait_on_threads_timers_calls_and_ports(make_pool, recorder) -> None:
    pool = make_pool(max_threads=4)
    rec = recorder()
    gate = winaio.Event(manual_reset=True)
    thread = winaio.start_thread(lambda: winaio.wait(gate, LONG) and None)
    timer = winaio.WaitableTimer(manual_reset=True)
    call = pool.call(winaio.wait, gate, LONG)
    port = winaio.CompletionPort()
    waits = [pool.create_wait(lambda instance, result, n=n: rec(n)) for n in range(4)]
    for wait, obj in zip(waits, (thread, timer, call, port), strict=True):
        wait.set(obj)
    assert rec.none_within()
    gate.set()
    timer.set(0)
    port.post(1, "k")
    rec.wait(4)
    assert sorted(c[0] for c in rec.calls) == [0, 1, 2, 3]
    assert port.queued == 1  # waiting on a port dequeues nothing
    for wait in waits:
        wait.close()
    port.close()


def test_many_waits_share_one_wait_thread(make_pool, recorder) -> None:
    # [W:nt/threadpool.c:test_tp_multi_wait]: 512 waits; here also: no thread per wait.
    pool = make_pool(max_threads=4)
    rec = recorder()
    sems = [winaio.Semaphore(0, 1) for _ in range(512)]
    waits = [pool.create_wait(lambda instance, result, i=i: rec(i)) for i in range(512)]
    for wait, sem in zip(waits, sems, strict=True):
        wait.set(sem, 60.0)
    names = [t.name for t in threading.enumerate() if t.name.startswith("winaio-waiter-")]
    assert len(names) <= 2  # this pool's one wait thread (+ maybe the default pool's)
    for i in (0, 511, 200):
        sems[i].release()
        rec.wait()
        assert rec.calls[-1] == (i,)
    for wait in waits:
        wait.close()


def test_wait_closed_while_its_callback_runs(make_pool) -> None:
    pool = make_pool(max_threads=2)
    started = winaio.Event(manual_reset=True)
    gate = winaio.Event(manual_reset=True)
    done: list[int] = []
    event = winaio.Event()

    def callback(instance: winaio.CallbackInstance, result: winaio.WaitResult) -> None:
        started.set()
        winaio.wait(gate, LONG)
        done.append(1)

    wait = pool.create_wait(callback)
    wait.set(event)
    event.set()
    assert winaio.wait(started, LONG).signaled
    wait.close()  # closing does not wait and does not break the running callback
    with pytest.raises(Win32Error):
        wait.set(event)
    gate.set()
    wait.wait_callbacks()
    assert done == [1]


def test_wait_bad_input(make_pool) -> None:
    pool = make_pool(max_threads=1)
    wait = pool.create_wait(lambda instance, result: None)
    with pytest.raises(Win32Error) as info:
        wait.set(winaio.Mutex())
    assert info.value.winerror == WinError.ERROR_INVALID_PARAMETER
    for bad in (42, "event", None.__class__):
        with pytest.raises(Win32Error) as info:
            wait.set(bad)  # type: ignore[arg-type]
        assert info.value.winerror == WinError.ERROR_INVALID_HANDLE
    for timeout in (-1.0, float("nan"), dt.datetime(2030, 1, 1)):
        with pytest.raises(Win32Error) as info:
            wait.set(winaio.Event(), timeout)  # type: ignore[arg-type]
        assert info.value.winerror == WinError.ERROR_INVALID_PARAMETER
    assert not wait.armed
    wait.close()
    with pytest.raises(Win32Error) as info:
        wait.set(winaio.Event())
    assert info.value.winerror == WinError.ERROR_INVALID_HANDLE


def test_no_callback_after_close(make_pool, recorder) -> None:
    # Closing the pool stops waits and I/O notifications: nothing calls back afterwards.
    pool = make_pool(max_threads=2)
    rec = recorder()
    event = winaio.Event()
    wait = pool.create_wait(lambda instance, result: rec("wait"))
    wait.set(event)
    reader, writer = winaio.create_pipe(overlapped=True)
    io = pool.create_io(reader, lambda instance, ov, error, count: rec("io"))
    io.start()
    assert not reader.start_read(bytearray(1), winaio.Overlapped())
    pool.close()
    event.set()
    writer.write(b"x")
    assert rec.none_within()
    assert event.is_set()  # the closed pool's wait did not consume it
    reader.close()
    writer.close()


def test_io_wait_callbacks_returns_after_the_pool_closed(make_pool) -> None:
    pool = make_pool(max_threads=1)
    reader, writer = winaio.create_pipe(overlapped=True)
    io = pool.create_io(reader, lambda *args: None)
    io.start()
    assert not reader.start_read(bytearray(1), winaio.Overlapped())
    pool.close()
    io.wait_callbacks()  # the outstanding start died with the pool's port: no hang
    assert io.outstanding == 0
    reader.close()
    writer.close()
