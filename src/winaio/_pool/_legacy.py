"""The pre-Vista thread-pool APIs, on the Vista pool (as Windows and Wine build them).

Facts encoded here (win32-async-spec §9, #116, #117):
- QueueUserWorkItem: a one-shot callback on the default pool; WT_EXECUTELONGFUNCTION = a long
  function [W:k32/thread.c:test_QueueUserWorkItem].
- RegisterWaitForSingleObject -> :class:`RegisteredWait`: ``fn(*args, timed_out)``; without
  WT_EXECUTEONLYONCE the wait re-arms itself after each callback (and its timeout restarts);
  WT_EXECUTEINWAITTHREAD callbacks run serially on the pool's wait thread.
  ``unregister(completion)``: None -> returns False (ERROR_IO_PENDING) while callbacks are
  queued or running, without waiting; True (INVALID_HANDLE_VALUE) -> drops queued callbacks,
  waits for running ones, returns True; an Event -> set once the last callback finished (at
  once if none), returns as for None. The caller's own callback never counts, so unregistering
  from the callback succeeds [W:k32/thread.c:test_RegisterWaitForSingleObject]
  [W:nt/threadpool.c:test_RtlRegisterWait].
- Timer queues -> :class:`TimerQueue` / :class:`QueueTimer`: timers on the pool's wait thread
  (no thread per queue); callbacks ``fn(*args)``; ``change`` of a one-shot timer that already
  fired succeeds and does nothing; ``delete`` follows ``unregister``'s rules except that the
  caller's own running callback counts (deleting a timer from its callback pends: FALSE,
  ERROR_IO_PENDING); deleting a queue deletes its timers [W:k32/sync.c:test_timer_queue].
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._kernel._dispatcher import LOCK, DispatcherObject, wake_waiters
from .._kernel._objects import Event
from ..codes import WinError
from ..errors import Win32Error
from ._env import CallbackEnvironment, CallbackInstance, current_instance
from ._io import IoBinding
from ._pool import ThreadPool, default_pool
from ._timer import PoolTimer, check_seconds
from ._wait import PoolWait, check_waitable

if TYPE_CHECKING:
    from ._waiter import Waiter

__all__ = [
    "QueueTimer",
    "RegisteredWait",
    "TimerQueue",
    "bind_io_completion_callback",
    "queue_user_work_item",
    "register_wait",
]

Completion = bool | Event | None


def queue_user_work_item(
    fn: Callable[..., object],
    *args: Any,
    long_function: bool = False,
    pool: ThreadPool | None = None,
) -> None:
    """QueueUserWorkItem: ``fn(*args)`` once on the default pool (or ``pool``)."""
    target = default_pool() if pool is None else pool
    if long_function:
        env = CallbackEnvironment(long_function=True)
        target.submit_callback(_drop_instance, fn, *args, environment=env)
    else:
        target.submit(fn, *args)


def register_wait(
    obj: DispatcherObject,
    fn: Callable[..., object],
    *args: Any,
    timeout: float | None = None,
    once: bool = False,
    in_wait_thread: bool = False,
    long_function: bool = False,
    pool: ThreadPool | None = None,
) -> RegisteredWait:
    """RegisterWaitForSingleObject: ``fn(*args, timed_out)`` when ``obj`` is signaled or
    ``timeout`` seconds pass (None = never); see :class:`RegisteredWait`.

    Raises:
        Win32Error: ERROR_INVALID_HANDLE for a non-waitable object; ERROR_INVALID_PARAMETER
            for a bad timeout or a non-callable.
    """
    target = default_pool() if pool is None else pool
    wait = RegisteredWait(
        target, obj, fn, args, timeout,
        once=once, in_wait_thread=in_wait_thread, long_function=long_function,
    )  # fmt: skip
    wait.start()
    return wait


def bind_io_completion_callback(
    file: Any, fn: Callable[[int, int, Any], object], pool: ThreadPool | None = None
) -> IoBinding:
    """BindIoCompletionCallback: ``fn(error, bytes_transferred, overlapped)`` on a pool thread
    for every completion of the overlapped ``file`` (bound to the pool's port for good).

    Raises:
        Win32Error: ERROR_INVALID_PARAMETER for a synchronous or already bound file or a
            missing function; ERROR_INVALID_HANDLE for something that is not a file.
    """
    return IoBinding(default_pool() if pool is None else pool, file, fn)


def _drop_instance(instance: CallbackInstance, fn: Callable[..., object], *args: Any) -> None:
    fn(*args)


def _release_object(obj: Any, completion: Completion, count_own: bool = False) -> bool:
    """The ``unregister``/``delete`` protocol of registered waits and queue timers.

    ``count_own``: the caller's own running callback counts as busy. UnregisterWait from its
    callback succeeds [W:k32/thread.c:test_RegisterWaitForSingleObject], while
    DeleteTimerQueueTimer from its timer's callback pends [W:k32/sync.c:test_timer_queue].
    """
    with LOCK:
        obj._check_open_locked()
        release = obj._mark_closed_locked()
    obj._shutdown()
    group = obj._group
    if group is not None:
        group._discard(obj)
    if completion is True:
        with LOCK:
            obj._cancel_pending_locked()
        obj._wait_idle(True)
    me = current_instance()
    own = 1 if not count_own and me is not None and me.object is obj else 0
    with LOCK:
        busy = obj._pending + obj._running - own > 0
        if isinstance(completion, Event):
            if busy:
                obj._completion = completion
            else:
                _set_locked(completion)
    if release:
        obj.pool.close()
    return not busy


def _check_completion_locked(obj: Any) -> None:
    """Set the completion event of a released object once its last callback finished."""
    event = obj._completion
    if event is not None and not obj._pending and not obj._running:
        obj._completion = None
        _set_locked(event)


def _set_locked(event: Event) -> None:
    event._signaled = True
    if event._waiters:
        wake_waiters(event)


def _run_on_wait_thread(obj: Any) -> None:
    """Run one callback of ``obj`` (counted pending by the caller) on the wait thread."""
    with LOCK:
        if not obj._pending:
            return  # dropped by a cancel meanwhile
        obj._pending -= 1
        obj._running += 1
        obj._associated += 1
        extra = obj._direct_extra_locked()
    obj._execute(None, extra)


class RegisteredWait(PoolWait):
    """RegisterWaitForSingleObject (module docstring)."""

    __slots__ = ("_completion", "_in_thread", "_once", "_target", "_timeout")

    _allow_mutex = True

    def __init__(
        self,
        pool: ThreadPool,
        obj: DispatcherObject,
        fn: Callable[..., object],
        args: tuple[Any, ...],
        timeout: float | None,
        *,
        once: bool,
        in_wait_thread: bool,
        long_function: bool,
    ) -> None:
        env = CallbackEnvironment(long_function=long_function)
        super().__init__(pool, fn, args, env, None)
        self._completion: Event | None = None
        self._in_thread = in_wait_thread
        self._once = once
        self._target = obj
        self._timeout = None if timeout is None else check_seconds(timeout, "timeout")
        self._raw_results = True
        check_waitable(obj, True)

    def start(self) -> None:
        """Arm the wait (the registration is usable, e.g. by its callback, before this)."""
        self.set(self._target, self._timeout)

    def _invoke(self, instance: CallbackInstance, extra: tuple[Any, ...]) -> None:
        self._callback(*self._args, extra[0] != 0)

    def _direct_extra_locked(self) -> tuple[Any, ...]:
        return (self._next_result_locked(),)

    def _fire_locked(self, waiter: Waiter, signaled: bool) -> bool:
        if signaled:
            self._signaled += 1
        if not self._once:
            waiter.run_in_thread_locked(self._rearm, ())
        if self._in_thread:
            self._pending += 1
            waiter.run_in_thread_locked(_run_on_wait_thread, (self,))
            return False
        return self._queue_locked()

    def _rearm(self) -> None:
        """Wait again (not WT_EXECUTEONLYONCE); runs on the wait thread."""
        pool = self._pool
        waiter = pool._waiter
        with LOCK:
            if self._closed or self._wb is not None or waiter is None or waiter._stopping:
                return
            spawn, _ = self._arm_locked(waiter, self._target, self._timeout, None)
        if spawn:
            pool._spawn()

    def _finish_locked(self, instance: CallbackInstance) -> bool:
        release = super()._finish_locked(instance)
        _check_completion_locked(self)
        return release

    def unregister(self, completion: Completion = None) -> bool:
        """UnregisterWaitEx (module docstring). Returns False while callbacks remain.

        Raises:
            Win32Error: ERROR_INVALID_HANDLE if already unregistered.
        """
        return _release_object(self, completion)


class QueueTimer(PoolTimer):
    """A timer-queue timer (CreateTimerQueueTimer; module docstring)."""

    __slots__ = ("_completion", "_due", "_fired_once", "_in_thread", "_start_period", "queue")

    def __init__(
        self,
        queue: TimerQueue,
        fn: Callable[..., object],
        args: tuple[Any, ...],
        *,
        in_timer_thread: bool,
        long_function: bool,
    ) -> None:
        env = CallbackEnvironment(long_function=long_function)
        super().__init__(queue.pool, fn, args, env, None)
        self.queue = queue
        self._completion: Event | None = None
        self._in_thread = in_timer_thread
        self._fired_once = False
        self._due: float | _dt.datetime = 0.0
        self._start_period = 0.0

    def start(self) -> None:
        """Arm the timer with the due time and period it was created with."""
        self.set(self._due, self._start_period)

    def _invoke(self, instance: CallbackInstance, extra: tuple[Any, ...]) -> None:
        self._callback(*self._args)

    def _direct_extra_locked(self) -> tuple[Any, ...]:
        return ()

    def _fire_locked(self, waiter: Waiter) -> bool:
        if not self._period:
            self._fired_once = True
        if self._in_thread:
            self._pending += 1
            waiter.run_in_thread_locked(_run_on_wait_thread, (self,))
            return False
        return self._queue_locked()

    def change(self, due: float, period: float = 0.0) -> bool:
        """ChangeTimerQueueTimer: a new due time and period (no effect on a fired one-shot).

        Raises:
            Win32Error: ERROR_INVALID_HANDLE if the timer was deleted; ERROR_INVALID_PARAMETER
                for negative or non-finite times.
        """
        check_seconds(due, "due time")
        check_seconds(period, "period")
        with LOCK:
            self._check_open_locked()
            if self._fired_once and not self._pending_entry:
                return True
        self.set(due, period)
        return True

    def _finish_locked(self, instance: CallbackInstance) -> bool:
        release = super()._finish_locked(instance)
        _check_completion_locked(self)
        return release

    def delete(self, completion: Completion = None) -> bool:
        """DeleteTimerQueueTimer (module docstring). Returns False while callbacks remain.

        Raises:
            Win32Error: ERROR_INVALID_HANDLE if already deleted.
        """
        self.queue._forget(self)
        return _release_object(self, completion, count_own=True)


class TimerQueue:
    """A timer queue (CreateTimerQueue): a set of timers run by a pool's wait thread."""

    __slots__ = ("_deleted", "_timers", "pool")

    def __init__(self, pool: ThreadPool | None = None) -> None:
        self.pool = default_pool() if pool is None else pool
        self.pool.check_open()
        self._timers: dict[QueueTimer, None] = {}
        self._deleted = False

    @classmethod
    def default(cls) -> TimerQueue:
        """The process's default timer queue (a NULL TimerQueue handle)."""
        global _default_queue
        queue = _default_queue
        if queue is None:
            with _default_queue_lock:
                queue = _default_queue
                if queue is None:
                    queue = _default_queue = cls()
        return queue

    def create_timer(
        self,
        fn: Callable[..., object],
        *args: Any,
        due: float | _dt.datetime = 0.0,
        period: float = 0.0,
        in_timer_thread: bool = False,
        once: bool = False,
        long_function: bool = False,
        start: bool = True,
    ) -> QueueTimer:
        """CreateTimerQueueTimer: ``fn(*args)`` after ``due`` seconds, then every ``period``.

        Raises:
            Win32Error: ERROR_INVALID_HANDLE if the queue was deleted; ERROR_INVALID_PARAMETER
                for bad times or a non-callable.
        """
        if self._deleted:
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the timer queue was deleted")
        timer = QueueTimer(
            self, fn, args, in_timer_thread=in_timer_thread, long_function=long_function
        )
        timer._due = due
        timer._start_period = 0.0 if once else period
        with LOCK:
            self._timers[timer] = None
        if start:
            timer.start()
        return timer

    def _forget(self, timer: QueueTimer) -> None:
        with LOCK:
            self._timers.pop(timer, None)

    def delete(self, completion: Completion = None) -> bool:
        """DeleteTimerQueueEx: delete every timer, then the queue. Returns True when every
        callback had finished (always, with ``completion`` True).

        Raises:
            Win32Error: ERROR_INVALID_HANDLE if already deleted, or for the default queue.
        """
        if self is _default_queue:
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the default timer queue")
        with LOCK:
            if self._deleted:
                raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the timer queue was deleted")
            self._deleted = True
            timers = list(self._timers)
            self._timers.clear()
        done = True
        for timer in timers:
            if not timer.closed:
                done = _release_object(timer, completion is True) and done
        if isinstance(completion, Event):
            if done:
                completion.set()
            else:
                _DeletionWatch(self.pool, timers, completion)
        return done


class _DeletionWatch:
    """Sets an event once every timer of a deleted queue has finished its callbacks."""

    def __init__(self, pool: ThreadPool, timers: list[QueueTimer], event: Event) -> None:
        pool.submit(self._run, timers, event)

    @staticmethod
    def _run(timers: list[QueueTimer], event: Event) -> None:
        for timer in timers:
            timer._wait_idle(True)
        event.set()


_default_queue: TimerQueue | None = None
_default_queue_lock = threading.Lock()
