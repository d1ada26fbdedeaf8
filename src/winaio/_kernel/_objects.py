"""Events, semaphores and mutexes (win32-async-spec §1.2, §2.3).

Each object keeps its signal state under the dispatcher lock and calls
:func:`~._dispatcher.wake_waiters` after any change that may satisfy a waiter.

Facts encoded here, with their sources:
- SetEvent on an auto-reset event with waiters releases exactly one and leaves it nonsignaled;
  with no waiter it stays signaled until a wait consumes it [MS:SetEvent].
- PulseEvent releases the waiters that can be satisfied at that instant (manual: all, auto: at
  most one), then resets; a wait-all waiter is released only if all its objects are signaled
  then [MS:PulseEvent]. NT Set/Reset/Pulse report the previous state [W:nt/sync.c:test_event].
- ReleaseSemaphore: count <= 0 -> ERROR_INVALID_PARAMETER; count + n > max ->
  ERROR_TOO_MANY_POSTS with count unchanged [W:nt/sync.c:test_semaphore].
- Mutex: the owner re-acquires recursively; ReleaseMutex by a non-owner -> ERROR_NOT_OWNER; an
  owner that exits abandons it: the next acquirer gets WAIT_ABANDONED and the flag clears
  [W:nt/sync.c:test_mutant]. Closing handles never releases or abandons.
"""

from __future__ import annotations

from ..codes import WinError
from ..errors import Win32Error
from ._dispatcher import LOCK, DispatcherObject, ThreadState, release_again, wake_waiters
from ._threads import current_thread_state

__all__ = ["Event", "Mutex", "Semaphore"]

#: Largest mutex recursion count (MINLONG as unsigned); past it NT fails the acquisition.
_MUTANT_LIMIT = 0x7FFFFFFF


class Event(DispatcherObject):
    """A manual- or auto-reset event.

    Args:
        manual_reset: True for a notification event (stays signaled until :meth:`reset`),
            False for a synchronization event (a satisfied wait resets it).
        initial_state: whether it starts signaled.
    """

    __slots__ = ("_signaled", "manual_reset")
    type_name = "Event"

    def __init__(self, manual_reset: bool = False, initial_state: bool = False) -> None:
        super().__init__()
        self.manual_reset = bool(manual_reset)
        self._signaled = bool(initial_state)

    def _is_signaled_for(self, ts: ThreadState) -> bool:
        return self._signaled

    def _satisfy(self, ts: ThreadState) -> bool:
        if not self.manual_reset:
            self._signaled = False
        return False

    def _may_satisfy(self) -> bool:
        return self._signaled

    def is_set(self) -> bool:
        """The current state (a snapshot; another thread may change it at once)."""
        return self._signaled

    def set(self) -> bool:
        """SetEvent. Returns the previous state.

        The hot shape inlined (pure: a ping-pong's signaller, docs/design.md "The pure event
        ping-pong"): an auto-reset ``Event`` (the class itself) whose first waiter waits on it
        alone (any, no ``detach``): the walk's satisfaction (:func:`wake_waiters` ->
        ``try_satisfy`` -> :func:`complete_wait`) in statements without a call up to the
        parker's ``release``, so an interrupt cannot cut it half done. Anything else walks.
        """
        with LOCK:
            previous = self._signaled
            self._signaled = True
            waiters = self._waiters
            if waiters:
                try:
                    for wb in waiters:  # noqa: B007 (the first waiter, no call)
                        break
                    if (
                        not self.manual_reset
                        and wb.result is None
                        and wb.detach is None
                        and self.__class__ is Event
                        and len(wb.objects) == 1
                    ):
                        # try_satisfy (WAIT_OBJECT_0, the auto-reset consumed), complete_wait
                        self._signaled = False
                        del waiters[wb]
                        wb.result = 0
                        ts = wb.thread
                        if ts.awake_in_wait:
                            ts.wait = None
                        elif not ts.wake_pending:
                            ts.wake_pending = True
                            parker = ts.parker
                            try:
                                parker.release()
                            except BaseException as exc:  # (a Python parker cut at its entry)
                                release_again(parker, exc)
                                raise
                        return previous
                    wake_waiters(self)
                except BaseException:  # (Ctrl-C) the walk is finished first: no
                    wake_waiters(self)  # waiter of a signaled object is left asleep
                    raise
        return previous

    def _signal_locked(self, ts: ThreadState) -> None:
        """SignalObjectAndWait's signal step (SetEvent), under the lock."""
        self._signaled = True
        if self._waiters:
            try:
                wake_waiters(self)
            except BaseException:  # (Ctrl-C) the walk is finished first: no
                wake_waiters(self)  # waiter of a signaled object is left asleep
                raise

    def reset(self) -> bool:
        """ResetEvent. Returns the previous state."""
        with LOCK:
            previous = self._signaled
            self._signaled = False
        return previous

    def pulse(self) -> bool:
        """PulseEvent: release the waiters satisfiable now, then reset. Returns the previous state.

        Documented as unreliable by Microsoft (a waiter momentarily out of its wait misses it);
        here it is exact because waiters are satisfied under the dispatcher lock.
        """
        with LOCK:
            previous = self._signaled
            self._signaled = True
            if self._waiters:
                try:
                    wake_waiters(self)
                except BaseException:  # (Ctrl-C) the walk is finished first: no
                    wake_waiters(self)  # waiter of a signaled object is left asleep
                    raise
            self._signaled = False
        return previous


