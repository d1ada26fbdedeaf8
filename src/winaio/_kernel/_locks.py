"""User-mode synchronisation beside kernel objects: critical sections, slim reader/writer locks,
condition variables, one-time initialisation and address waits.

Every block is a non-alertable winaio kernel wait on a private event, so APCs do not run inside
these calls, completion-port concurrency accounting sees the thread as blocked, and
TerminateThread ends the wait - as the Windows keyed-event waits do.

Facts encoded here ([MS:Critical Section Objects], [MS:Slim Reader/Writer (SRW) Locks],
[MS:Condition Variables], [MS:One-Time Initialization], [MS:WaitOnAddress],
[W:k32/sync.c:test_initonce, test_condvars_base, test_srwlock_base, test_WaitOnAddress]):
- A critical section is recursive for its owner; TryEnter never waits; Enter spins SpinCount
  times before it blocks. LockCount has the Vista+ encoding: -1 when free, minus 1 while owned,
  minus 4 per waiting thread.
- SRW locks are not recursive for exclusive owners; shared owners may re-acquire shared.
  Waiters are granted in FIFO order (a run of shared waiters together). Releasing a lock in a
  mode it is not held in raises STATUS_RESOURCE_NOT_OWNED (here: ERROR_NOT_OWNER).
- Condition variables: Sleep releases the lock once, waits (ERROR_TIMEOUT when the time-out
  elapses) and re-acquires it in the same mode; Wake releases the oldest sleeper, WakeAll all.
  Spurious wake-ups are allowed, lost ones are not.
- InitOnce (RtlRunOnce): states uninitialised, in progress (synchronous: later callers block;
  asynchronous: later callers get "pending" too), done with a context whose two low bits must
  be clear; the exact error of every misuse is Wine's RtlRunOnce* (tests pass on Windows).
- WaitOnAddress returns at once when the value differs from the comparand, else waits for a
  WakeByAddress* on the same address (or the time-out: ERROR_TIMEOUT); sizes 1, 2, 4 and 8.

Documented deviations: re-acquiring an SRW lock one holds exclusively (or exclusively while
holding it shared), which hangs forever on Windows, fails with ERROR_POSSIBLE_DEADLOCK; leaving a
critical section one does not own raises ERROR_NOT_OWNER instead of corrupting it; using a
deleted critical section raises ERROR_INVALID_HANDLE.
"""

from __future__ import annotations

import ctypes
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from ..codes import WaitCode, WinError
from ..errors import Win32Error
from ._objects import Event
from ._threads import current_thread_state
from ._wait import wait_for_one

__all__ = [
    "ConditionVariable",
    "CriticalSection",
    "InitOnce",
    "SRWLock",
    "wait_on_address",
    "wake_by_address",
]

_WAIT_OBJECT_0 = int(WaitCode.WAIT_OBJECT_0)
#: Spin iterations after which a spinning Enter lets other threads run.
_YIELD_EVERY = 32


def _tid() -> int:
    return current_thread_state().tid


