"""Win32 conformance: WaitForSingleObject / WaitForMultipleObjects / SignalObjectAndWait.

Acceptance behaviours 1-10 and 21-26 of win32-async-spec.md §11
(Wine k32/sync.c test_WaitForSingleObject, test_WaitForMultipleObjects, test_signalandwait).
"""

from __future__ import annotations

import time

import winaio.win32 as w

SENTINEL = 0xDEADBEEF


# ---------------------------------------------------------------------------------------------
# WaitForSingleObject
# ---------------------------------------------------------------------------------------------


def test_wait_signaled_manual_event_zero_timeout(kit) -> None:
    # spec: win32 #1
    e = kit.event(manual=True, initial=True)
    w.SetLastError(SENTINEL)
    assert w.WaitForSingleObject(e, 0) == w.WAIT_OBJECT_0
    assert w.GetLastError() == SENTINEL
    # a manual-reset event is not consumed by the wait
    assert w.WaitForSingleObject(e, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObjectEx(e, 0, False) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(e, w.INFINITE) == w.WAIT_OBJECT_0
    assert w.GetLastError() == SENTINEL


def test_wait_signaled_auto_event_is_consumed(kit) -> None:
    # spec: win32 #1 (contrast: the auto-reset event is reset by the satisfied wait)
    e = kit.event(manual=False, initial=True)
    w.SetLastError(SENTINEL)
    assert w.WaitForSingleObject(e, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(e, 0) == w.WAIT_TIMEOUT
    assert w.GetLastError() == SENTINEL


def test_wait_nonsignaled_event_zero_timeout(kit) -> None:
    # spec: win32 #2
    for manual in (True, False):
        e = kit.event(manual=manual, initial=False)
        w.SetLastError(SENTINEL)
        assert w.WaitForSingleObject(e, 0) == w.WAIT_TIMEOUT == 258
        assert w.GetLastError() == SENTINEL
        assert w.WaitForSingleObjectEx(e, 0, True) == w.WAIT_TIMEOUT
        assert w.GetLastError() == SENTINEL


def test_wait_nonsignaled_event_short_timeout_does_not_return_early(kit) -> None:
    # spec: win32 #2 (a nonzero timeout elapses; last-error still untouched)
    e = kit.event(manual=True, initial=False)
    w.SetLastError(SENTINEL)
    t0 = time.monotonic()
    assert w.WaitForSingleObject(e, 50) == w.WAIT_TIMEOUT
    assert time.monotonic() - t0 >= 0.04
    assert w.GetLastError() == SENTINEL


def test_wait_invalid_handle_value(kit) -> None:
    # spec: win32 #3
    for bogus in (0xDEADBEE0, 0xDEADBEE1, 0xDEADBEE2, 0xDEADBEE3):
        w.SetLastError(SENTINEL)
        assert w.WaitForSingleObject(bogus, 0) == w.WAIT_FAILED
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE == 6
    w.SetLastError(SENTINEL)
    assert w.WaitForSingleObjectEx(0xDEADBEE0, 0, True) == w.WAIT_FAILED
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE


def test_wait_null_and_closed_handle(kit) -> None:
    # spec: win32 #3 (NULL and a closed handle are invalid handles too)
    w.SetLastError(SENTINEL)
    assert w.WaitForSingleObject(w.NULL, 0) == w.WAIT_FAILED
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    e = w.CreateEvent(None, True, True, None)
    assert e
    assert w.CloseHandle(e)
    w.SetLastError(SENTINEL)
    assert w.WaitForSingleObject(e, 0) == w.WAIT_FAILED
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE


def test_handle_low_bits_are_ignored_in_waits(kit) -> None:
    # spec: win32 #4
    signaled = kit.event(manual=True, initial=True)
    nonsignaled = kit.event(manual=True, initial=False)
    for bits in (1, 2, 3):
        w.SetLastError(SENTINEL)
        assert w.WaitForSingleObject(signaled | bits, 0) == w.WAIT_OBJECT_0
        assert w.WaitForSingleObject(nonsignaled | bits, 0) == w.WAIT_TIMEOUT
        assert w.WaitForMultipleObjects(1, [signaled | bits], False, 0) == w.WAIT_OBJECT_0
        assert w.WaitForMultipleObjects(1, [nonsignaled | bits], True, 0) == w.WAIT_TIMEOUT
        assert w.GetLastError() == SENTINEL


def test_handle_low_bits_refer_to_the_same_object(kit) -> None:
    # spec: win32 #4 (the wait's side effect lands on the same object; other APIs accept h|n)
    auto = kit.event(manual=False, initial=False)
    assert w.SetEvent(auto | 3)
    assert w.WaitForSingleObject(auto | 1, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(auto, 0) == w.WAIT_TIMEOUT  # consumed through auto|1
    assert w.SetEvent(auto)
    assert w.WaitForSingleObject(auto | 2, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(auto | 3, 0) == w.WAIT_TIMEOUT

    sem = kit.semaphore(0, 5)
    prev = w.Ref(SENTINEL)
    assert w.ReleaseSemaphore(sem | 2, 2, prev)
    assert prev.value == 0
    assert w.WaitForSingleObject(sem | 1, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(sem | 3, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(sem, 0) == w.WAIT_TIMEOUT

    h = w.CreateEvent(None, True, True, None)
    assert h
    assert w.CloseHandle(h | 3)
    w.SetLastError(SENTINEL)
    assert not w.CloseHandle(h)
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE


def test_pseudo_handles_time_out_in_single_waits() -> None:
    # spec: win32 #5
    assert w.GetCurrentProcess() == -1 == w.INVALID_HANDLE_VALUE
    assert w.GetCurrentThread() == -2
    for pseudo in (w.GetCurrentThread(), w.GetCurrentProcess()):
        w.SetLastError(SENTINEL)
        t0 = time.monotonic()
        assert w.WaitForSingleObject(pseudo, 100) == w.WAIT_TIMEOUT
        assert time.monotonic() - t0 >= 0.08  # it really waited, not an immediate failure
        assert w.GetLastError() == SENTINEL
        assert w.WaitForSingleObject(pseudo, 0) == w.WAIT_TIMEOUT


# ---------------------------------------------------------------------------------------------
# WaitForMultipleObjects
# ---------------------------------------------------------------------------------------------


def test_wait_multiple_rejects_pseudo_handles(kit) -> None:
    # spec: win32 #6
    e = kit.event(manual=True, initial=True)
    for pseudo in (w.GetCurrentProcess(), w.GetCurrentThread()):
        for wait_all in (False, True):
            w.SetLastError(SENTINEL)
            assert w.WaitForMultipleObjects(1, [pseudo], wait_all, 100) == w.WAIT_FAILED
            assert w.GetLastError() == w.ERROR_INVALID_HANDLE
        # also when a valid, signaled handle precedes it
        w.SetLastError(SENTINEL)
        assert w.WaitForMultipleObjects(2, [e, pseudo], False, 0) == w.WAIT_FAILED
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE


def test_wait_multiple_64_handles_ok_0_and_65_fail(kit) -> None:
    # spec: win32 #7
    assert w.MAXIMUM_WAIT_OBJECTS == 64
    events = [kit.event(manual=True, initial=True) for _ in range(65)]
    w.SetLastError(SENTINEL)
    assert w.WaitForMultipleObjects(64, events[:64], False, 0) == w.WAIT_OBJECT_0
    assert w.WaitForMultipleObjects(64, events[:64], True, 0) == w.WAIT_OBJECT_0
    assert w.GetLastError() == SENTINEL

    for wait_all in (False, True):
        w.SetLastError(SENTINEL)
        assert w.WaitForMultipleObjects(65, events, wait_all, 0) == w.WAIT_FAILED
        assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
        w.SetLastError(SENTINEL)
        assert w.WaitForMultipleObjects(0, [], wait_all, 0) == w.WAIT_FAILED
        assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
        w.SetLastError(SENTINEL)
        assert w.WaitForMultipleObjectsEx(65, events, wait_all, 0, True) == w.WAIT_FAILED
        assert w.GetLastError() == w.ERROR_INVALID_PARAMETER


def test_wait_multiple_64_nonsignaled_handles_time_out(kit) -> None:
    # spec: win32 #7 (64 handles is a valid wait even when it has to time out)
    events = [kit.event(manual=True, initial=False) for _ in range(64)]
    assert w.WaitForMultipleObjects(64, events, False, 10) == w.WAIT_TIMEOUT
    assert w.WaitForMultipleObjects(64, events, True, 10) == w.WAIT_TIMEOUT
    assert w.SetEvent(events[63])
    assert w.WaitForMultipleObjects(64, events, False, 0) == w.WAIT_OBJECT_0 + 63


def test_wait_any_lowest_index_wins_and_only_it_is_consumed(kit) -> None:
    # spec: win32 #8
    events = [kit.event(manual=(i == 0), initial=True) for i in range(64)]
    w.SetLastError(SENTINEL)
    assert w.WaitForMultipleObjects(64, events, False, 0) == w.WAIT_OBJECT_0
    assert w.WaitForMultipleObjects(64, events, False, 0) == w.WAIT_OBJECT_0
    assert w.ResetEvent(events[0])
    for i in range(1, 64):
        assert w.WaitForMultipleObjects(64, events, False, 0) == w.WAIT_OBJECT_0 + i
    assert w.WaitForMultipleObjects(64, events, False, 0) == w.WAIT_TIMEOUT
    assert w.GetLastError() == SENTINEL


def test_wait_all_partial_touches_nothing(kit) -> None:
    # spec: win32 #9
    a = kit.event(manual=False, initial=True)
    b = kit.event(manual=False, initial=False)
    w.SetLastError(SENTINEL)
    assert w.WaitForMultipleObjects(2, [a, b], True, 0) == w.WAIT_TIMEOUT
    assert w.GetLastError() == SENTINEL
    # also with a real (short) timeout
    assert w.WaitForMultipleObjects(2, [a, b], True, 30) == w.WAIT_TIMEOUT
    assert w.WaitForMultipleObjectsEx(2, [b, a], True, 0, True) == w.WAIT_TIMEOUT
    assert w.WaitForSingleObject(a, 0) == w.WAIT_OBJECT_0  # A was still signaled
    assert w.WaitForSingleObject(a, 0) == w.WAIT_TIMEOUT


def test_wait_all_partial_leaves_semaphore_and_mutex_untouched(kit) -> None:
    # spec: win32 #9 (no side effect on any object of a wait-all that is not satisfied)
    sem = kit.semaphore(1, 1)
    mtx = kit.mutex()
    never = kit.event(manual=True, initial=False)
    assert w.WaitForMultipleObjects(3, [sem, mtx, never], True, 0) == w.WAIT_TIMEOUT
    # the semaphore still has its count: releasing one more would exceed the max
    assert not w.ReleaseSemaphore(sem, 1, None)
    assert w.GetLastError() == w.ERROR_TOO_MANY_POSTS
    # the mutex was not acquired
    assert not w.ReleaseMutex(mtx)
    assert w.GetLastError() == w.ERROR_NOT_OWNER


def test_wait_all_satisfied_consumes_all(kit) -> None:
    # spec: win32 #10
    a = kit.event(manual=False, initial=True)
    b = kit.event(manual=False, initial=True)
    w.SetLastError(SENTINEL)
    assert w.WaitForMultipleObjects(2, [a, b], True, 0) == w.WAIT_OBJECT_0
    assert w.GetLastError() == SENTINEL
    assert w.WaitForSingleObject(a, 0) == w.WAIT_TIMEOUT
    assert w.WaitForSingleObject(b, 0) == w.WAIT_TIMEOUT


def test_wait_all_blocked_waiter_released_when_last_object_signals(kit, testing) -> None:
    # spec: win32 #10 (a blocked wait-all returns WAIT_OBJECT_0 once both are signaled, and
    # consumes both)
    a = kit.event(manual=False, initial=False)
    b = kit.event(manual=False, initial=False)
    result: list[int] = []

    def body() -> None:
        result.append(w.WaitForMultipleObjects(2, [a, b], True, 5000))

    t = kit.thread(body)
    testing.wait_until_waiters(a, 1)
    testing.wait_until_waiters(b, 1)
    assert w.SetEvent(a)
    # A alone does not satisfy the wait-all, and the blocked wait must not consume it
    assert t.is_running(50)
    assert w.SetEvent(b)
    t.join()
    assert result == [w.WAIT_OBJECT_0]
    assert w.WaitForSingleObject(a, 0) == w.WAIT_TIMEOUT
    assert w.WaitForSingleObject(b, 0) == w.WAIT_TIMEOUT


# ---------------------------------------------------------------------------------------------
# SignalObjectAndWait
# ---------------------------------------------------------------------------------------------


def test_signal_and_wait_null_handles(kit) -> None:
    # spec: win32 #21
    e = kit.event(manual=False, initial=False)
    w.SetLastError(SENTINEL)
    assert w.SignalObjectAndWait(w.NULL, w.NULL, 0, False) == w.WAIT_FAILED
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    w.SetLastError(SENTINEL)
    assert w.SignalObjectAndWait(e, w.NULL, 0, False) == w.WAIT_FAILED
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    w.SetLastError(SENTINEL)
    assert w.SignalObjectAndWait(w.NULL, e, 0, False) == w.WAIT_FAILED
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE


def test_signal_and_wait_invalid_handles(kit) -> None:
    # spec: win32 #21 (invalid / closed handles on either side)
    e = kit.event(manual=False, initial=False)
    closed = w.CreateEvent(None, False, False, None)
    assert closed
    assert w.CloseHandle(closed)
    for sig, wait in ((0xDEADBEE0, e), (e, 0xDEADBEE0), (closed, e), (e, closed)):
        w.SetLastError(SENTINEL)
        assert w.SignalObjectAndWait(sig, wait, 0, False) == w.WAIT_FAILED
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE


def test_signal_and_wait_same_auto_event_10000_times(kit) -> None:
    # spec: win32 #22
    auto = kit.event(manual=False, initial=False)
    manual = kit.event(manual=True, initial=True)
    assert w.SignalObjectAndWait(auto, manual, 0, False) == w.WAIT_OBJECT_0
    # auto is now signaled; signal+wait on itself keeps succeeding
    w.SetLastError(SENTINEL)
    results = {w.SignalObjectAndWait(auto, auto, 0, False) for _ in range(10000)}
    assert results == {w.WAIT_OBJECT_0}
    assert w.GetLastError() == SENTINEL
    assert w.WaitForSingleObject(auto, 0) == w.WAIT_TIMEOUT
    # from the nonsignaled state it still succeeds and leaves the event nonsignaled
    assert w.SignalObjectAndWait(auto, auto, 0, False) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(auto, 0) == w.WAIT_TIMEOUT


def test_signal_and_wait_timeout_does_not_undo_signal(kit) -> None:
    # spec: win32 #23
    auto = kit.event(manual=False, initial=False)
    manual = kit.event(manual=True, initial=True)
    assert w.ResetEvent(manual)
    w.SetLastError(SENTINEL)
    assert w.SignalObjectAndWait(auto, manual, 0, False) == w.WAIT_TIMEOUT
    assert w.GetLastError() == SENTINEL
    assert w.WaitForSingleObject(auto, 0) == w.WAIT_OBJECT_0  # it was signaled
    # same with a real timeout
    assert w.SignalObjectAndWait(auto, manual, 30, False) == w.WAIT_TIMEOUT
    assert w.WaitForSingleObject(auto, 0) == w.WAIT_OBJECT_0


def test_signal_and_wait_semaphore_at_max(kit) -> None:
    # spec: win32 #24 (Wine sequence)
    s0 = kit.semaphore(0, 1)
    s1 = kit.semaphore(1, 1)
    assert w.SignalObjectAndWait(s0, s1, 0, False) == w.WAIT_OBJECT_0
    w.SetLastError(SENTINEL)
    assert w.SignalObjectAndWait(s0, s1, 0, False) == w.WAIT_FAILED
    assert w.GetLastError() == w.ERROR_TOO_MANY_POSTS
    assert not w.ReleaseSemaphore(s0, 1, None)  # s0 still at its max
    assert w.ReleaseSemaphore(s1, 1, None)


def test_signal_and_wait_semaphore_at_max_does_not_consume_other(kit) -> None:
    # spec: win32 #24 (no wait is performed: a signaled `other` keeps its state)
    full = kit.semaphore(1, 1)
    other_sem = kit.semaphore(1, 1)
    other_evt = kit.event(manual=False, initial=True)
    for other in (other_sem, other_evt):
        w.SetLastError(SENTINEL)
        assert w.SignalObjectAndWait(full, other, 0, False) == w.WAIT_FAILED
        assert w.GetLastError() == w.ERROR_TOO_MANY_POSTS
    assert w.WaitForSingleObject(other_sem, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(other_evt, 0) == w.WAIT_OBJECT_0
    # and the full semaphore's count is unchanged (1)
    assert w.WaitForSingleObject(full, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(full, 0) == w.WAIT_TIMEOUT


def test_signal_and_wait_non_signalable_object(kit) -> None:
    # spec: win32 #25 (Wine uses a file; the alias layer's non-event/semaphore/mutex waitable
    # objects -- a waitable timer and a thread -- must be rejected the same way)
    timer = kit.timer(manual=True)
    go = kit.event(manual=True, initial=False)

    def body() -> None:
        assert w.WaitForSingleObject(go, 5000) == w.WAIT_OBJECT_0

    t = kit.thread(body)
    kit.on_cleanup(lambda: w.SetEvent(go))
    for obj in (timer, t.handle):
        w.SetLastError(SENTINEL)
        assert w.SignalObjectAndWait(obj, obj, 0, False) == w.WAIT_FAILED
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    # the wait half is not performed either: a signaled auto event is not consumed
    auto = kit.event(manual=False, initial=True)
    w.SetLastError(SENTINEL)
    assert w.SignalObjectAndWait(timer, auto, 0, False) == w.WAIT_FAILED
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    assert w.WaitForSingleObject(auto, 0) == w.WAIT_OBJECT_0
    assert w.SetEvent(go)
    t.join()


def test_signal_and_wait_unowned_mutex(kit) -> None:
    # spec: win32 #26
    m = kit.mutex(owned=False)
    auto = kit.event(manual=False, initial=True)
    w.SetLastError(SENTINEL)
    assert w.SignalObjectAndWait(m, auto, 0, False) == w.WAIT_FAILED
    assert w.GetLastError() == w.ERROR_NOT_OWNER
    assert w.WaitForSingleObject(auto, 0) == w.WAIT_OBJECT_0  # not consumed


def test_signal_and_wait_mutex_owned_by_other_thread(kit) -> None:
    # spec: win32 #26 (owned, but not by the caller -> still ERROR_NOT_OWNER)
    m = kit.mutex(owned=True)
    e = kit.event(manual=True, initial=True)
    result: list[tuple[int, int]] = []

    def body() -> None:
        w.SetLastError(SENTINEL)
        r = w.SignalObjectAndWait(m, e, 0, False)
        result.append((r, w.GetLastError()))

    kit.thread(body).join()
    assert result == [(w.WAIT_FAILED, w.ERROR_NOT_OWNER)]
    assert w.ReleaseMutex(m)


def test_signal_and_wait_owned_mutex_releases_it(kit) -> None:
    # spec: win32 #26 (contrast: the owner's SignalObjectAndWait releases the mutex)
    m = kit.mutex(owned=True)
    e = kit.event(manual=True, initial=True)
    assert w.SignalObjectAndWait(m, e, 0, False) == w.WAIT_OBJECT_0
    result: list[int] = []

    def body() -> None:
        r = w.WaitForSingleObject(m, 0)
        result.append(r)
        if r == w.WAIT_OBJECT_0:
            assert w.ReleaseMutex(m)

    kit.thread(body).join()
    assert result == [w.WAIT_OBJECT_0]
