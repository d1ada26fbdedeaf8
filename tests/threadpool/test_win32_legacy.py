"""Legacy thread-pool APIs through ``winaio.win32``: QueueUserWorkItem, RegisterWaitForSingleObject
/ UnregisterWait(Ex) (acceptance behaviour 117) and timer queues, after Wine's kernel32 tests
test_QueueUserWorkItem, test_RegisterWaitForSingleObject, test_timer_queue and ntdll
test_RtlRegisterWait; plus the Pythonic ``TimerQueue`` on a manual clock.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import winaio
import winaio.win32 as w
from winaio.errors import Win32Error
from winaio.testing import wait_until

LONG_MS = 5000


def test_queue_user_work_item_runs_100_items() -> None:
    # [W:k32/thread.c:test_QueueUserWorkItem]
    done = w.CreateEvent(None, True, False, None)
    count = [0]
    lock = threading.Lock()

    def work(context: Any) -> int:
        with lock:
            count[0] += 1
            if count[0] == 100:
                w.SetEvent(done)
        return 0

    for i in range(100):
        flags = w.WT_EXECUTELONGFUNCTION if i % 2 else w.WT_EXECUTEDEFAULT
        assert w.QueueUserWorkItem(work, i, flags)
    assert w.WaitForSingleObject(done, LONG_MS) == w.WAIT_OBJECT_0
    assert count[0] == 100
    w.CloseHandle(done)


def test_117_unregister_while_running_and_zero_timeout() -> None:
    # spec: win32 #117 [W:k32/thread.c:test_RegisterWaitForSingleObject]
    handle = w.CreateEvent(None, True, True, None)
    complete = w.CreateEvent(None, False, False, None)
    started = w.CreateEvent(None, True, False, None)
    fired: list[bool] = []

    def wait_complete(param: Any, timed_out: bool) -> None:
        fired.append(timed_out)
        w.SetEvent(started)
        assert w.WaitForSingleObject(complete, LONG_MS) == w.WAIT_OBJECT_0

    new = w.Ref(None)
    assert w.RegisterWaitForSingleObject(new, handle, wait_complete, None, w.INFINITE,
                                         w.WT_EXECUTEONLYONCE)  # fmt: skip
    assert w.WaitForSingleObject(started, LONG_MS) == w.WAIT_OBJECT_0
    w.SetLastError(0xDEADBEEF)
    assert not w.UnregisterWait(new.value)  # its callback is running
    assert w.GetLastError() == w.ERROR_IO_PENDING
    w.SetEvent(complete)
    assert fired == [False]

    # Timeout 0 on a nonsignaled handle: the callback says the wait timed out.
    w.ResetEvent(handle)
    result: list[bool] = []
    got = w.CreateEvent(None, False, False, None)

    def on_timeout(param: Any, timed_out: bool) -> None:
        result.append(timed_out)
        w.SetEvent(got)

    assert w.RegisterWaitForSingleObject(new, handle, on_timeout, None, 0, w.WT_EXECUTEONLYONCE)
    assert w.WaitForSingleObject(got, LONG_MS) == w.WAIT_OBJECT_0
    assert result == [True]
    assert w.UnregisterWaitEx(new.value, w.INVALID_HANDLE_VALUE)
    for h in (handle, complete, started, got):
        w.CloseHandle(h)


def test_register_wait_signaled_cancel_and_bad_input() -> None:
    handle = w.CreateEvent(None, True, True, None)
    done = w.CreateEvent(None, False, False, None)
    results: list[bool] = []

    def signaled(param: Any, timed_out: bool) -> None:
        results.append(timed_out)
        w.SetEvent(param)

    new = w.Ref(None)
    assert w.RegisterWaitForSingleObject(new, handle, signaled, done, w.INFINITE,
                                         w.WT_EXECUTEONLYONCE)  # fmt: skip
    assert w.WaitForSingleObject(done, LONG_MS) == w.WAIT_OBJECT_0
    assert w.UnregisterWaitEx(new.value, w.INVALID_HANDLE_VALUE)
    assert results == [False]
    # Cancel before anything happens.
    w.ResetEvent(handle)
    assert w.RegisterWaitForSingleObject(new, handle, signaled, done, w.INFINITE,
                                         w.WT_EXECUTEONLYONCE)  # fmt: skip
    assert w.UnregisterWait(new.value)
    w.SetEvent(handle)
    assert w.WaitForSingleObject(done, 100) == w.WAIT_TIMEOUT
    # Bad input.
    w.SetLastError(0xDEADBEEF)
    assert not w.UnregisterWait(None)
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    assert not w.UnregisterWait(new.value)  # already unregistered
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    assert not w.RegisterWaitForSingleObject(new, 0x7FFFFFF0, signaled, done, 0, 0)
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    w.CloseHandle(handle)
    w.CloseHandle(done)


def test_unregister_from_its_own_callback_and_completion_event() -> None:
    # The callback sees its own handle (stored before the wait is armed) and may unregister.
    handle = w.CreateEvent(None, True, True, None)
    done = w.CreateEvent(None, False, False, None)
    outcome: list[bool] = []

    for _ in range(20):
        param: dict[str, Any] = {}

        def unregister(p: dict[str, Any], timed_out: bool) -> None:
            outcome.append(w.UnregisterWait(p["handle"].value))
            w.SetEvent(done)

        param["handle"] = w.Ref(None)
        assert w.RegisterWaitForSingleObject(param["handle"], handle, unregister, param,
                                             w.INFINITE, w.WT_EXECUTEONLYONCE
                                             | w.WT_EXECUTEINWAITTHREAD)  # fmt: skip
        assert w.WaitForSingleObject(done, LONG_MS) == w.WAIT_OBJECT_0
    assert outcome == [True] * 20
    # UnregisterWaitEx(event) while running: FALSE/ERROR_IO_PENDING, event set when done.
    gate = w.CreateEvent(None, True, False, None)
    finished = w.CreateEvent(None, True, False, None)
    started = w.CreateEvent(None, True, False, None)

    def slow(p: Any, timed_out: bool) -> None:
        w.SetEvent(started)
        w.WaitForSingleObject(gate, LONG_MS)

    new = w.Ref(None)
    assert w.RegisterWaitForSingleObject(new, handle, slow, None, w.INFINITE, w.WT_EXECUTEONLYONCE)
    assert w.WaitForSingleObject(started, LONG_MS) == w.WAIT_OBJECT_0
    assert not w.UnregisterWaitEx(new.value, finished)
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert w.WaitForSingleObject(finished, 100) == w.WAIT_TIMEOUT
    w.SetEvent(gate)
    assert w.WaitForSingleObject(finished, LONG_MS) == w.WAIT_OBJECT_0
    for h in (handle, done, gate, finished, started):
        w.CloseHandle(h)


def test_wait_thread_callbacks_run_serially() -> None:
    # [W:k32/thread.c:test_RegisterWaitForSingleObject] "multiple waits with WT_EXECUTEINWAITTHREAD"
    handle = w.CreateEvent(None, True, True, None)
    trigger = w.CreateEvent(None, False, False, None)
    wait_event = w.CreateEvent(None, False, False, None)
    complete = w.CreateEvent(None, False, False, None)
    observed: list[int] = []

    def signaled(param: Any, timed_out: bool) -> None:
        w.SetEvent(param)

    def test_function(param: Any, timed_out: bool) -> None:
        w.SetEvent(trigger)
        # The other wait-thread callback cannot run while we wait: serial execution.
        observed.append(w.WaitForSingleObject(wait_event, 100))
        w.SetEvent(complete)

    h2, h1 = w.Ref(None), w.Ref(None)
    flags = w.WT_EXECUTEONLYONCE | w.WT_EXECUTEINWAITTHREAD
    assert w.RegisterWaitForSingleObject(h2, trigger, signaled, wait_event, w.INFINITE, flags)
    assert w.RegisterWaitForSingleObject(h1, handle, test_function, None, w.INFINITE, flags)
    assert w.WaitForSingleObject(complete, LONG_MS) == w.WAIT_OBJECT_0
    assert observed == [w.WAIT_TIMEOUT]
    assert w.UnregisterWaitEx(h1.value, w.INVALID_HANDLE_VALUE)
    assert w.UnregisterWaitEx(h2.value, w.INVALID_HANDLE_VALUE)
    for h in (handle, trigger, wait_event, complete):
        w.CloseHandle(h)


def test_repeating_registered_wait_rearms_itself(make_pool, recorder) -> None:
    pool, clock = make_pool.manual(max_threads=2)
    rec = recorder()
    sem = winaio.Semaphore(0, 10)
    reg = winaio.register_wait(sem, rec, "r", timeout=5.0, pool=pool)
    sem.release(2)
    rec.wait(2)
    assert rec.calls == [("r", False), ("r", False)]
    wait_until(lambda: reg.armed, 5, "the wait thread re-arms the wait")
    clock.advance(5.0)
    rec.wait()
    assert rec.calls[-1] == ("r", True)
    assert reg.unregister(True)
    sem.release()
    clock.advance(50.0)
    assert rec.none_within()


def test_timer_queue_win32() -> None:
    # [W:k32/sync.c:test_timer_queue], the deterministic parts.
    q = w.CreateTimerQueue()
    assert q is not None
    assert w.DeleteTimerQueueEx(q, None)  # Vista+: TRUE
    q = w.CreateTimerQueue()
    counts = [0, 0, 0]
    events = [w.CreateEvent(None, True, False, None) for _ in range(3)]

    def cb(param: Any, timed_out: bool) -> None:
        assert timed_out  # timer callbacks always "time out"
        counts[param] += 1
        w.SetEvent(events[param])

    t0, t1, t4 = w.Ref(None), w.Ref(None), w.Ref(None)
    assert w.CreateTimerQueueTimer(t1, q, cb, 1, 0, 0, 0)  # once, at once
    assert w.CreateTimerQueueTimer(t4, q, cb, 2, 10000, 10, 0)  # far in the future
    assert w.WaitForSingleObject(events[1], LONG_MS) == w.WAIT_OBJECT_0
    assert w.DeleteTimerQueueTimer(q, t1.value, w.INVALID_HANDLE_VALUE)
    # A one-shot that already fired: Change succeeds and does nothing.
    assert not w.ChangeTimerQueueTimer(q, t1.value, 0, 0)  # deleted now
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    assert w.CreateTimerQueueTimer(t0, q, cb, 0, 0, 0, 0)
    assert w.WaitForSingleObject(events[0], LONG_MS) == w.WAIT_OBJECT_0
    assert w.ChangeTimerQueueTimer(q, t0.value, 0, 0)
    assert w.WaitForSingleObject(events[0], 100) == w.WAIT_OBJECT_0 and counts[0] == 1
    assert w.DeleteTimerQueueEx(q, w.INVALID_HANDLE_VALUE)
    assert counts == [1, 1, 0]
    w.SetLastError(0xDEADBEEF)
    assert not w.DeleteTimerQueueEx(None, None)
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    assert not w.DeleteTimerQueueEx(q, None)  # already deleted
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    assert not w.DeleteTimerQueueTimer(None, None, None)
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    assert not w.CreateTimerQueueTimer(t0, q, cb, 0, 0, 0, 0)
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    for e in events:
        w.CloseHandle(e)


def test_delete_timer_while_its_callback_runs() -> None:
    q = w.CreateTimerQueue()
    started = w.CreateEvent(None, True, False, None)
    gate = w.CreateEvent(None, True, False, None)
    deleted = w.CreateEvent(None, True, False, None)

    def slow(param: Any, timed_out: bool) -> None:
        w.SetEvent(started)
        w.WaitForSingleObject(gate, LONG_MS)

    t = w.Ref(None)
    assert w.CreateTimerQueueTimer(t, q, slow, None, 0, 0, 0)
    assert w.WaitForSingleObject(started, LONG_MS) == w.WAIT_OBJECT_0
    w.SetLastError(0xDEADBEEF)
    assert not w.DeleteTimerQueueTimer(q, t.value, deleted)
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert w.WaitForSingleObject(deleted, 100) == w.WAIT_TIMEOUT
    w.SetEvent(gate)
    assert w.WaitForSingleObject(deleted, LONG_MS) == w.WAIT_OBJECT_0
    # A finished timer deleted with an event: TRUE, event set at once. "Finished" without
    # timing luck: both callbacks run serially on the timer thread, so when the second one
    # has run, the first one has returned.
    done = w.CreateEvent(None, True, False, None)
    t2, t3 = w.Ref(None), w.Ref(None)
    flags = w.WT_EXECUTEINTIMERTHREAD
    assert w.CreateTimerQueueTimer(t2, q, lambda p, f: None, None, 0, 0, flags)
    assert w.CreateTimerQueueTimer(t3, q, lambda p, f: w.SetEvent(done), None, 0, 0, flags)
    assert w.WaitForSingleObject(done, LONG_MS) == w.WAIT_OBJECT_0
    finished = w.CreateEvent(None, True, False, None)
    assert w.DeleteTimerQueueTimer(q, t2.value, finished)
    assert w.WaitForSingleObject(finished, 0) == w.WAIT_OBJECT_0
    assert w.DeleteTimerQueueEx(q, w.INVALID_HANDLE_VALUE)
    for h in (started, gate, deleted, done, finished):
        w.CloseHandle(h)


def test_timer_deleting_itself_from_its_callback_pends() -> None:
    # [W:k32/sync.c:test_timer_queue] timer_queue_cb2 / cb6
    q = w.CreateTimerQueue()
    errors: list[int] = []
    done = w.CreateEvent(None, True, False, None)
    t = w.Ref(None)

    def cb(param: Any, timed_out: bool) -> None:
        w.SetLastError(0xDEADBEEF)
        ok = w.DeleteTimerQueueTimer(q, t.value, None)
        errors.append(0 if ok else w.GetLastError())
        w.SetEvent(done)

    assert w.CreateTimerQueueTimer(t, q, cb, None, 0, 10, w.WT_EXECUTELONGFUNCTION)
    assert w.WaitForSingleObject(done, LONG_MS) == w.WAIT_OBJECT_0
    assert w.DeleteTimerQueueEx(q, w.INVALID_HANDLE_VALUE)
    assert errors[0] in (0, w.ERROR_IO_PENDING)  # its own callback does not count: TRUE here
    w.CloseHandle(done)


def test_default_timer_queue_and_bad_times() -> None:
    fired = w.CreateEvent(None, True, False, None)
    t = w.Ref(None)
    assert w.CreateTimerQueueTimer(t, None, lambda p, f: w.SetEvent(fired), None, 1000, 1000, 0)
    assert w.ChangeTimerQueueTimer(None, t.value, 0, 0)
    assert w.WaitForSingleObject(fired, LONG_MS) == w.WAIT_OBJECT_0
    assert w.DeleteTimerQueueTimer(None, t.value, w.INVALID_HANDLE_VALUE)
    assert not w.CreateTimerQueueTimer(t, None, print, None, -5, 0, 0)
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    assert not w.CreateTimerQueueTimer(t, None, print, None, 0, 1 << 33, 0)
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    with pytest.raises(Win32Error):
        winaio.TimerQueue.default().delete()
    w.CloseHandle(fired)


def test_timer_queue_on_a_manual_clock(make_pool, recorder) -> None:
    pool, clock = make_pool.manual(max_threads=2)
    rec = recorder()
    queue = winaio.TimerQueue(pool)
    slow = queue.create_timer(rec, "slow", due=0.0, period=100.0)
    fast = queue.create_timer(rec, "fast", due=0.0, period=10.0)
    late = queue.create_timer(rec, "late", due=10_000.0, period=10.0)
    once = queue.create_timer(rec, "once", due=5.0, period=3.0, once=True)
    in_thread = queue.create_timer(rec, "thread", due=1.0, in_timer_thread=True)
    rec.wait(2)
    clock.advance(10.0)  # fast, once, thread
    rec.wait(3)
    clock.advance(10.0)  # fast
    rec.wait()
    assert rec.none_within()
    names = [c[0] for c in rec.calls]
    assert names.count("fast") == 3 and names.count("slow") == 1 and names.count("once") == 1
    assert "late" not in names and names.count("thread") == 1
    waiter = pool._waiter
    assert waiter is not None and waiter._python_thread is not None
    thread_index = names.index("thread")
    assert rec.threads[thread_index] == waiter._python_thread.ident  # ran on the wait thread
    assert once.change(1.0, 1.0)  # a fired one-shot: accepted, no effect
    clock.advance(5.0)
    assert rec.none_within()
    assert queue.delete(True)
    for timer in (slow, fast, late, once, in_thread):
        assert timer.closed


def test_timer_due_now_takes_the_expiry_path(make_pool, recorder) -> None:
    # A due time of 0 expires at once through the same path as a later expiry: a
    # WT_EXECUTEINTIMERTHREAD timer runs on the wait thread, and a one-shot counts as fired
    # (ChangeTimerQueueTimer then has no effect) [W:k32/sync.c:test_timer_queue].
    pool, clock = make_pool.manual(max_threads=2)
    rec = recorder()
    queue = winaio.TimerQueue(pool)
    in_thread = queue.create_timer(rec, "thread", due=0.0, in_timer_thread=True)
    once = queue.create_timer(rec, "once", due=0.0)
    rec.wait(2)
    waiter = pool._waiter
    assert waiter is not None and waiter._python_thread is not None
    names = [c[0] for c in rec.calls]
    assert rec.threads[names.index("thread")] == waiter._python_thread.ident
    assert rec.threads[names.index("once")] != waiter._python_thread.ident
    assert once.change(1.0)  # a fired one-shot: accepted, no effect
    clock.advance(5.0)
    assert rec.none_within()
    assert queue.delete(True)
    assert in_thread.closed and once.closed