class CriticalSection:
    """A CRITICAL_SECTION (module docstring)."""

    __slots__ = ("_event", "_mutex", "_owner", "_recursion", "_waiters", "deleted", "spin_count")

    def __init__(self, spin_count: int = 0) -> None:
        self._mutex = threading.Lock()
        self._owner: int | None = None
        self._recursion = 0
        self._waiters = 0
        self._event = Event(manual_reset=False)
        self.spin_count = spin_count
        self.deleted = False

    def _check(self) -> None:
        if self.deleted:
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the critical section was deleted")

    @property
    def owner(self) -> int | None:
        """OwningThread: the owner's thread id, None when free."""
        return self._owner

    @property
    def recursion(self) -> int:
        """RecursionCount."""
        return self._recursion

    @property
    def lock_count(self) -> int:
        """LockCount in the Vista+ encoding (module docstring)."""
        return -1 - (1 if self._owner is not None else 0) - 4 * self._waiters

    def _take_locked(self, tid: int) -> bool:
        if self._owner == tid:
            self._recursion += 1
            return True
        if self._owner is None:
            self._owner = tid
            self._recursion = 1
            return True
        return False

    def try_enter(self) -> bool:
        """TryEnterCriticalSection."""
        tid = _tid()
        with self._mutex:
            self._check()
            return self._take_locked(tid)

    def enter(self) -> None:
        """EnterCriticalSection: spin SpinCount times, then block (non-alertably)."""
        tid = _tid()
        with self._mutex:
            self._check()
            if self._take_locked(tid):
                return
        for spin in range(self.spin_count):
            if self._owner is None:
                with self._mutex:
                    if self._take_locked(tid):
                        return
            if spin % _YIELD_EVERY == _YIELD_EVERY - 1:
                threading.Event().wait(0)  # let the owner run (the GIL)
        with self._mutex:
            if self._take_locked(tid):
                return
            self._waiters += 1
        try:
            while True:
                wait_for_one(self._event, None, False)
                with self._mutex:
                    if self._take_locked(tid):
                        return
        finally:
            with self._mutex:
                self._waiters -= 1

    def leave(self) -> None:
        """LeaveCriticalSection.

        Raises:
            Win32Error: ERROR_NOT_OWNER when the caller does not own it (a deviation).
        """
        tid = _tid()
        with self._mutex:
            self._check()
            if self._owner != tid:
                raise Win32Error(WinError.ERROR_NOT_OWNER, "the critical section is not owned")
            self._recursion -= 1
            if self._recursion:
                return
            self._owner = None
            wake = self._waiters > 0
        if wake:
            self._event.set()

    def delete(self) -> None:
        """DeleteCriticalSection."""
        with self._mutex:
            self.deleted = True


class _Waiter:
    __slots__ = ("event", "exclusive", "granted", "tid")

    def __init__(self, tid: int, exclusive: bool) -> None:
        self.tid = tid
        self.exclusive = exclusive
        self.granted = False
        self.event = Event(manual_reset=True)


class SRWLock:
    """An SRWLOCK (module docstring)."""

    __slots__ = ("_exclusive", "_mutex", "_shared", "_waiters")

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._exclusive: int | None = None
        self._shared: dict[int, int] = {}
        self._waiters: deque[_Waiter] = deque()

    @property
    def state(self) -> tuple[int | None, int]:
        """(exclusive owner's thread id, number of shared acquisitions)."""
        return self._exclusive, sum(self._shared.values())

    def _free_locked(self) -> bool:
        return self._exclusive is None and not self._shared

    def try_acquire_exclusive(self) -> bool:
        """TryAcquireSRWLockExclusive."""
        with self._mutex:
            if self._free_locked():
                self._exclusive = _tid()
                return True
            return False

    def try_acquire_shared(self) -> bool:
        """TryAcquireSRWLockShared."""
        tid = _tid()
        with self._mutex:
            if self._exclusive is None and (not self._waiters or tid in self._shared):
                self._shared[tid] = self._shared.get(tid, 0) + 1
                return True
            return False

    def acquire(self, exclusive: bool) -> None:
        """AcquireSRWLockExclusive / AcquireSRWLockShared (blocks non-alertably).

        Raises:
            Win32Error: ERROR_POSSIBLE_DEADLOCK when the caller would wait for itself.
        """
        tid = _tid()
        with self._mutex:
            if self._exclusive == tid or (exclusive and tid in self._shared):
                raise Win32Error(WinError.ERROR_POSSIBLE_DEADLOCK, "the SRW lock is held by us")
            if exclusive and self._free_locked() and not self._waiters:
                self._exclusive = tid
                return
            if (
                not exclusive
                and self._exclusive is None
                and (not self._waiters or tid in self._shared)
            ):
                self._shared[tid] = self._shared.get(tid, 0) + 1
                return
            waiter = _Waiter(tid, exclusive)
            self._waiters.append(waiter)
        try:
            while not waiter.granted:
                wait_for_one(waiter.event, None, False)
        except BaseException:
            with self._mutex:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                    waiter = None  # type: ignore[assignment]
            if waiter is not None and waiter.granted:
                self.release(exclusive)
            raise

    def release(self, exclusive: bool) -> None:
        """ReleaseSRWLockExclusive / ReleaseSRWLockShared.

        Raises:
            Win32Error: ERROR_NOT_OWNER when the lock is not held in that mode.
        """
        tid = _tid()
        with self._mutex:
            if exclusive:
                if self._exclusive is None:
                    raise Win32Error(WinError.ERROR_NOT_OWNER, "not held exclusively")
                self._exclusive = None
            else:
                if not self._shared:
                    raise Win32Error(WinError.ERROR_NOT_OWNER, "not held shared")
                holder = tid if tid in self._shared else next(iter(self._shared))
                self._shared[holder] -= 1
                if not self._shared[holder]:
                    del self._shared[holder]
            granted = self._grant_locked()
        for waiter in granted:
            waiter.event.set()

    def _grant_locked(self) -> list[_Waiter]:
        granted: list[_Waiter] = []
        waiters = self._waiters
        if self._exclusive is not None or not waiters:
            return granted
        if waiters[0].exclusive:
            if not self._shared:
                waiter = waiters.popleft()
                self._exclusive = waiter.tid
                waiter.granted = True
                granted.append(waiter)
            return granted
        while waiters and not waiters[0].exclusive:
            waiter = waiters.popleft()
            self._shared[waiter.tid] = self._shared.get(waiter.tid, 0) + 1
            waiter.granted = True
            granted.append(waiter)
        return granted