class Semaphore(DispatcherObject):
    """A counting semaphore with a maximum count.

    Raises:
        Win32Error: ERROR_INVALID_PARAMETER if ``maximum <= 0``, ``initial < 0`` or
            ``initial > maximum`` [W:nt/sync.c:test_semaphore].
    """

    __slots__ = ("_count", "maximum")
    type_name = "Semaphore"

    def __init__(self, initial: int, maximum: int) -> None:
        if maximum <= 0 or initial < 0 or initial > maximum:
            raise Win32Error(
                WinError.ERROR_INVALID_PARAMETER,
                f"semaphore initial={initial} maximum={maximum}",
            )
        super().__init__()
        self._count = initial
        self.maximum = maximum

    @property
    def count(self) -> int:
        """The current count (a snapshot)."""
        return self._count

    def _is_signaled_for(self, ts: ThreadState) -> bool:
        return self._count > 0

    def _satisfy(self, ts: ThreadState) -> bool:
        self._count -= 1
        return False

    def _may_satisfy(self) -> bool:
        return self._count > 0

    def release(self, count: int = 1) -> int:
        """ReleaseSemaphore. Returns the previous count.

        Raises:
            Win32Error: ERROR_INVALID_PARAMETER if ``count <= 0``; ERROR_TOO_MANY_POSTS if the
                count would exceed the maximum (then nothing changes).
        """
        if count <= 0:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"release count {count}")
        with LOCK:
            return self._release_locked(count)

    def _signal_locked(self, ts: ThreadState) -> None:
        """SignalObjectAndWait's signal step (release 1), under the lock."""
        self._release_locked(1)

    def _release_locked(self, count: int) -> int:
        previous = self._count
        if previous + count > self.maximum:
            raise Win32Error(WinError.ERROR_TOO_MANY_POSTS)
        self._count = previous + count
        if self._waiters:
            try:
                wake_waiters(self)
            except BaseException:  # (Ctrl-C) the walk is finished first: no
                wake_waiters(self)  # waiter of a signaled object is left asleep
                raise
        return previous


class Mutex(DispatcherObject):
    """A recursive mutex owned by a thread; abandoned when its owner exits.

    Args:
        initial_owner: if True the creating thread owns it (recursion count 1).
    """

    __slots__ = ("_abandoned", "_owner", "_recursion")
    type_name = "Mutant"

    def __init__(self, initial_owner: bool = False) -> None:
        super().__init__()
        self._owner: ThreadState | None = None
        self._recursion = 0
        self._abandoned = False
        if initial_owner:
            ts = current_thread_state()
            with LOCK:
                self._take(ts)

    @property
    def owner_thread_id(self) -> int | None:
        """The Win32 id of the owning thread, or None when unowned."""
        owner = self._owner
        return owner.tid if owner is not None else None

    @property
    def abandoned(self) -> bool:
        """True between the owner's exit and the next acquisition."""
        return self._abandoned

    def _take(self, ts: ThreadState) -> None:
        self._owner = ts
        self._recursion = 1
        ts.owned_mutexes[self] = None

    def _is_signaled_for(self, ts: ThreadState) -> bool:
        owner = self._owner
        return owner is None or (owner is ts and self._recursion < _MUTANT_LIMIT)

    def _satisfy(self, ts: ThreadState) -> bool:
        if self._owner is ts:
            self._recursion += 1
            return False
        self._take(ts)
        abandoned = self._abandoned
        self._abandoned = False
        return abandoned

    def _may_satisfy(self) -> bool:
        return self._owner is None

    def release(self) -> int:
        """ReleaseMutex. Returns the recursion count before the release.

        Raises:
            Win32Error: ERROR_NOT_OWNER if the calling thread does not own it.
        """
        ts = current_thread_state()
        with LOCK:
            return self._release_locked(ts)

    def _signal_locked(self, ts: ThreadState) -> None:
        """SignalObjectAndWait's signal step (ReleaseMutex), under the lock."""
        self._release_locked(ts)

    def _release_locked(self, ts: ThreadState) -> int:
        if self._owner is not ts:
            raise Win32Error(WinError.ERROR_NOT_OWNER)
        previous = self._recursion
        self._recursion -= 1
        if self._recursion == 0:
            self._owner = None
            del ts.owned_mutexes[self]
            if self._waiters:
                try:
                    wake_waiters(self)
                except BaseException:  # (Ctrl-C) the walk is finished first: no
                    wake_waiters(self)  # waiter of a signaled object is left asleep
                    raise
        return previous

    def _abandon_locked(self) -> None:
        """The owner thread ended (spec §1.2): unowned, signaled, abandoned."""
        owner = self._owner
        if owner is not None:
            owner.owned_mutexes.pop(self, None)
        self._owner = None
        self._recursion = 0
        self._abandoned = True
        if self._waiters:
            try:
                wake_waiters(self)
            except BaseException:  # (Ctrl-C) the walk is finished first: no
                wake_waiters(self)  # waiter of a signaled object is left asleep
                raise
