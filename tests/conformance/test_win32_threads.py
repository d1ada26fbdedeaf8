"""Win32 conformance: thread objects and the thread-exit rules the kernel behaviours rely on
(mutex abandonment by ExitThread / TerminateThread: behaviours 18-19; thread handles as
waitable objects: §1.2; last-error is per thread: §0, #1-#2).
"""

from __future__ import annotations

import winaio.win32 as w

SENTINEL = 0xDEADBEEF


def test_create_thread_runs_start_routine_with_parameter() -> None:
    # spec: win32 §1.2 (thread row: signaled when terminated, exit code = return value)
    got: list = []
    param = object()

    def start(p: object) -> int:
        got.append((p, w.GetCurrentThreadId()))
        return 17

    tid = w.Ref(0)
    h = w.CreateThread(None, 0, start, param, 0, tid)
    assert h
    assert h % 4 == 0
    try:
        assert w.WaitForSingleObject(h, 5000) == w.WAIT_OBJECT_0
        assert got == [(param, tid.value)]
        assert w.GetThreadId(h) == tid.value
        assert tid.value != w.GetCurrentThreadId()
        code = w.Ref(SENTINEL)
        assert w.GetExitCodeThread(h, code)
        assert code.value == 17
        # a terminated thread stays signaled
        assert w.WaitForSingleObject(h, 0) == w.WAIT_OBJECT_0
        assert w.WaitForMultipleObjects(1, [h], True, 0) == w.WAIT_OBJECT_0
    finally:
        assert w.CloseHandle(h)


def test_create_thread_without_thread_id_and_none_exit_code() -> None:
    # spec: win32 §1.2 (lpThreadId may be NULL; a None return is exit code 0)
    h = w.CreateThread(None, 0, lambda _p: None, None, 0, None)
    assert h
    try:
        assert w.WaitForSingleObject(h, 5000) == w.WAIT_OBJECT_0
        code = w.Ref(SENTINEL)
        assert w.GetExitCodeThread(h, code)
        assert code.value == 0
        assert w.GetThreadId(h) != 0
    finally:
        assert w.CloseHandle(h)


def test_running_thread_is_still_active(kit) -> None:
    # spec: win32 §1.2 (a running thread is nonsignaled; GetExitCodeThread -> STILL_ACTIVE)
    go = kit.event(manual=True)

    def body() -> int:
        assert w.WaitForSingleObject(go, 5000) == w.WAIT_OBJECT_0
        return 1

    t = kit.thread(body)
    kit.on_cleanup(lambda: w.SetEvent(go))
    code = w.Ref(SENTINEL)
    assert w.GetExitCodeThread(t.handle, code)
    assert code.value == w.STILL_ACTIVE == 259
    assert w.WaitForSingleObject(t.handle, 0) == w.WAIT_TIMEOUT
    assert w.SetEvent(go)
    assert t.join() == 1


def test_suspended_thread_starts_on_resume(kit) -> None:
    # spec: win32 #37 (CREATE_SUSPENDED: nothing runs before ResumeThread)
    t = kit.thread(lambda: 4, suspended=True)
    assert t.is_running(50)
    assert not t.started
    assert w.ResumeThread(t.handle) == 1
    assert t.join() == 4
    assert t.started


def test_resume_thread_not_suspended_and_invalid(kit) -> None:
    # spec: win32 #37 (ResumeThread returns the previous suspend count)
    go = kit.event(manual=True)

    def body() -> None:
        assert w.WaitForSingleObject(go, 5000) == w.WAIT_OBJECT_0

    t = kit.thread(body)
    kit.on_cleanup(lambda: w.SetEvent(go))
    assert w.ResumeThread(t.handle) == 0
    assert w.SetEvent(go)
    t.join()
    w.SetLastError(SENTINEL)
    assert w.ResumeThread(0xDEADBEE0) == 0xFFFFFFFF
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE


