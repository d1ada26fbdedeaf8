"""Synchronisation beside kernel objects, ported from Wine's ``dlls/kernel32/tests/sync.c``
(test_mutex access rights, test_initonce, test_condvars_*, test_srwlock_*) and
``dlls/kernelbase/tests/sync.c`` (test_WaitOnAddress), or checked against MS Learn: critical
sections, SRW locks, condition variables, InitOnce, WaitOnAddress, the *Ex creators,
SuspendThread, thread priorities, FILETIME out-parameters."""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import pytest

import winaio.testing as wt
import winaio.win32 as w
from winaio.errors import Win32Error

SENTINEL = 0xDEADBEEF
LONG = 5000


def _fails(call: Any, error: int) -> None:
    w.SetLastError(SENTINEL)
    assert not call()
    assert w.GetLastError() == error, (w.GetLastError(), error)


class Threads:
    """CreateThread workers, joined (and their assertion errors re-raised) at the end."""

    def __init__(self) -> None:
        self.handles: list[int] = []
        self.errors: list[BaseException] = []
        self.tids: list[int] = []

    def start(self, body: Any) -> int:
        def run(_: Any) -> int:
            try:
                body()
            except BaseException as exc:  # recorded, re-raised by join
                self.errors.append(exc)
                return 1
            return 0

        tid = w.Ref(0)
        h = w.CreateThread(None, 0, run, None, 0, tid)
        assert h
        self.handles.append(h)
        self.tids.append(tid.value)
        return tid.value

    def join(self) -> None:
        for h in self.handles:
            assert w.WaitForSingleObject(h, LONG) == w.WAIT_OBJECT_0
            w.CloseHandle(h)
        self.handles.clear()
        if self.errors:
            raise self.errors[0]


@pytest.fixture
def threads() -> Any:
    kit = Threads()
    yield kit
    kit.join()


# --------------------------------------------------------------------------------------------
# access rights of Open* and the *Ex creators


def test_open_mutex_access_rights() -> None:
    # [W:k32/sync.c:test_mutex] (the todo_wine lines are Windows' behaviour)
    name = f"WineTestMutex-{id(object())}"
    _fails(lambda: w.OpenMutex(0, False, name), w.ERROR_FILE_NOT_FOUND)
    created = w.CreateMutex(None, False, name)
    assert created
    _fails(lambda: w.OpenMutex(0, False, name), w.ERROR_ACCESS_DENIED)
    opened = w.OpenMutex(w.GENERIC_EXECUTE, False, name)
    assert opened
    assert w.WaitForSingleObject(opened, 0) == w.WAIT_OBJECT_0  # GENERIC_EXECUTE: SYNCHRONIZE
    assert w.CloseHandle(opened)
    for _ in range(31):
        assert w.WaitForSingleObject(created, 0) == w.WAIT_OBJECT_0
    opened = w.OpenMutex(w.GENERIC_READ | w.GENERIC_WRITE, False, name)
    assert opened
    _fails(lambda: w.WaitForSingleObject(opened, 0) != w.WAIT_FAILED, w.ERROR_ACCESS_DENIED)
    assert w.CloseHandle(opened)
    failed = 0
    for bit in range(32):
        w.SetLastError(SENTINEL)
        opened = w.OpenMutex(1 << bit, False, name)
        if opened:
            assert w.ReleaseMutex(opened), (bit, w.GetLastError())  # no right needed
            assert w.CloseHandle(opened)
        else:
            want = w.ERROR_PRIVILEGE_NOT_HELD if 1 << bit == 0x01000000 else w.ERROR_ACCESS_DENIED
            assert w.GetLastError() == want, (bit, w.GetLastError())
            assert w.ReleaseMutex(created)
            failed |= 1 << bit
    assert failed == 0x0DE0FFFE
    _fails(lambda: w.ReleaseMutex(created), w.ERROR_NOT_OWNER)
    assert w.CloseHandle(created)


