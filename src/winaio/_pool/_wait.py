"""Thread-pool wait objects (CreateThreadpoolWait / SetThreadpoolWait; win32-async-spec §9).

Facts encoded here [MS:SetThreadpoolWait] [MS:WaitCallback] [W:nt/threadpool.c:test_tp_wait]:
- ``set(obj, timeout)`` arms a **one-shot** wait: after each callback the wait is inactive until
  set again (from anywhere, including its own callback). The callback receives WAIT_OBJECT_0
  or WAIT_TIMEOUT. ``timeout`` None = infinite, 0 = time out at once (if the object is not
  signaled), an aware datetime = absolute. ``obj`` None stops waiting (queued callbacks still
  run). Setting an armed wait replaces it.
- A satisfied wait applies the object's side effect exactly once (an auto-reset event is
  consumed, a semaphore decremented): two waits on a semaphore released once produce one
  callback. Mutexes are refused (the owner would be the pool, which never releases them):
  ERROR_INVALID_PARAMETER, as Windows documents mutexes as unsupported.
- ``wait_callbacks(cancel_pending=True)`` drops queued callbacks but leaves an armed wait armed.

How: see ``_waiter`` - the armed wait is a kernel wait block satisfied by the signalling thread,
which queues the callback; the timeout is an entry of the pool's wait thread.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._kernel._api import WaitResult
from .._kernel._dispatcher import (
    LOCK,
    DispatcherObject,
    WaitBlock,
    try_satisfy,
    unlink_wait,
)
from .._kernel._objects import Mutex
from ..codes import WaitCode, WinError
from ..errors import Win32Error
from ._env import CallbackEnvironment
from ._objects import PoolObject
from ._timer import check_seconds, wall_ns_of

if TYPE_CHECKING:
    from ._pool import ThreadPool
    from ._waiter import Waiter

__all__ = ["PoolWait", "check_waitable"]

_WAIT_OBJECT_0 = int(WaitCode.WAIT_OBJECT_0)
_WAIT_TIMEOUT = int(WaitCode.WAIT_TIMEOUT)
_SIGNALED = WaitResult(_WAIT_OBJECT_0)
_TIMED_OUT = WaitResult(_WAIT_TIMEOUT)


def check_waitable(obj: Any, allow_mutex: bool) -> DispatcherObject:
    """A waitable kernel object, else ERROR_INVALID_HANDLE (mutex: ERROR_INVALID_PARAMETER)."""
    if not isinstance(obj, DispatcherObject):
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{obj!r} is not waitable")
    if not allow_mutex and isinstance(obj, Mutex):
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "thread-pool waits do not take mutexes")
    return obj


class PoolWait(PoolObject):
    """A thread-pool wait: ``callback(instance, *args, result)`` (module docstring).

    ``result`` is a :class:`~winaio.WaitResult` (``signaled`` / ``timed_out``).
    """

    __slots__ = ("_gen", "_raw_results", "_signaled", "_wb", "_window")

    _allow_mutex = False

    def __init__(
        self,
        pool: ThreadPool,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        environment: CallbackEnvironment | None,
        context: Any,
    ) -> None:
        super().__init__(pool, callback, args, environment, context)
        self._gen = 0
        self._window = 0.0
        self._wb: WaitBlock | None = None
        #: Satisfied waits whose callback is queued (WAIT_OBJECT_0 vs WAIT_TIMEOUT, Wine's
        #: ``signaled`` counter).
        self._signaled = 0
        #: Pass WAIT_OBJECT_0 / WAIT_TIMEOUT ints instead of WaitResult (the Win32 alias).
        self._raw_results = False

    @property
    def armed(self) -> bool:
        """True while the wait waits for its object (or its timeout)."""
        return self._wb is not None

    def set(
        self, obj: DispatcherObject | None, timeout: float | _dt.datetime | None = None
    ) -> bool:
        """SetThreadpoolWaitEx (module docstring).

        Returns:
            True if an armed wait was replaced or stopped.

        Raises:
            Win32Error: ERROR_INVALID_HANDLE for a non-waitable object or a closed wait;
                ERROR_INVALID_PARAMETER for a mutex or a bad timeout.
        """
        wall: int | None = None
        relative: float | None = None
        if obj is not None:
            check_waitable(obj, self._allow_mutex)
            if isinstance(timeout, _dt.datetime):
                wall = wall_ns_of(timeout)
            elif timeout is not None:
                relative = check_seconds(timeout, "timeout")
        pool = self._pool
        waiter = pool._get_waiter() if obj is not None else pool._waiter
        spawn = armed = False
        try:
            with LOCK:
                self._check_open_locked()
                was = self._disarm_locked(waiter)
                if obj is not None:
                    assert waiter is not None
                    pool.check_open()
                    spawn, armed = self._arm_locked(waiter, obj, relative, wall)
            if spawn:  # first: the worker is counted (see ``_pool``'s invariants)
                pool._spawn()
        except BaseException as exc:  # (Ctrl-C: the worker counted, started)
            pool._woken_again(exc, spawn)
            raise
        if armed and waiter is not None:
            waiter.ensure_running()
        return was

    def _arm_locked(
        self, waiter: Waiter, obj: DispatcherObject, relative: float | None, wall: int | None
    ) -> tuple[bool, bool]:
        """Check ``obj`` now, else register the wait. Returns (spawn a worker, armed)."""
        if try_satisfy((obj,), False, waiter.identity) is not None:
            return self._fire_locked(waiter, True), False
        if relative is not None and relative <= 0:
            return self._fire_locked(waiter, False), False
        wb = WaitBlock(waiter.identity, (obj,), False, False, self._on_signal)
        obj._waiters[wb] = None
        self._wb = wb
        if relative is not None:
            waiter.schedule_locked(self, self._pool._clock.monotonic() + relative)
        elif wall is not None:
            waiter.schedule_wall_locked(self, wall)
        else:
            waiter.arm_locked(self)
        return False, True

    def _disarm_locked(self, waiter: Waiter | None) -> bool:
        wb = self._wb
        if wb is None:
            return False
        self._wb = None
        wb.detach = None
        unlink_wait(wb)
        if waiter is not None:
            waiter.disarm_locked(self)
        return True

    def _on_signal(self, wb: WaitBlock) -> None:
        """A signaller satisfied our wait block (under the lock, in its thread)."""
        if wb is not self._wb:
            return
        self._wb = None
        waiter = self._pool._waiter
        assert waiter is not None
        waiter.disarm_locked(self)
        if self._fire_locked(waiter, True):
            waiter.request_spawn_locked()

    def _due_locked(self, waiter: Waiter, deadline: float, now: float) -> bool:
        """The timeout elapsed first."""
        wb = self._wb
        if wb is None:
            return False
        self._wb = None
        wb.detach = None
        unlink_wait(wb)
        waiter.disarm_locked(self)
        return self._fire_locked(waiter, False)

    def _fire_locked(self, waiter: Waiter, signaled: bool) -> bool:
        """Queue one callback; returns True if a worker must be started."""
        if signaled:
            self._signaled += 1
        return self._queue_locked()

    def _take_locked(self) -> tuple[Any, ...]:
        super()._take_locked()
        return (self._next_result_locked(),)

    def _next_result_locked(self) -> Any:
        if self._signaled:
            self._signaled -= 1
            return _WAIT_OBJECT_0 if self._raw_results else _SIGNALED
        return _WAIT_TIMEOUT if self._raw_results else _TIMED_OUT

    def _cancel_pending_locked(self) -> int:
        self._signaled = 0
        return super()._cancel_pending_locked()

    def _stop_locked(self) -> None:
        self._disarm_locked(None)

    def _shutdown(self) -> None:
        waiter = self._pool._waiter
        with LOCK:
            self._disarm_locked(waiter)