def test_exit_thread_sets_exit_code(kit) -> None:
    # spec: win32 #18 (ExitThread ends the thread; code is the exit code)
    reached: list[str] = []

    def body() -> int:
        reached.append("before")
        w.ExitThread(0x1234)
        reached.append("after")  # never reached
        return 0

    t = kit.thread(body)
    assert t.join() == 0x1234
    assert reached == ["before"]


def test_exit_thread_abandons_owned_mutex(kit) -> None:
    # spec: win32 #18 (ExitThread while owning)
    m = kit.mutex()

    def body() -> None:
        assert w.WaitForSingleObject(m, 0) == w.WAIT_OBJECT_0
        assert w.WaitForSingleObject(m, 0) == w.WAIT_OBJECT_0  # recursion 2
        w.ExitThread(5)

    t = kit.thread(body)
    assert t.join() == 5
    assert w.WaitForSingleObject(m, 0) == w.WAIT_ABANDONED
    assert w.ReleaseMutex(m)  # recursion 1 for the new owner
    assert not w.ReleaseMutex(m)
    assert w.GetLastError() == w.ERROR_NOT_OWNER
    assert w.WaitForSingleObject(m, 0) == w.WAIT_OBJECT_0
    assert w.ReleaseMutex(m)


def test_terminate_thread_signals_and_abandons(kit, testing) -> None:
    # spec: win32 #18, #19 (terminating the owner wakes the waiter with WAIT_ABANDONED)
    m = kit.mutex()
    m2 = kit.dup(m)
    go = kit.event(manual=True)
    acquired = kit.event(manual=True)
    waited: list[int] = []

    def owner() -> None:
        assert w.WaitForSingleObject(m, 0) == w.WAIT_OBJECT_0
        assert w.SetEvent(acquired)
        w.WaitForSingleObject(go, 5000)

    def waiter() -> None:
        r = w.WaitForSingleObject(m2, 5000)
        waited.append(r)
        if r in (w.WAIT_OBJECT_0, w.WAIT_ABANDONED):
            assert w.ReleaseMutex(m2)

    o = kit.thread(owner, terminated_ok=True)
    kit.on_cleanup(lambda: w.SetEvent(go))
    assert w.WaitForSingleObject(acquired, 5000) == w.WAIT_OBJECT_0
    wt = kit.thread(waiter)
    testing.wait_until_waiters(m2, 1)
    testing.wait_until_blocked(o.tid)
    assert wt.is_running(50)

    w.SetLastError(SENTINEL)
    assert w.TerminateThread(o.handle, 0x77)
    assert o.join() == 0x77
    wt.join()
    assert waited == [w.WAIT_ABANDONED]
    # the terminated thread cannot receive APCs any more
    assert w.QueueUserAPC(lambda _d: None, o.handle, 0) == 0
    assert w.GetLastError() == w.ERROR_GEN_FAILURE
    assert w.SetEvent(go)  # let the emulated (Python) thread unwind


def test_last_error_is_per_thread(kit) -> None:
    # spec: win32 §0 (last-error is thread-local; #1/#2 rely on it)
    w.SetLastError(SENTINEL)
    seen: list[int] = []

    def body() -> None:
        seen.append(w.GetLastError())
        w.SetLastError(1234)
        seen.append(w.GetLastError())

    kit.thread(body).join()
    assert seen == [0, 1234]  # a new thread starts with last-error 0
    assert w.GetLastError() == SENTINEL


def test_thread_ids_are_distinct(kit) -> None:
    # spec: win32 §1.3 (per-thread state is keyed by thread)
    ids: list[int] = []

    def body() -> None:
        ids.append(w.GetCurrentThreadId())

    workers = [kit.thread(body) for _ in range(3)]
    for t in workers:
        t.join()
    assert sorted(ids) == sorted(t.tid for t in workers)
    assert len(set(ids)) == 3
    assert w.GetCurrentThreadId() not in ids
    assert w.GetCurrentProcessId() > 0