class ConditionVariable:
    """A CONDITION_VARIABLE (module docstring)."""

    __slots__ = ("_mutex", "_sleepers")

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._sleepers: deque[Event] = deque()

    @property
    def sleepers(self) -> int:
        """Threads sleeping on it now."""
        return len(self._sleepers)

    def sleep(
        self, release: Callable[[], None], reacquire: Callable[[], None], timeout: float | None
    ) -> bool:
        """Release the lock, sleep until woken or ``timeout`` seconds, re-acquire.

        Returns False on time-out (SleepConditionVariable* then fails ERROR_TIMEOUT).
        """
        event = Event(manual_reset=True)
        with self._mutex:
            self._sleepers.append(event)
        release()
        try:
            code = wait_for_one(event, timeout, False)
        except BaseException:
            with self._mutex:
                if event in self._sleepers:
                    self._sleepers.remove(event)
            raise
        with self._mutex:
            if event in self._sleepers:
                self._sleepers.remove(event)
        reacquire()
        return code == _WAIT_OBJECT_0

    def wake(self, everyone: bool = False) -> None:
        """WakeConditionVariable (the oldest sleeper) / WakeAllConditionVariable."""
        with self._mutex:
            if everyone:
                woken = list(self._sleepers)
                self._sleepers.clear()
            elif self._sleepers:
                woken = [self._sleepers.popleft()]
            else:
                woken = []
        for event in woken:
            event.set()


#: InitOnce states (the low two bits of INIT_ONCE.Ptr).
UNINITIALIZED, SYNC_PENDING, DONE, ASYNC_PENDING = 0, 1, 2, 3


