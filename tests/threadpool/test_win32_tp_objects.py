"""The Vista thread-pool objects through ``winaio.win32`` (pools, environments, cleanup groups,
work, timers, waits, callback instances), after Wine's ntdll/kernel32 threadpool tests; the
races of issue 10 (callbacks running while their object is closed, cleanup groups closed with
callbacks pending); bad input (NULL, closed and wrong-type objects, mutexes, bad DWORDs).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import winaio
import winaio.win32 as w
from winaio.errors import Win32Error

LONG_MS = 5000


@pytest.fixture
def tp(make_pool) -> Any:
    pool = w.CreateThreadpool(None)
    assert pool is not None
    yield pool
    if not pool.closed:
        w.CloseThreadpool(pool)
    make_pool.pools.append(pool)


def env_of(pool: Any, group: Any = None, cancel: Any = None) -> w.TP_CALLBACK_ENVIRON:
    env = w.TP_CALLBACK_ENVIRON()
    w.InitializeThreadpoolEnvironment(env)
    w.SetThreadpoolCallbackPool(env, pool)
    if group is not None:
        w.SetThreadpoolCallbackCleanupGroup(env, group, cancel)
    return env


def sem(initial: int = 0, maximum: int = 100) -> int:
    handle = w.CreateSemaphore(None, initial, maximum, None)
    assert handle
    return handle


def test_simple_callbacks_default_and_own_pool(tp: Any) -> None:
    # [W:nt/threadpool.c:test_tp_simple]
    s = sem()
    got: list[Any] = []

    def simple(instance: Any, context: Any) -> None:
        got.append((type(instance).__name__, context))
        w.ReleaseSemaphore(s, 1, None)

    assert w.TrySubmitThreadpoolCallback(simple, "default", None)
    assert w.WaitForSingleObject(s, LONG_MS) == w.WAIT_OBJECT_0
    assert w.TrySubmitThreadpoolCallback(simple, "own", env_of(tp))
    assert w.WaitForSingleObject(s, LONG_MS) == w.WAIT_OBJECT_0
    env = env_of(tp)
    for priority in (w.TP_CALLBACK_PRIORITY_HIGH, w.TP_CALLBACK_PRIORITY_NORMAL,
                     w.TP_CALLBACK_PRIORITY_LOW):  # fmt: skip
        w.SetThreadpoolCallbackPriority(env, priority)
        assert w.TrySubmitThreadpoolCallback(simple, priority, env)
        assert w.WaitForSingleObject(s, LONG_MS) == w.WAIT_OBJECT_0
    env.CallbackPriority = 10
    assert not w.TrySubmitThreadpoolCallback(simple, "bad", env)
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    env = env_of(tp)
    env.Version = 9999
    assert not w.TrySubmitThreadpoolCallback(simple, "bad", env)
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    assert got[0] == ("CallbackInstance", "default") and len(got) == 5
    with pytest.raises(Win32Error):
        w.SetThreadpoolCallbackPriority(env, 5)
    w.CloseHandle(s)


def test_cleanup_group_waits_for_and_cancels_simple_callbacks(tp: Any) -> None:
    # [W:nt/threadpool.c:test_tp_simple] "use cleanup group to wait / test cancellation"
    group = w.CreateThreadpoolCleanupGroup()
    count = [0]
    lock = threading.Lock()

    def slow(instance: Any, context: Any) -> None:
        w.Sleep(20)
        with lock:
            count[0] += 1

    env = env_of(tp, group)
    assert w.TrySubmitThreadpoolCallback(slow, None, env)
    w.CloseThreadpoolCleanupGroupMembers(group, False, None)
    assert count[0] == 1
    count[0] = 0
    w.SetThreadpoolThreadMaximum(tp, 2)
    for _ in range(100):
        assert w.TrySubmitThreadpoolCallback(slow, None, env)
    w.CloseThreadpoolCleanupGroupMembers(group, True, None)
    assert count[0] < 100
    settled = count[0]
    w.Sleep(50)
    assert count[0] == settled  # nothing runs after the members were released
    w.CloseThreadpoolCleanupGroup(group)
    with pytest.raises(Win32Error):
        w.CloseThreadpoolCleanupGroup(group)


def test_work_objects(tp: Any) -> None:
    # [W:nt/threadpool.c:test_tp_work]
    w.SetThreadpoolThreadMaximum(tp, 1)
    count = [0]

    def work_cb(instance: Any, context: Any, work: Any) -> None:
        assert context == "ctx" and work is the_work
        w.Sleep(10)
        count[0] += 1

    the_work = w.CreateThreadpoolWork(work_cb, "ctx", env_of(tp))
    assert the_work is not None
    for _ in range(5):
        w.SubmitThreadpoolWork(the_work)
    w.WaitForThreadpoolWorkCallbacks(the_work, False)
    assert count[0] == 5
    count[0] = 0
    for _ in range(10):
        w.SubmitThreadpoolWork(the_work)
    w.WaitForThreadpoolWorkCallbacks(the_work, True)
    assert count[0] < 10
    w.CloseThreadpoolWork(the_work)


def test_group_cancel_callbacks(tp: Any) -> None:
    # [W:nt/threadpool.c:test_tp_group_cancel]
    w.SetThreadpoolThreadMaximum(tp, 1)
    group = w.CreateThreadpoolCleanupGroup()
    s0, s1 = sem(0, 4), sem(0, 1)
    cancel_threads: list[int] = []

    def blocker(instance: Any, context: Any) -> None:
        assert not w.CallbackMayRunLong(instance)  # one thread, and it is us
        w.ReleaseSemaphore(s1, 1, None)
        for _ in range(4):
            assert w.WaitForSingleObject(s0, LONG_MS) == w.WAIT_OBJECT_0
        w.ReleaseSemaphore(s1, 1, None)

    def cancel_cb(object_context: Any, cleanup_context: Any) -> None:
        assert object_context == 0xDEADBEEF and cleanup_context == "cleanup"
        cancel_threads.append(threading.get_ident())
        w.ReleaseSemaphore(s0, 1, None)

    def unexpected(*args: Any) -> None:
        raise AssertionError(f"unexpected callback {args}")

    assert w.TrySubmitThreadpoolCallback(blocker, None, env_of(tp))
    assert w.WaitForSingleObject(s1, LONG_MS) == w.WAIT_OBJECT_0
    env = env_of(tp, group, cancel_cb)
    assert w.TrySubmitThreadpoolCallback(unexpected, 0xDEADBEEF, env)
    work = w.CreateThreadpoolWork(unexpected, 0xDEADBEEF, env)
    timer = w.CreateThreadpoolTimer(unexpected, 0xDEADBEEF, env)
    wait = w.CreateThreadpoolWait(unexpected, 0xDEADBEEF, env)
    assert work and timer and wait
    w.SubmitThreadpoolWork(work)
    w.CloseThreadpoolCleanupGroupMembers(group, True, "cleanup")
    assert w.WaitForSingleObject(s1, LONG_MS) == w.WAIT_OBJECT_0
    assert cancel_threads == [threading.get_ident()] * 4  # once per member, in the caller
    with pytest.raises(Win32Error):
        w.SubmitThreadpoolWork(work)  # released with the group
    # A member closed by its own callback gets no cancel callback.
    done = sem()

    def closes_itself(instance: Any, context: Any, work: Any) -> None:
        w.ReleaseSemaphore(done, 1, None)
        w.Sleep(50)
        w.CloseThreadpoolWork(work)

    env = env_of(tp, group, unexpected)
    work = w.CreateThreadpoolWork(closes_itself, None, env)
    w.SubmitThreadpoolWork(work)
    assert w.WaitForSingleObject(done, LONG_MS) == w.WAIT_OBJECT_0
    w.CloseThreadpoolCleanupGroupMembers(group, True, None)
    # One cancel callback for an object with many pending callbacks.
    calls = [0]
    env = env_of(tp, group, lambda obj, ctx: calls.__setitem__(0, calls[0] + 1))
    work = w.CreateThreadpoolWork(lambda i, c, wk: w.Sleep(10), None, env)
    for _ in range(10):
        w.SubmitThreadpoolWork(work)
    w.CloseThreadpoolCleanupGroupMembers(group, True, None)
    assert calls == [1]
    w.CloseThreadpoolCleanupGroup(group)
    for h in (s0, s1, done):
        w.CloseHandle(h)


def test_instance_functions(tp: Any) -> None:
    # [W:nt/threadpool.c:test_tp_instance] and the other *WhenCallbackReturns.
    s0, s1 = sem(0, 1), sem(0, 1)
    event = w.CreateEvent(None, True, False, None)
    mutex = w.CreateMutex(None, False, None)

    def on_return(instance: Any, context: Any) -> None:
        assert w.WaitForSingleObject(mutex, 0) == w.WAIT_OBJECT_0
        w.ReleaseMutexWhenCallbackReturns(instance, mutex)
        w.ReleaseSemaphoreWhenCallbackReturns(instance, s0, 1)
        w.SetEventWhenCallbackReturns(instance, event)

    env = env_of(tp)
    env.FinalizationCallback = lambda instance, context: w.ReleaseSemaphore(s1, 1, None)
    assert w.TrySubmitThreadpoolCallback(on_return, None, env)
    assert w.WaitForSingleObject(event, LONG_MS) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(s0, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(s1, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(mutex, 0) == w.WAIT_OBJECT_0  # released by the worker
    assert w.ReleaseMutex(mutex)
    for h in (s0, s1, event, mutex):
        w.CloseHandle(h)


def test_disassociate(tp: Any) -> None:
    # [W:nt/threadpool.c:test_tp_disassociate]
    s0, s1 = sem(0, 1), sem(0, 1)

    def disassociate_cb(instance: Any, context: Any, work: Any) -> None:
        w.DisassociateCurrentThreadFromCallback(instance)
        assert w.WaitForSingleObject(s0, LONG_MS) == w.WAIT_OBJECT_0
        w.ReleaseSemaphore(s1, 1, None)

    work = w.CreateThreadpoolWork(disassociate_cb, None, env_of(tp))
    w.SubmitThreadpoolWork(work)
    w.WaitForThreadpoolWorkCallbacks(work, False)  # returns although the callback runs
    assert w.WaitForSingleObject(s1, 100) == w.WAIT_TIMEOUT
    w.ReleaseSemaphore(s0, 1, None)
    assert w.WaitForSingleObject(s1, LONG_MS) == w.WAIT_OBJECT_0
    w.CloseThreadpoolWork(work)
    # The cleanup group still waits for a disassociated callback.
    group = w.CreateThreadpoolCleanupGroup()

    def disassociate2_cb(instance: Any, context: Any, work: Any) -> None:
        w.DisassociateCurrentThreadFromCallback(instance)
        assert w.WaitForSingleObject(s0, 100) == w.WAIT_TIMEOUT
        w.ReleaseSemaphore(s1, 1, None)

    work = w.CreateThreadpoolWork(disassociate2_cb, None, env_of(tp, group))
    w.SubmitThreadpoolWork(work)
    w.CloseThreadpoolCleanupGroupMembers(group, False, None)
    assert w.WaitForSingleObject(s1, 0) == w.WAIT_OBJECT_0
    w.CloseThreadpoolCleanupGroup(group)
    for h in (s0, s1):
        w.CloseHandle(h)


def test_timer_objects(tp: Any) -> None:
    # [W:nt/threadpool.c:test_tp_timer], without timing assertions.
    s = sem(0, 3)
    timer = w.CreateThreadpoolTimer(lambda i, c, t: w.ReleaseSemaphore(s, 1, None), None,
                                    env_of(tp))  # fmt: skip
    assert timer is not None and not w.IsThreadpoolTimerSet(timer)
    w.SetThreadpoolTimer(timer, -200 * 10000, 0, 0)  # relative 200 ms
    assert w.IsThreadpoolTimerSet(timer)
    w.WaitForThreadpoolTimerCallbacks(timer, False)  # does not wait for the expiry
    assert w.WaitForSingleObject(s, LONG_MS) == w.WAIT_OBJECT_0
    assert w.IsThreadpoolTimerSet(timer)
    now = w.GetSystemTimeAsFileTime()
    w.SetThreadpoolTimer(timer, now + 100 * 10000, 0, 0)  # absolute
    assert w.WaitForSingleObject(s, LONG_MS) == w.WAIT_OBJECT_0
    w.SetThreadpoolTimer(timer, 0, 0, 0)  # now
    assert w.WaitForSingleObject(s, LONG_MS) == w.WAIT_OBJECT_0
    assert w.SetThreadpoolTimerEx(timer, w.Ref(-10 * 10000), 20, 0) is False
    for _ in range(3):
        assert w.WaitForSingleObject(s, LONG_MS) == w.WAIT_OBJECT_0
    assert w.SetThreadpoolTimerEx(timer, None, 0, 0) is True
    assert not w.IsThreadpoolTimerSet(timer)
    w.WaitForThreadpoolTimerCallbacks(timer, True)
    for bad in ((-1, 0), (0, -5), (1 << 32, 0), (0, 1 << 40)):
        with pytest.raises(Win32Error) as info:
            w.SetThreadpoolTimer(timer, -10, *bad)
        assert info.value.winerror == w.ERROR_INVALID_PARAMETER
    with pytest.raises(Win32Error):
        w.SetThreadpoolTimer(timer, "soon", 0, 0)
    w.CloseThreadpoolTimer(timer)
    with pytest.raises(Win32Error) as info:
        w.CloseThreadpoolTimer(timer)
    assert info.value.winerror == w.ERROR_INVALID_HANDLE
    w.CloseHandle(s)


def test_wait_objects(tp: Any) -> None:
    # [W:nt/threadpool.c:test_tp_wait]
    results: list[int] = []
    s0, s1 = sem(0, 2), sem(0, 1)

    def wait_cb(instance: Any, context: Any, wait: Any, result: int) -> None:
        assert context == "ctx" and wait is the_wait
        results.append(result)
        w.ReleaseSemaphore(s0, 1, None)

    the_wait = w.CreateThreadpoolWait(wait_cb, "ctx", env_of(tp))
    assert the_wait is not None
    w.SetThreadpoolWait(the_wait, s1, None)
    w.ReleaseSemaphore(s1, 1, None)
    assert w.WaitForSingleObject(s0, LONG_MS) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(s1, 0) == w.WAIT_TIMEOUT  # consumed by the pool's wait
    w.SetThreadpoolWait(the_wait, s1, -50 * 10000)  # relative timeout
    assert w.WaitForSingleObject(s0, LONG_MS) == w.WAIT_OBJECT_0
    w.SetThreadpoolWait(the_wait, s1, 0)  # timeout zero
    assert w.WaitForSingleObject(s0, LONG_MS) == w.WAIT_OBJECT_0
    w.SetThreadpoolWait(the_wait, w.INVALID_HANDLE_VALUE, 0)  # the process: never signaled
    assert w.WaitForSingleObject(s0, LONG_MS) == w.WAIT_OBJECT_0
    assert results == [w.WAIT_OBJECT_0, w.WAIT_TIMEOUT, w.WAIT_TIMEOUT, w.WAIT_TIMEOUT]
    w.SetThreadpoolWait(the_wait, s1, -250 * 10000)
    assert w.SetThreadpoolWaitEx(the_wait, 0, 0xDEADBEEF, None) is True  # NULL: stop
    w.ReleaseSemaphore(s1, 1, None)
    assert w.WaitForSingleObject(s0, 100) == w.WAIT_TIMEOUT
    assert w.WaitForSingleObject(s1, 0) == w.WAIT_OBJECT_0  # nobody consumed it
    mutex = w.CreateMutex(None, False, None)
    with pytest.raises(Win32Error) as info:
        w.SetThreadpoolWait(the_wait, mutex, None)
    assert info.value.winerror == w.ERROR_INVALID_PARAMETER
    with pytest.raises(Win32Error) as info:
        w.SetThreadpoolWait(the_wait, 0x7FFFFFF0, None)
    assert info.value.winerror == w.ERROR_INVALID_HANDLE
    w.WaitForThreadpoolWaitCallbacks(the_wait, True)
    w.CloseThreadpoolWait(the_wait)
    for h in (s0, s1, mutex):
        w.CloseHandle(h)


def test_close_pool_after_its_last_object(make_pool) -> None:
    pool = w.CreateThreadpool(None)
    make_pool.pools.append(pool)
    work = w.CreateThreadpoolWork(lambda i, c, wk: None, None, env_of(pool))
    w.SubmitThreadpoolWork(work)
    w.CloseThreadpool(pool)  # an object is open: released after it
    assert not pool.closed
    w.WaitForThreadpoolWorkCallbacks(work, False)
    w.CloseThreadpoolWork(work)
    assert pool.closed
    with pytest.raises(Win32Error) as info:
        w.CloseThreadpool(pool)
    assert info.value.winerror == w.ERROR_INVALID_HANDLE
    assert w.CreateThreadpoolWork(lambda i, c, wk: None, None, env_of(pool)) is None
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE


def test_pool_sizes_and_stack_information(tp: Any) -> None:
    assert w.SetThreadpoolThreadMinimum(tp, 2)
    assert tp.thread_count == 2
    w.SetThreadpoolThreadMaximum(tp, 1)
    assert tp.max_threads == 1 and tp.min_threads == 1
    info = w.TP_POOL_STACK_INFORMATION()
    assert w.QueryThreadpoolStackInformation(tp, info) and info.StackReserve > 0
    assert w.SetThreadpoolStackInformation(tp, w.TP_POOL_STACK_INFORMATION(1, 1))
    assert w.QueryThreadpoolStackInformation(tp, info) and (
        info.StackReserve,
        info.StackCommit,
    ) == (1, 1)
    assert not w.SetThreadpoolStackInformation(tp, None)
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    assert not w.SetThreadpoolThreadMinimum(tp, -1)
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER


@pytest.mark.parametrize(
    "call",
    [
        lambda: w.SubmitThreadpoolWork(None),
        lambda: w.WaitForThreadpoolWorkCallbacks(0, False),
        lambda: w.CloseThreadpoolWork(None),
        lambda: w.SetThreadpoolTimer(None, 0, 0, 0),
        lambda: w.IsThreadpoolTimerSet(None),
        lambda: w.SetThreadpoolWait(None, 0, None),
        lambda: w.CloseThreadpool(None),
        lambda: w.CloseThreadpoolCleanupGroupMembers(None, False, None),
        lambda: w.CallbackMayRunLong(None),
        lambda: w.SetThreadpoolCallbackPool(None, None),
    ],
)
def test_null_objects_raise_invalid_parameter(call: Any) -> None:
    with pytest.raises(Win32Error) as info:
        call()
    assert info.value.winerror == w.ERROR_INVALID_PARAMETER


def test_wrong_object_types_raise_invalid_handle(tp: Any) -> None:
    timer = w.CreateThreadpoolTimer(lambda *a: None, None, env_of(tp))
    group = w.CreateThreadpoolCleanupGroup()
    for call in (
        lambda: w.SubmitThreadpoolWork(timer),
        lambda: w.SetThreadpoolTimer(group, 0, 0, 0),
        lambda: w.CloseThreadpoolWait(timer),
        lambda: w.CloseThreadpool(group),
    ):
        with pytest.raises(Win32Error) as info:
            call()
        assert info.value.winerror == w.ERROR_INVALID_HANDLE
    env = env_of(tp)
    env.Pool = group
    assert w.CreateThreadpoolWork(lambda *a: None, None, env) is None
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    assert w.CreateThreadpoolWork(lambda *a: None, None, "env") is None  # type: ignore[arg-type]
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    assert w.CreateThreadpoolWork(None, None, env_of(tp)) is None  # type: ignore[arg-type]
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    w.CloseThreadpoolTimer(timer)
    w.CloseThreadpoolCleanupGroup(group)


def test_work_closed_while_its_callback_runs(tp: Any) -> None:
    w.SetThreadpoolThreadMaximum(tp, 1)
    started, gate, done = sem(0, 1), sem(0, 1), sem(0, 1)

    def cb(instance: Any, context: Any, work: Any) -> None:
        w.ReleaseSemaphore(started, 1, None)
        w.WaitForSingleObject(gate, LONG_MS)
        w.ReleaseSemaphore(done, 1, None)

    work = w.CreateThreadpoolWork(cb, None, env_of(tp))
    w.SubmitThreadpoolWork(work)
    w.SubmitThreadpoolWork(work)
    assert w.WaitForSingleObject(started, LONG_MS) == w.WAIT_OBJECT_0
    w.CloseThreadpoolWork(work)  # the running and the queued callback still complete
    w.ReleaseSemaphore(gate, 1, None)
    assert w.WaitForSingleObject(done, LONG_MS) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(started, LONG_MS) == w.WAIT_OBJECT_0
    w.ReleaseSemaphore(gate, 1, None)
    assert w.WaitForSingleObject(done, LONG_MS) == w.WAIT_OBJECT_0
    for h in (started, gate, done):
        w.CloseHandle(h)


def test_default_pool_environment_and_winaio_names() -> None:
    env = w.TP_CALLBACK_ENVIRON()
    assert env.Version == 3 and env.CallbackPriority == w.TP_CALLBACK_PRIORITY_NORMAL
    w.SetThreadpoolCallbackRunsLong(env)
    w.SetThreadpoolCallbackPersistent(env)
    w.SetThreadpoolCallbackLibrary(env, None)
    assert env.LongFunction and env.Persistent
    w.DestroyThreadpoolEnvironment(env)
    done = winaio.Event()
    assert w.TrySubmitThreadpoolCallback(lambda i, c: done.set(), None, env)
    assert winaio.wait(done, 5).signaled
