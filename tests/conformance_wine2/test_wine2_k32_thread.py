"""Threads, ported from Wine's ``dlls/kernel32/tests/thread.c``: CreateThread (test_CreateThread_
basic, test_CreateThread_suspended), suspend counts seen from outside (test_SuspendThread),
access rights of OpenThread handles (test_SuspendThread, test_TerminateThread,
test_thread_priority), priority ranges, GetExitCodeThread (test_GetThreadExitCode)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import winaio.testing as wt
import winaio.win32 as w

SENTINEL = 0xDEADBEEF
LONG = 5000
NUM_THREADS = 4
STILL_ACTIVE = 259
THREAD_ALL_ACCESS_NT4 = w.STANDARD_RIGHTS_REQUIRED | w.SYNCHRONIZE | 0x3FF


def _fails(call: Callable[[], Any], error: int) -> None:
    w.SetLastError(SENTINEL)
    assert not call()
    assert w.GetLastError() == error, (w.GetLastError(), error)


def test_create_thread_basic(kit) -> None:
    # [W:k32/thread.c:test_CreateThread_basic] (threads run concurrently - each waits for all
    # the others' events - with their own ids, none the creator's; the start routine's return
    # is the exit code; CreateThread leaves the last error alone)
    events = [kit.event() for _ in range(NUM_THREADS)]
    threadmem = [0] * NUM_THREADS

    def func(i: int) -> int:
        threadmem[i] = w.GetCurrentThreadId()
        w.SetEvent(events[i])
        assert w.WaitForMultipleObjects(NUM_THREADS, events, True, LONG) == w.WAIT_OBJECT_0
        assert all(threadmem)
        return NUM_THREADS + i

    handles, ids = [], []
    for i in range(NUM_THREADS):
        tid = w.Ref(0)
        h = w.CreateThread(None, 0, func, i, 0, tid)
        assert h
        handles.append(kit.keep(h))
        ids.append(tid.value)
    for i, h in enumerate(handles):
        assert w.WaitForSingleObject(h, LONG) == w.WAIT_OBJECT_0
        code = w.Ref(SENTINEL)
        assert w.GetExitCodeThread(h, code) and code.value == NUM_THREADS + i
    assert threadmem == ids
    assert len(set(ids)) == NUM_THREADS and w.GetCurrentThreadId() not in ids
    w.SetLastError(0xFACEABAD)
    h = kit.keep(w.CreateThread(None, 0, lambda _p: 99, None, 0, w.Ref(0)))
    assert w.GetLastError() == 0xFACEABAD
    assert w.WaitForSingleObject(h, LONG) == w.WAIT_OBJECT_0
    code = w.Ref(SENTINEL)
    assert w.GetExitCodeThread(h, code) and code.value == 99


def test_create_thread_suspended(kit) -> None:
    # [W:k32/thread.c:test_CreateThread_suspended] (a CREATE_SUSPENDED thread: SuspendThread
    # returns the previous count 1, ResumeThread 2 and the thread stays stopped, a second
    # ResumeThread (1) starts it; once it has ended SuspendThread fails and ResumeThread gives 0)
    ran: list[int] = []
    tid = w.Ref(0)
    h = kit.keep(w.CreateThread(None, 0, lambda _p: ran.append(1) or 99, None,
                               w.CREATE_SUSPENDED, tid))  # fmt: skip
    assert w.SuspendThread(h) == 1
    assert w.ResumeThread(h) == 2
    assert w.WaitForSingleObject(h, 100) == w.WAIT_TIMEOUT and ran == []
    assert w.ResumeThread(h) == 1
    assert w.WaitForSingleObject(h, LONG) == w.WAIT_OBJECT_0 and ran == [1]
    assert w.SuspendThread(h) == 0xFFFFFFFF
    assert w.ResumeThread(h) == 0


def test_suspend_a_self_suspended_thread(kit) -> None:
    # [W:k32/thread.c:test_SuspendThread] (a thread that suspended itself: SuspendThread from
    # outside returns 1 and ResumeThread 2; a handle without THREAD_SUSPEND_RESUME can do
    # neither (-1); the thread is STILL_ACTIVE; one more ResumeThread lets it finish; a finished
    # thread cannot be suspended: ERROR_ACCESS_DENIED)
    tid = w.Ref(0)
    h = kit.keep(w.CreateThread(None, 0, lambda _p: w.SuspendThread(w.GetCurrentThread()) and 99,
                               None, 0, tid))  # fmt: skip
    wt.wait_until_blocked(tid.value)
    assert w.SuspendThread(h) == 1
    assert w.ResumeThread(h) == 2
    limited = kit.keep(
        w.OpenThread(THREAD_ALL_ACCESS_NT4 & ~w.THREAD_SUSPEND_RESUME, False, tid.value)
    )
    _fails(lambda: w.SuspendThread(limited) != 0xFFFFFFFF, w.ERROR_ACCESS_DENIED)
    _fails(lambda: w.ResumeThread(limited) != 0xFFFFFFFF, w.ERROR_ACCESS_DENIED)
    code = w.Ref(SENTINEL)
    assert w.GetExitCodeThread(h, code) and code.value == STILL_ACTIVE
    assert w.ResumeThread(h) == 1
    assert w.WaitForSingleObject(h, LONG) == w.WAIT_OBJECT_0
    _fails(lambda: w.SuspendThread(h) != 0xFFFFFFFF, w.ERROR_ACCESS_DENIED)


def test_terminate_thread_access_and_exit_code(kit) -> None:
    # [W:k32/thread.c:test_TerminateThread] (a handle without THREAD_TERMINATE cannot
    # terminate: ERROR_ACCESS_DENIED; TerminateThread(99) ends a sleeping thread with exit code
    # 99)
    started = kit.event()

    def sleeper(_p: Any) -> int:
        w.SetEvent(started)
        w.Sleep(LONG * 4)
        return 0

    tid = w.Ref(0)
    h = kit.keep(w.CreateThread(None, 0, sleeper, None, 0, tid))
    kit.wait_signaled(started)
    limited = kit.keep(w.OpenThread(THREAD_ALL_ACCESS_NT4 & ~w.THREAD_TERMINATE, False, tid.value))
    _fails(lambda: w.TerminateThread(limited, 99), w.ERROR_ACCESS_DENIED)
    assert w.TerminateThread(h, 99)
    assert w.WaitForSingleObject(h, LONG) == w.WAIT_OBJECT_0
    code = w.Ref(SENTINEL)
    assert w.GetExitCodeThread(h, code) and code.value == 99


def test_thread_priority_range_and_access(kit) -> None:
    # [W:k32/thread.c:test_thread_priority] (without THREAD_QUERY_INFORMATION and
    # THREAD_SET_INFORMATION: SetThreadPriority fails, GetThreadPriority returns
    # THREAD_PRIORITY_ERROR_RETURN, GetExitCodeThread fails; -2..2, TIME_CRITICAL and IDLE are
    # accepted; -3 and 3 are ERROR_INVALID_PARAMETER and change nothing)
    me = w.GetCurrentThread()
    limited = kit.keep(
        w.OpenThread(
            THREAD_ALL_ACCESS_NT4 & ~w.THREAD_QUERY_INFORMATION & ~w.THREAD_SET_INFORMATION,
            False,
            w.GetCurrentThreadId(),
        )
    )
    _fails(lambda: w.SetThreadPriority(limited, 1), w.ERROR_ACCESS_DENIED)
    assert w.GetThreadPriority(limited) == w.THREAD_PRIORITY_ERROR_RETURN
    _fails(lambda: w.GetExitCodeThread(limited, w.Ref(0)), w.ERROR_ACCESS_DENIED)
    try:
        for priority in range(-2, 3):
            assert w.SetThreadPriority(me, priority)
            assert w.GetThreadPriority(me) == priority
        for special in (w.THREAD_PRIORITY_TIME_CRITICAL, w.THREAD_PRIORITY_IDLE):
            assert w.SetThreadPriority(me, special) and w.GetThreadPriority(me) == special
        for edge, beyond in ((-2, -3), (2, 3)):
            assert w.SetThreadPriority(me, edge)
            _fails(lambda b=beyond: w.SetThreadPriority(me, b), w.ERROR_INVALID_PARAMETER)
            assert w.GetThreadPriority(me) == edge
    finally:
        w.SetThreadPriority(me, w.THREAD_PRIORITY_NORMAL)


def test_get_exit_code_thread(kit) -> None:
    # [W:k32/thread.c:test_GetThreadExitCode] (a bad handle: ERROR_INVALID_HANDLE; a finished
    # thread's return value)
    _fails(lambda: w.GetExitCodeThread(0x2BAD2BAD, w.Ref(0)), w.ERROR_INVALID_HANDLE)
    h = kit.keep(w.CreateThread(None, 0, lambda _p: 99, None, 0, None))
    assert w.WaitForSingleObject(h, LONG) == w.WAIT_OBJECT_0
    code = w.Ref(SENTINEL)
    assert w.GetExitCodeThread(h, code) and code.value == 99