class InitOnce:
    """An INIT_ONCE (RtlRunOnce, module docstring)."""

    __slots__ = ("_done", "_mutex", "context", "state")

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self.state = UNINITIALIZED
        self.context: Any = None
        self._done: Event | None = None

    @staticmethod
    def _check_context(context: Any) -> None:
        if isinstance(context, int) and context & 3:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "the context's low bits are used")

    def begin(self, *, check_only: bool, asynchronous: bool) -> tuple[bool, Any]:
        """InitOnceBeginInitialize: (pending, context when done).

        Raises:
            Win32Error: ERROR_GEN_FAILURE (CHECK_ONLY before completion),
                ERROR_INVALID_PARAMETER (flags that do not match the state).
        """
        if check_only:
            if asynchronous:
                raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "CHECK_ONLY with ASYNC")
            with self._mutex:
                if self.state != DONE:
                    raise Win32Error(WinError.ERROR_GEN_FAILURE, "not initialised yet")
                return False, self.context
        while True:
            with self._mutex:
                state = self.state
                if state == UNINITIALIZED:
                    self.state = ASYNC_PENDING if asynchronous else SYNC_PENDING
                    if not asynchronous:
                        self._done = Event(manual_reset=True)
                    return True, None
                if state == DONE:
                    return False, self.context
                if state == ASYNC_PENDING:
                    if not asynchronous:
                        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "async in progress")
                    return True, None
                if asynchronous:
                    raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "sync in progress")
                done = self._done
            assert done is not None
            wait_for_one(done, None, False)

    def complete(self, *, asynchronous: bool, failed: bool, context: Any) -> None:
        """InitOnceComplete.

        Raises:
            Win32Error: ERROR_INVALID_PARAMETER (bad context or flags), ERROR_GEN_FAILURE
                (nothing in progress).
        """
        self._check_context(context)
        if failed and (context is not None or asynchronous):
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "INIT_FAILED takes no context")
        with self._mutex:
            state = self.state
            if state == ASYNC_PENDING and not asynchronous:
                raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "async in progress")
            if state not in (SYNC_PENDING, ASYNC_PENDING):
                raise Win32Error(WinError.ERROR_GEN_FAILURE, "no initialisation in progress")
            if failed:
                self.state, self.context = UNINITIALIZED, None
            else:
                self.state, self.context = DONE, context
            done, self._done = self._done, None
        if done is not None:
            done.set()

    def execute(self, fn: Callable[[Any], tuple[bool, Any]]) -> tuple[bool, Any]:
        """InitOnceExecuteOnce: run ``fn(None) -> (ok, context)`` once. Returns (ok, context)."""
        pending, context = self.begin(check_only=False, asynchronous=False)
        if not pending:
            return True, context
        try:
            ok, context = fn(None)
        except BaseException:
            self.complete(asynchronous=False, failed=True, context=None)
            raise
        if not ok:
            self.complete(asynchronous=False, failed=True, context=None)
            return False, None
        self.complete(asynchronous=False, failed=False, context=context)
        return True, context

    @property
    def ptr(self) -> Any:
        """INIT_ONCE.Ptr: 0, 1 (in progress), 3 (async in progress), context | 2 (done)."""
        if self.state == DONE:
            context = self.context
            return (context | 2) if isinstance(context, int) else (context if context else 2)
        return self.state


# ---------------------------------------------------------------------------------- addresses

_address_lock = threading.Lock()
_address_waiters: dict[int, deque[Event]] = {}
_SIZES = (1, 2, 4, 8)


def _address_view(target: Any, size: int) -> tuple[int, memoryview]:
    try:
        view = memoryview(target).cast("B")
        if len(view) < size:
            raise ValueError("shorter than the size")
        address = ctypes.addressof(ctypes.c_char.from_buffer(view))
    except (TypeError, ValueError) as exc:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"not an address: {exc}") from None
    return address, view


def wait_on_address(target: Any, compare: Any, size: int, timeout: float | None) -> bool:
    """WaitOnAddress: False on time-out (module docstring).

    Args:
        target: a writable buffer (ctypes object, bytearray, memoryview...) - the address.
        compare: the comparand (a buffer of at least ``size`` bytes).

    Raises:
        Win32Error: ERROR_INVALID_PARAMETER (size not 1/2/4/8, not a writable buffer).
    """
    if size not in _SIZES or target is None or compare is None:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"address size {size}")
    address, view = _address_view(target, size)
    try:
        expected = bytes(memoryview(compare).cast("B")[:size])
    except TypeError as exc:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"comparand: {exc}") from None
    if len(expected) != size:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "comparand shorter than the size")
    event = Event(manual_reset=True)
    with _address_lock:
        if bytes(view[:size]) != expected:
            return True
        _address_waiters.setdefault(address, deque()).append(event)
    try:
        return wait_for_one(event, timeout, False) == _WAIT_OBJECT_0
    finally:
        with _address_lock:
            queue = _address_waiters.get(address)
            if queue is not None and event in queue:
                queue.remove(event)
            if queue is not None and not queue:
                del _address_waiters[address]


def wake_by_address(target: Any, everyone: bool) -> None:
    """WakeByAddressSingle (the oldest waiter) / WakeByAddressAll.

    Raises:
        Win32Error: ERROR_INVALID_PARAMETER when ``target`` is not a writable buffer.
    """
    if target is None:
        return  # NULL: nothing to wake [W:k32/sync.c:test_WaitOnAddress]
    address, _ = _address_view(target, 1)
    with _address_lock:
        queue = _address_waiters.get(address)
        if not queue:
            return
        woken = list(queue) if everyone else [queue.popleft()]
        if everyone:
            queue.clear()
    for event in woken:
        event.set()