def test_open_event_generic_rights_are_mapped() -> None:
    # [MS:Synchronization Object Security and Access Rights] (GENERIC_WRITE includes
    # EVENT_MODIFY_STATE, GENERIC_READ does not include SYNCHRONIZE)
    name = f"ev-{id(object())}"
    ev = w.CreateEvent(None, True, False, name)
    writer = w.OpenEvent(w.GENERIC_WRITE, False, name)
    assert writer and w.SetEvent(writer)
    reader = w.OpenEvent(w.GENERIC_READ, False, name)
    assert reader
    _fails(lambda: w.SetEvent(reader), w.ERROR_ACCESS_DENIED)
    _fails(lambda: w.WaitForSingleObject(reader, 0) != w.WAIT_FAILED, w.ERROR_ACCESS_DENIED)
    _fails(lambda: w.OpenEvent(0x4, False, name), w.ERROR_ACCESS_DENIED)  # undefined right
    for h in (ev, writer, reader):
        assert w.CloseHandle(h)


def test_create_event_ex() -> None:
    # [MS:CreateEventExW] (flags, the handle's access, ERROR_ALREADY_EXISTS)
    h = w.CreateEventEx(
        None, None, w.CREATE_EVENT_MANUAL_RESET | w.CREATE_EVENT_INITIAL_SET, w.EVENT_ALL_ACCESS
    )
    assert h and w.GetLastError() == 0
    assert w.WaitForSingleObject(h, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(h, 0) == w.WAIT_OBJECT_0  # manual reset
    assert w.CloseHandle(h)
    h = w.CreateEventEx(None, None, 0, w.SYNCHRONIZE)  # auto reset, nonsignaled, wait-only
    assert h
    assert w.WaitForSingleObject(h, 0) == w.WAIT_TIMEOUT
    _fails(lambda: w.SetEvent(h), w.ERROR_ACCESS_DENIED)
    assert w.CloseHandle(h)
    _fails(lambda: w.CreateEventEx(None, None, 0x4, w.EVENT_ALL_ACCESS), w.ERROR_INVALID_PARAMETER)
    name = f"evx-{id(object())}"
    first = w.CreateEventEx(None, name, 0, w.EVENT_ALL_ACCESS)
    second = w.CreateEventEx(None, name, w.CREATE_EVENT_INITIAL_SET, w.SYNCHRONIZE)
    assert second and w.GetLastError() == w.ERROR_ALREADY_EXISTS
    assert w.WaitForSingleObject(second, 0) == w.WAIT_TIMEOUT  # the existing one, unchanged
    assert w.CloseHandle(first) and w.CloseHandle(second)


def test_create_mutex_semaphore_timer_ex() -> None:
    # [MS:CreateMutexExW] [MS:CreateSemaphoreExW] [MS:CreateWaitableTimerExW]
    m = w.CreateMutexEx(None, None, w.CREATE_MUTEX_INITIAL_OWNER, w.MUTEX_ALL_ACCESS)
    assert m and w.ReleaseMutex(m)
    _fails(lambda: w.ReleaseMutex(m), w.ERROR_NOT_OWNER)
    _fails(lambda: w.CreateMutexEx(None, None, 2, w.MUTEX_ALL_ACCESS), w.ERROR_INVALID_PARAMETER)
    s = w.CreateSemaphoreEx(None, 1, 2, None, 0, w.SYNCHRONIZE)
    assert s and w.WaitForSingleObject(s, 0) == w.WAIT_OBJECT_0
    _fails(lambda: w.ReleaseSemaphore(s, 1, None), w.ERROR_ACCESS_DENIED)
    _fails(lambda: w.CreateSemaphoreEx(None, 0, 1, None, 1, 0), w.ERROR_INVALID_PARAMETER)
    _fails(lambda: w.CreateSemaphoreEx(None, 3, 2, None, 0, 0), w.ERROR_INVALID_PARAMETER)
    t = w.CreateWaitableTimerEx(
        None, None, w.CREATE_WAITABLE_TIMER_MANUAL_RESET, w.TIMER_ALL_ACCESS
    )
    assert t and w.SetWaitableTimer(t, w.LARGE_INTEGER(-1), 0, None, None, False)
    assert w.WaitForSingleObject(t, LONG) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(t, 0) == w.WAIT_OBJECT_0  # manual reset
    _fails(lambda: w.CreateWaitableTimerEx(None, None, 4, 0), w.ERROR_INVALID_PARAMETER)
    for h in (m, s, t):
        assert w.CloseHandle(h)


def test_filetime_out_parameters() -> None:
    # issue 12: out-parameters through Ref / FILETIME [MS:GetSystemTimeAsFileTime]
    # [MS:SetWaitableTimer] (lpDueTime: a LARGE_INTEGER, FILETIME-like)
    ft = w.FILETIME()
    ref = w.Ref(0)
    value = w.GetSystemTimeAsFileTime(ft)
    w.GetSystemTimeAsFileTime(ref)
    assert ft.value == value and ft.dwHighDateTime == value >> 32
    assert 0 <= ref.value - value < 10**7 * 60
    t = w.CreateWaitableTimer(None, True, None)
    due = w.FILETIME()
    due.value = w.GetSystemTimeAsFileTime() + 10_000  # absolute, 1 ms ahead
    assert w.SetWaitableTimer(t, due, 0, None, None, False)
    assert w.WaitForSingleObject(t, LONG) == w.WAIT_OBJECT_0
    assert w.SetWaitableTimer(t, w.Ref(-10_000), 0, None, None, False)
    assert w.WaitForSingleObject(t, LONG) == w.WAIT_OBJECT_0
    _fails(lambda: w.SetWaitableTimer(t, None, 0, None, None, False), w.ERROR_NOACCESS)
    _fails(lambda: w.SetWaitableTimer(t, "soon", 0, None, None, False), w.ERROR_INVALID_PARAMETER)
    assert w.CloseHandle(t)


# --------------------------------------------------------------------------------------------
# critical sections


def test_critical_section_recursion_and_fields(threads) -> None:
    # [MS:EnterCriticalSection] [MS:TryEnterCriticalSection] [MS:LeaveCriticalSection]
    cs = w.CRITICAL_SECTION()
    w.InitializeCriticalSection(cs)
    me = w.GetCurrentThreadId()
    assert (cs.LockCount, cs.RecursionCount, cs.OwningThread) == (-1, 0, 0)
    w.EnterCriticalSection(cs)
    w.EnterCriticalSection(cs)
    assert w.TryEnterCriticalSection(cs)
    assert (cs.LockCount, cs.RecursionCount, cs.OwningThread) == (-2, 3, me)
    got: list[bool] = []
    threads.start(lambda: got.append(w.TryEnterCriticalSection(cs)))
    threads.join()
    assert got == [False]
    for _ in range(3):
        w.LeaveCriticalSection(cs)
    assert (cs.LockCount, cs.RecursionCount, cs.OwningThread) == (-1, 0, 0)
    with pytest.raises(Win32Error) as info:
        w.LeaveCriticalSection(cs)
    assert info.value.winerror == w.ERROR_NOT_OWNER
    w.DeleteCriticalSection(cs)
    with pytest.raises(Win32Error) as info:
        w.EnterCriticalSection(cs)
    assert info.value.winerror == w.ERROR_INVALID_HANDLE
    with pytest.raises(Win32Error):
        w.EnterCriticalSection(w.CRITICAL_SECTION())  # never initialised


def test_critical_section_contention_is_a_non_alertable_wait(threads) -> None:
    # [MS:EnterCriticalSection] (a waiting thread blocks; APCs do not run there; LockCount
    # counts the waiter) [MS:InitializeCriticalSectionAndSpinCount]
    cs = w.CRITICAL_SECTION()
    assert w.InitializeCriticalSectionAndSpinCount(cs, 0x80000400)
    assert cs.SpinCount == 0x400  # the high byte is flags
    assert w.SetCriticalSectionSpinCount(cs, 10) == 0x400
    ran: list[str] = []
    w.EnterCriticalSection(cs)

    def contender() -> None:
        w.EnterCriticalSection(cs)
        ran.append("entered")
        w.LeaveCriticalSection(cs)

    tid = threads.start(contender)
    wt.wait_until_blocked(tid)
    assert cs.LockCount == -2 - 4
    h = w.OpenThread(w.THREAD_ALL_ACCESS, False, tid)
    assert w.QueueUserAPC(lambda _: ran.append("apc"), h, 0)
    assert w.WaitForSingleObject(h, 100) == w.WAIT_TIMEOUT
    assert ran == []
    w.LeaveCriticalSection(cs)
    assert w.WaitForSingleObject(h, LONG) == w.WAIT_OBJECT_0
    assert ran == ["entered"]  # the APC never ran: the thread made no alertable wait
    assert w.CloseHandle(h)
    assert w.InitializeCriticalSectionEx(cs, 0, w.CRITICAL_SECTION_NO_DEBUG_INFO)
    _fails(lambda: w.InitializeCriticalSectionEx(cs, 0, 1), w.ERROR_INVALID_PARAMETER)


def test_critical_section_counter_stress(threads) -> None:
    # [MS:Critical Section Objects] (mutual exclusion under contention)
    cs = w.CRITICAL_SECTION()
    w.InitializeCriticalSectionAndSpinCount(cs, 100)
    total = [0]

    def bump() -> None:
        for _ in range(2000):
            w.EnterCriticalSection(cs)
            value = total[0]
            if value % 97 == 0:
                w.Sleep(0)
            total[0] = value + 1
            w.LeaveCriticalSection(cs)

    for _ in range(4):
        threads.start(bump)
    threads.join()
    assert total[0] == 8000


# --------------------------------------------------------------------------------------------
# SRW locks


def test_srw_lock_modes(threads) -> None:
    # [MS:Slim Reader/Writer (SRW) Locks] [W:k32/sync.c:test_srwlock_base]
    lock = w.SRWLOCK()
    assert w.TryAcquireSRWLockShared(lock)
    assert w.TryAcquireSRWLockShared(lock)  # shared twice
    assert not w.TryAcquireSRWLockExclusive(lock)
    w.ReleaseSRWLockShared(lock)
    w.ReleaseSRWLockShared(lock)
    assert w.TryAcquireSRWLockExclusive(lock)
    got: list[bool] = []
    threads.start(
        lambda: got.extend([w.TryAcquireSRWLockShared(lock), w.TryAcquireSRWLockExclusive(lock)])
    )
    threads.join()
    assert got == [False, False]
    with pytest.raises(Win32Error) as info:
        w.AcquireSRWLockExclusive(lock)  # would hang forever on Windows
    assert info.value.winerror == w.ERROR_POSSIBLE_DEADLOCK
    w.ReleaseSRWLockExclusive(lock)
    with pytest.raises(Win32Error) as info:
        w.ReleaseSRWLockExclusive(lock)  # STATUS_RESOURCE_NOT_OWNED
    assert info.value.winerror == w.ERROR_NOT_OWNER
    with pytest.raises(Win32Error):
        w.ReleaseSRWLockShared(lock)
    w.InitializeSRWLock(lock)
    assert w.TryAcquireSRWLockExclusive(lock)


def test_srw_lock_waiters_are_granted_in_order(threads) -> None:
    # [MS:AcquireSRWLockExclusive] [MS:AcquireSRWLockShared] (blocked waiters; a writer waiting
    # holds back later readers; readers queued together enter together)
    lock = w.SRWLOCK()
    order: list[str] = []
    w.AcquireSRWLockExclusive(lock)

    def take(tag: str, exclusive: bool) -> None:
        (w.AcquireSRWLockExclusive if exclusive else w.AcquireSRWLockShared)(lock)
        order.append(tag)
        (w.ReleaseSRWLockExclusive if exclusive else w.ReleaseSRWLockShared)(lock)

    for tag, exclusive in (("r1", False), ("r2", False), ("w", True), ("r3", False)):
        wt.wait_until_blocked(threads.start(lambda t=tag, e=exclusive: take(t, e)))
    w.ReleaseSRWLockExclusive(lock)
    threads.join()
    assert sorted(order[:2]) == ["r1", "r2"] and order[2:] == ["w", "r3"]


# --------------------------------------------------------------------------------------------
# condition variables


def test_condition_variable_cs_basics(threads) -> None:
    # [W:k32/sync.c:test_condvars_base] (a wake with no sleeper is lost; timeouts give
    # ERROR_TIMEOUT with the lock owned again; Wake wakes one, WakeAll all)
    cv, cs = w.CONDITION_VARIABLE(), w.CRITICAL_SECTION()
    w.InitializeConditionVariable(cv)
    w.InitializeCriticalSection(cs)
    w.WakeConditionVariable(cv)
    w.WakeAllConditionVariable(cv)
    w.EnterCriticalSection(cs)
    _fails(lambda: w.SleepConditionVariableCS(cv, cs, 10), w.ERROR_TIMEOUT)
    assert cs.OwningThread == w.GetCurrentThreadId() and cs.RecursionCount == 1
    w.LeaveCriticalSection(cs)
    _fails(lambda: w.SleepConditionVariableCS(cv, cs, 0), w.ERROR_NOT_OWNER)
    woken: list[int] = []

    def sleeper(i: int) -> None:
        w.EnterCriticalSection(cs)
        assert w.SleepConditionVariableCS(cv, cs, LONG), w.GetLastError()
        woken.append(i)
        w.LeaveCriticalSection(cs)

    tids = [threads.start(lambda i=i: sleeper(i)) for i in range(3)]
    for tid in tids:
        wt.wait_until_blocked(tid)
    w.WakeConditionVariable(cv)
    wt.wait_until(lambda: len(woken) == 1)
    assert woken == [0]  # the oldest sleeper
    w.WakeAllConditionVariable(cv)
    threads.join()
    assert sorted(woken) == [0, 1, 2]


@pytest.mark.parametrize("shared", [False, True], ids=["exclusive", "shared"])
def test_condition_variable_srw(threads, shared: bool) -> None:
    # [W:k32/sync.c:test_condvars_base] (steps 9-12: SRW lock in both modes)
    cv, lock = w.CONDITION_VARIABLE(), w.SRWLOCK()
    flags = w.CONDITION_VARIABLE_LOCKMODE_SHARED if shared else 0
    acquire = w.AcquireSRWLockShared if shared else w.AcquireSRWLockExclusive
    release = w.ReleaseSRWLockShared if shared else w.ReleaseSRWLockExclusive
    done: list[bool] = []

    def consumer() -> None:
        acquire(lock)
        done.append(w.SleepConditionVariableSRW(cv, lock, LONG, flags))
        release(lock)

    wt.wait_until_blocked(threads.start(consumer))
    w.AcquireSRWLockExclusive(lock) if not shared else w.AcquireSRWLockShared(lock)
    w.WakeConditionVariable(cv)
    (w.ReleaseSRWLockExclusive if not shared else w.ReleaseSRWLockShared)(lock)
    threads.join()
    assert done == [True]
    acquire(lock)
    _fails(lambda: w.SleepConditionVariableSRW(cv, lock, 10, flags), w.ERROR_TIMEOUT)
    release(lock)
    _fails(lambda: w.SleepConditionVariableSRW(cv, lock, 10, 2), w.ERROR_INVALID_PARAMETER)


def test_condition_variable_producer_consumer(threads) -> None:
    # [W:k32/sync.c:test_condvars_consumer_producer]
    not_empty, not_full = w.CONDITION_VARIABLE(), w.CONDITION_VARIABLE()
    cs = w.CRITICAL_SECTION()
    w.InitializeCriticalSection(cs)
    state = {"len": 0, "produced": 0, "consumed": 0, "stop": False, "err": False}

    def producer() -> None:
        while True:
            w.EnterCriticalSection(cs)
            while state["len"] == 5 and not state["stop"]:
                if not w.SleepConditionVariableCS(not_full, cs, 5):
                    state["err"] |= w.GetLastError() != w.ERROR_TIMEOUT
            if state["stop"]:
                w.LeaveCriticalSection(cs)
                return
            state["len"] += 1
            state["produced"] += 1
            w.LeaveCriticalSection(cs)
            w.WakeConditionVariable(not_empty)

    def consumer() -> None:
        while True:
            w.EnterCriticalSection(cs)
            while state["len"] == 0 and not state["stop"]:
                if not w.SleepConditionVariableCS(not_empty, cs, 1):
                    state["err"] |= w.GetLastError() != w.ERROR_TIMEOUT
            if state["stop"] and state["len"] == 0:
                w.LeaveCriticalSection(cs)
                return
            state["len"] -= 1
            state["consumed"] += 1
            w.LeaveCriticalSection(cs)
            w.WakeConditionVariable(not_full)

    for body in (producer, producer, producer, consumer, consumer, consumer):
        threads.start(body)
    w.Sleep(300)
    state["stop"] = True
    w.WakeAllConditionVariable(not_full)
    w.WakeAllConditionVariable(not_empty)
    threads.join()
    assert state["consumed"] == state["produced"] > 0
    assert not state["err"]


# --------------------------------------------------------------------------------------------
# InitOnce


def test_init_once(threads) -> None:
    # [W:k32/sync.c:test_initonce]
    calls: list[Any] = []
    result = [True]

    def callback(init_once: Any, parameter: Any, context: Any) -> bool:
        calls.append((parameter, context.value, init_once.Ptr))
        return result[0]

    once = w.INIT_ONCE()
    w.InitOnceInitialize(once)
    assert once.Ptr == 0
    ctx = w.Ref(None)
    assert w.InitOnceExecuteOnce(once, callback, 0xDEADBEEF, ctx)
    assert once.Ptr == 2 and ctx.value is None and calls == [(0xDEADBEEF, None, 1)]
    assert w.InitOnceExecuteOnce(once, callback, 0xDEADBEEF, ctx) and len(calls) == 1
    w.InitOnceInitialize(once)
    ctx.value = 0xFFFFFFF0
    assert w.InitOnceExecuteOnce(once, callback, 0xDEADBEEF, ctx)
    assert once.Ptr == 0xFFFFFFF2 and ctx.value == 0xFFFFFFF0
    result[0] = False
    w.InitOnceInitialize(once)
    ctx.value = None
    w.SetLastError(SENTINEL)
    assert not w.InitOnceExecuteOnce(once, callback, 0xDEADBEEF, ctx)
    assert w.GetLastError() == SENTINEL and once.Ptr == 0
    # blocking initialisation without a callback
    pending = w.Ref(False)
    w.InitOnceInitialize(once)
    assert w.InitOnceBeginInitialize(once, 0, pending, ctx) and pending.value and once.Ptr == 1
    pending.value = 0xF
    _fails(
        lambda: w.InitOnceBeginInitialize(once, w.INIT_ONCE_CHECK_ONLY, pending, ctx),
        w.ERROR_GEN_FAILURE,
    )
    assert pending.value == 0xF
    _fails(
        lambda: w.InitOnceComplete(once, w.INIT_ONCE_INIT_FAILED, 0xDEADBEE0),
        w.ERROR_INVALID_PARAMETER,
    )
    assert w.InitOnceComplete(once, 0, 0xDEADBEE0) and once.Ptr == 0xDEADBEE2
    w.InitOnceInitialize(once)
    _fails(lambda: w.InitOnceComplete(once, w.INIT_ONCE_INIT_FAILED, None), w.ERROR_GEN_FAILURE)
    _fails(
        lambda: w.InitOnceComplete(once, w.INIT_ONCE_INIT_FAILED | w.INIT_ONCE_ASYNC, None),
        w.ERROR_INVALID_PARAMETER,
    )
    assert w.InitOnceBeginInitialize(once, 0, pending, ctx) and once.Ptr == 1
    _fails(
        lambda: w.InitOnceBeginInitialize(once, w.INIT_ONCE_ASYNC, pending, ctx),
        w.ERROR_INVALID_PARAMETER,
    )
    _fails(lambda: w.InitOnceComplete(once, 0, 0xDEADBEEF), w.ERROR_INVALID_PARAMETER)
    assert w.InitOnceComplete(once, w.INIT_ONCE_INIT_FAILED, None) and once.Ptr == 0
    # asynchronous initialisation
    assert w.InitOnceBeginInitialize(once, w.INIT_ONCE_ASYNC, pending, ctx)
    assert pending.value and once.Ptr == 3
    _fails(lambda: w.InitOnceBeginInitialize(once, 0, pending, ctx), w.ERROR_INVALID_PARAMETER)
    assert w.InitOnceBeginInitialize(once, w.INIT_ONCE_ASYNC, pending, ctx) and pending.value
    _fails(
        lambda: w.InitOnceComplete(once, w.INIT_ONCE_INIT_FAILED, None), w.ERROR_INVALID_PARAMETER
    )
    _fails(
        lambda: w.InitOnceComplete(once, w.INIT_ONCE_ASYNC, 0xDEADBEEF), w.ERROR_INVALID_PARAMETER
    )
    assert w.InitOnceComplete(once, w.INIT_ONCE_ASYNC, 0xDEADBEE0) and once.Ptr == 0xDEADBEE2
    _fails(lambda: w.InitOnceComplete(once, w.INIT_ONCE_ASYNC, 0xDEADBEE0), w.ERROR_GEN_FAILURE)
    # CHECK_ONLY
    assert w.InitOnceBeginInitialize(once, w.INIT_ONCE_CHECK_ONLY, pending, ctx)
    assert not pending.value and ctx.value == 0xDEADBEE0
    _fails(
        lambda: w.InitOnceBeginInitialize(
            once, w.INIT_ONCE_CHECK_ONLY | w.INIT_ONCE_ASYNC, pending, ctx
        ),
        w.ERROR_INVALID_PARAMETER,
    )
    _fails(lambda: w.InitOnceBeginInitialize(once, 0x8, pending, ctx), w.ERROR_INVALID_PARAMETER)
    # a second synchronous caller blocks until the first completes
    w.InitOnceInitialize(once)
    assert w.InitOnceBeginInitialize(once, 0, pending, ctx) and pending.value
    seen: list[Any] = []

    def second() -> None:
        p, c = w.Ref(True), w.Ref(None)
        assert w.InitOnceBeginInitialize(once, 0, p, c)
        seen.append((p.value, c.value))

    wt.wait_until_blocked(threads.start(second))
    assert w.InitOnceComplete(once, 0, 0x40)
    threads.join()
    assert seen == [(False, 0x40)]


# --------------------------------------------------------------------------------------------
# WaitOnAddress


def test_wait_on_address(threads) -> None:
    # [W:kernelbase/sync.c:test_WaitOnAddress]
    address, compare = ctypes.c_long(0), ctypes.c_long(0)
    w.SetLastError(SENTINEL)
    w.WakeByAddressSingle(None)
    w.WakeByAddressAll(None)
    assert w.GetLastError() == SENTINEL
    _fails(lambda: w.WaitOnAddress(None, None, 0, 0), w.ERROR_INVALID_PARAMETER)
    _fails(lambda: w.WaitOnAddress(address, compare, 5, 0), w.ERROR_INVALID_PARAMETER)
    w.SetLastError(SENTINEL)
    w.WakeByAddressSingle(address)
    w.WakeByAddressAll(address)
    assert w.GetLastError() == SENTINEL and address.value == 0
    compare.value = 0xFF00
    assert w.WaitOnAddress(address, compare, 2, 0) and w.GetLastError() == SENTINEL
    _fails(lambda: w.WaitOnAddress(address, compare, 1, 0), w.ERROR_TIMEOUT)
    compare.value = 1
    assert w.WaitOnAddress(address, compare, 4, 0)
    guard = threading.Lock()

    def worker() -> None:
        while True:
            seen = ctypes.c_long(address.value)
            while not seen.value:
                assert w.WaitOnAddress(address, seen, 4, LONG)
                seen = ctypes.c_long(address.value)
            with guard:  # InterlockedCompareExchange
                if address.value == seen.value:
                    address.value = seen.value - 1
                    return

    for wake_all in (True, False):
        address.value = 0
        tids = [threads.start(worker) for _ in range(8)]
        for tid in tids:
            wt.wait_until_blocked(tid)
        address.value = 8
        if wake_all:
            w.WakeByAddressAll(address)
        else:
            for _ in range(8):
                w.WakeByAddressSingle(address)
        threads.join()
        assert address.value == 0
    _fails(lambda: w.WaitOnAddress(b"ro!!", b"ro!!", 4, 0), w.ERROR_INVALID_PARAMETER)


# --------------------------------------------------------------------------------------------
# SuspendThread, priorities


def test_suspend_thread(threads) -> None:
    # [MS:SuspendThread] [MS:ResumeThread] (counts; a waiting thread stays stopped after its
    # wait is satisfied until resumed; suspending oneself)
    ev = w.CreateEvent(None, True, False, None)
    progress: list[str] = []

    def body() -> None:
        assert w.WaitForSingleObject(ev, LONG) == w.WAIT_OBJECT_0
        progress.append("after wait")

    tid = threads.start(body)
    wt.wait_until_blocked(tid)
    h = w.OpenThread(w.THREAD_ALL_ACCESS, False, tid)
    assert w.SuspendThread(h) == 0
    assert w.SuspendThread(h) == 1
    assert w.SetEvent(ev)
    assert w.WaitForSingleObject(h, 100) == w.WAIT_TIMEOUT
    assert progress == []  # stopped when its wait returned
    assert w.ResumeThread(h) == 2
    assert w.WaitForSingleObject(h, 100) == w.WAIT_TIMEOUT
    assert w.ResumeThread(h) == 1
    assert w.WaitForSingleObject(h, LONG) == w.WAIT_OBJECT_0
    assert progress == ["after wait"]
    assert w.ResumeThread(h) == 0
    _fails(lambda: w.SuspendThread(h) != 0xFFFFFFFF, w.ERROR_ACCESS_DENIED)  # exited
    assert w.CloseHandle(h)
    # a thread suspending itself
    me: list[int] = []

    def self_suspender() -> None:
        me.append(w.SuspendThread(w.GetCurrentThread()))

    tid = threads.start(self_suspender)
    wt.wait_until_blocked(tid)
    h = w.OpenThread(w.THREAD_ALL_ACCESS, False, tid)
    assert me == []
    assert w.ResumeThread(h) == 1
    assert w.WaitForSingleObject(h, LONG) == w.WAIT_OBJECT_0
    assert me == [0]
    limited = w.OpenThread(w.SYNCHRONIZE, False, w.GetCurrentThreadId())
    _fails(lambda: w.SuspendThread(limited) != 0xFFFFFFFF, w.ERROR_ACCESS_DENIED)
    _fails(lambda: w.SuspendThread(ev) != 0xFFFFFFFF, w.ERROR_INVALID_HANDLE)
    for handle in (h, limited, ev):
        assert w.CloseHandle(handle)


def test_thread_priority() -> None:
    # [MS:SetThreadPriority] [MS:GetThreadPriority] (recorded; documented errors)
    me = w.GetCurrentThread()
    assert w.GetThreadPriority(me) == w.THREAD_PRIORITY_NORMAL
    for priority in (
        w.THREAD_PRIORITY_IDLE,
        w.THREAD_PRIORITY_LOWEST,
        w.THREAD_PRIORITY_HIGHEST,
        w.THREAD_PRIORITY_TIME_CRITICAL,
        w.THREAD_PRIORITY_NORMAL,
    ):
        assert w.SetThreadPriority(me, priority)
        assert w.GetThreadPriority(me) == priority
    _fails(lambda: w.SetThreadPriority(me, 7), w.ERROR_INVALID_PARAMETER)
    assert w.SetThreadPriority(me, w.THREAD_MODE_BACKGROUND_BEGIN)
    _fails(
        lambda: w.SetThreadPriority(me, w.THREAD_MODE_BACKGROUND_BEGIN),
        w.ERROR_THREAD_MODE_ALREADY_BACKGROUND,
    )
    assert w.SetThreadPriority(me, w.THREAD_MODE_BACKGROUND_END)
    _fails(
        lambda: w.SetThreadPriority(me, w.THREAD_MODE_BACKGROUND_END),
        w.ERROR_THREAD_MODE_NOT_BACKGROUND,
    )
    query_only = w.OpenThread(w.THREAD_QUERY_LIMITED_INFORMATION, False, w.GetCurrentThreadId())
    _fails(lambda: w.SetThreadPriority(query_only, 1), w.ERROR_ACCESS_DENIED)
    set_only = w.OpenThread(w.THREAD_SET_LIMITED_INFORMATION, False, w.GetCurrentThreadId())
    w.SetLastError(SENTINEL)
    assert w.GetThreadPriority(set_only) == w.THREAD_PRIORITY_ERROR_RETURN
    assert w.GetLastError() == w.ERROR_ACCESS_DENIED
    _fails(lambda: w.SetThreadPriority(0, 1), w.ERROR_INVALID_HANDLE)
    assert w.CloseHandle(query_only) and w.CloseHandle(set_only)
