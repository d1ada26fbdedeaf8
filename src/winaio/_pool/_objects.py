"""Thread-pool callback objects: the shared bookkeeping, work objects, one-shot callbacks, calls.

Every pool object (work, timer, wait, I/O, one-shot callback) keeps three counts under the
dispatcher lock, as Wine's ``threadpool_object`` does [W:dlls/ntdll/threadpool.c]:

- ``_pending``: callbacks queued and not started. The object sits **once** in its pool's
  priority queue while ``_pending > 0``; a worker taking one callback re-queues it at the tail
  if more are pending, so two busy objects alternate [W:nt/threadpool.c:test_tp_work_scheduler].
- ``_running``: callbacks executing (cleanup-group waits wait for these).
- ``_associated``: running callbacks not disassociated (``wait_callbacks`` waits for these).

``wait_callbacks(cancel_pending)`` first drops the pending callbacks if asked, then waits until
nothing is pending or associated (spec §9 WaitForThreadpool*Callbacks). Called from a callback of
the same object it does not wait for that callback (which would deadlock): the caller's own
callback is disassociated first. Waiting uses a kernel event, so a waiting port thread stops
counting against its port's concurrency value (§6.7).

Closing an object (Close*) stops it from queueing new callbacks; callbacks already queued still
run and the object goes away after them, as on Windows ("freed asynchronously after the
outstanding callbacks complete" [MS:CloseThreadpoolWork]). A second close raises
ERROR_INVALID_HANDLE. Exceptions escaping a callback are reported through
``threading.excepthook`` (Windows would crash the process); the worker carries on.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._kernel._dispatcher import LOCK, DispatcherObject, ThreadState, WaitBlock, wake_waiters
from .._kernel._objects import Event
from .._kernel._wait import wait_for_one
from ..codes import WaitCode, WinError
from ..errors import Win32Error
from ._env import CURRENT as _CURRENT
from ._env import (
    DEFAULT_ENVIRONMENT,
    CallbackEnvironment,
    CallbackInstance,
    current_instance,
)

if TYPE_CHECKING:
    from ._group import CleanupGroup
    from ._pool import ThreadPool

__all__ = ["PoolCall", "PoolObject", "PoolWork", "SimpleCallback", "report_callback_error"]


def report_callback_error() -> None:
    """Report the exception being handled (a pool callback raised it) via threading.excepthook."""
    exc_type, exc, tb = sys.exc_info()
    if exc_type is None:
        return
    threading.excepthook(threading.ExceptHookArgs((exc_type, exc, tb, threading.current_thread())))


class PoolObject:
    """Base of every pool callback object (module docstring)."""

    __slots__ = (
        "__weakref__",
        "_args",
        "_associated",
        "_callback",
        "_cancel_callback",
        "_closed",
        "_finalization",
        "_group",
        "_idle",
        "_long",
        "_pending",
        "_pool",
        "_priority",
        "_running",
        "context",
    )

    def __init__(
        self,
        pool: ThreadPool,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        environment: CallbackEnvironment | None,
        context: Any,
    ) -> None:
        if not callable(callback):
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"{callback!r} is not callable")
        env = DEFAULT_ENVIRONMENT if environment is None else environment
        if not isinstance(env, CallbackEnvironment):
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"{env!r} is not an environment")
        priority = int(env.priority)
        if priority not in (0, 1, 2):
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"callback priority {priority}")
        self._pool = pool
        self._callback = callback
        self._args = args
        self.context = context
        self._priority = priority
        self._long = bool(env.long_function)
        self._cancel_callback = env.cancel_callback
        self._finalization = env.finalization_callback
        self._pending = 0
        self._running = 0
        self._associated = 0
        self._closed = False
        self._idle: Event | None = None
        self._group: CleanupGroup | None = None
        spawn = False
        try:
            with LOCK:
                pool.check_open()
                pool._objects += 1
                spawn = pool._ensure_worker_locked()
            if spawn:
                pool._spawn()
        except BaseException as exc:  # (Ctrl-C: the worker counted, started)
            pool._woken_again(exc, spawn)
            raise
        group: CleanupGroup | None = env.cleanup_group
        if group is not None:
            try:
                group._add(self)
            except Win32Error:
                self._discard()
                raise
            self._group = group

    @property
    def pool(self) -> ThreadPool:
        """The pool that runs this object's callbacks."""
        return self._pool

    @property
    def closed(self) -> bool:
        """True once the object has been closed (or released by its cleanup group)."""
        return self._closed

    # ------------------------------------------------------------------ queueing (under LOCK)
    def _queue_locked(self, count: int = 1) -> bool:
        """Queue ``count`` callbacks; returns True if the pool must start a worker."""
        self._pend_locked(count)
        return self._pool._post_tokens_locked(count)

    def _pend_locked(self, count: int) -> None:
        pending = self._pending
        self._pending = pending + count
        if not pending:
            self._pool._queues[self._priority].append(self)

    def _take_locked(self) -> tuple[Any, ...]:
        """A worker takes one pending callback (the object was popped from its queue).

        Returns the extra arguments of that callback (after ``*args``).
        """
        pending = self._pending - 1
        self._pending = pending
        if pending:
            self._pool._queues[self._priority].append(self)
        self._running += 1
        self._associated += 1
        return ()

    def _cancel_pending_locked(self) -> int:
        """Drop every queued callback; returns how many were dropped."""
        pending = self._pending
        if pending:
            self._pending = 0
            try:
                self._pool._queues[self._priority].remove(self)
            except ValueError:
                pass
            self._notify_locked()
        return pending

    def _notify_locked(self) -> None:
        """Wake ``wait_callbacks`` callers so they re-check (the object may be idle now)."""
        idle = self._idle
        if idle is not None:
            self._idle = None
            idle._signaled = True
            if idle._waiters:
                wake_waiters(idle)

    # ------------------------------------------------------------------ running
    def _execute(self, ts: ThreadState | None, extra: tuple[Any, ...] = ()) -> None:
        """Run one taken callback on this thread (``_take_locked`` already counted it)."""
        pool = self._pool
        instance = CallbackInstance(self, pool, self._long)
        current = _CURRENT
        previous = getattr(current, "instance", None)  # callbacks may nest (wait-thread runs)
        current.instance = instance
        if self._long and ts is not None:
            pool._detach_thread(ts)
        try:
            try:
                self._invoke(instance, extra)
            except Exception:
                report_callback_error()
            finalization = self._finalization
            if finalization is not None:
                try:
                    finalization(instance, self.context)
                except Exception:
                    report_callback_error()
            if (
                instance._mutex is not None
                or instance._semaphore is not None
                or instance._event is not None
            ):
                try:
                    instance._on_return()
                except Exception:
                    report_callback_error()
        finally:
            instance._running = False
            current.instance = previous
            with LOCK:
                release = self._finish_locked(instance)
            if release:
                pool.close()

    def _invoke(self, instance: CallbackInstance, extra: tuple[Any, ...]) -> None:
        """Call the callback (legacy objects override it: no instance argument)."""
        self._callback(instance, *self._args, *extra)

    def _finish_locked(self, instance: CallbackInstance) -> bool:
        """The callback returned; True if the pool must now be released (see
        ``_mark_closed_locked``)."""
        self._running -= 1
        if instance.associated:
            instance.associated = False
            self._associated -= 1
        if self._idle is not None:
            self._notify_locked()
        return False

    # ------------------------------------------------------------------ waiting
    def _busy_locked(self, group: bool, own: bool) -> bool:
        if self._pending:
            return True
        if group:
            return self._running - own > 0
        return self._associated > 0

    def _wait_idle(self, group: bool) -> None:
        """Block until no callback is pending and none is associated (``group``: running)."""
        me = current_instance()
        own = me is not None and me.object is self
        if own and not group and me is not None:
            me.disassociate()
        while True:
            with LOCK:
                if not self._busy_locked(group, own):
                    return
                idle = self._idle
                if idle is None:
                    idle = self._idle = Event(manual_reset=True)
            wait_for_one(idle, None, False)

    def wait_callbacks(self, cancel_pending: bool = False) -> None:
        """WaitForThreadpool*Callbacks: wait for the outstanding callbacks of this object.

        Args:
            cancel_pending: first drop the callbacks that are queued and not started.
        """
        if cancel_pending:
            with LOCK:
                self._cancel_pending_locked()
        self._wait_idle(False)

    # ------------------------------------------------------------------ closing
    def _mark_closed_locked(self) -> bool:
        """Closed from now on. Returns True if this was the last object of a pool whose release
        was requested (CloseThreadpool): the caller then calls ``pool.close()``."""
        if self._closed:
            return False
        self._closed = True
        pool = self._pool
        pool._objects -= 1
        return pool._release_requested and not pool._objects

    def _discard(self) -> None:
        """Undo a half-made object (its creation failed)."""
        with LOCK:
            release = self._mark_closed_locked()
        if release:
            self._pool.close()

    def _check_open_locked(self) -> None:
        if self._closed:
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{self!r} is closed")

    def _shutdown(self) -> None:
        """Stop producing new callbacks (timers stop, waits unregister); subclasses extend."""

    def close(self) -> None:
        """Close*: no new callbacks; queued ones still run (module docstring).

        Raises:
            Win32Error: ERROR_INVALID_HANDLE if already closed.
        """
        with LOCK:
            self._check_open_locked()
            release = self._mark_closed_locked()
        self._shutdown()
        group = self._group
        if group is not None:
            group._discard(self)
        if release:
            self._pool.close()

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<{type(self).__name__}{state} {self._callback!r}>"


class PoolWork(PoolObject):
    """A work object (CreateThreadpoolWork): ``callback(instance, *args)`` once per submit."""

    __slots__ = ()

    def submit(self) -> None:
        """SubmitThreadpoolWork: queue one callback.

        Raises:
            Win32Error: ERROR_INVALID_HANDLE if the work object or its pool is closed.
        """
        pool = self._pool
        spawn = False
        try:
            with LOCK:
                if self._closed:
                    raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{self!r} is closed")
                spawn, wake = pool._post_one_locked()  # (the token first: ``ThreadPool.submit``)
                self._pend_locked(1)
            if wake is not None:
                wake.wake()  # after the lock (``ThreadPool._handoff_locked``)
            elif spawn:
                pool._spawn()
        except BaseException as exc:  # (Ctrl-C: the wake-up or start owed, made)
            pool._woken_again(exc, spawn)
            raise


class SimpleCallback(PoolObject):
    """The private object of TrySubmitThreadpoolCallback: one callback, then it closes itself."""

    __slots__ = ()

    def _finish_locked(self, instance: CallbackInstance) -> bool:
        super()._finish_locked(instance)
        group = self._group
        if group is not None:
            group._members.pop(self, None)
        return self._mark_closed_locked()


_PENDING, _RUNNING, _DONE, _CANCELLED = range(4)


class PoolCall(DispatcherObject):
    """The result of :meth:`ThreadPool.call`: a waitable object signaled when ``fn`` is done.

    ``winaio.wait(call)`` / ``wait_any`` work on it like on any kernel object.
    """

    __slots__ = ("_args", "_exception", "_fn", "_listener", "_result", "_state")
    type_name = "PoolCall"

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        # DispatcherObject.__init__, inlined (one call per work item).
        self._waiters: dict[WaitBlock, None] = {}
        self.name: str | None = None
        self._fn = fn
        self._args = args
        self._state = _PENDING
        self._result: Any = None
        self._exception: BaseException | None = None
        #: Called (outside the lock, on the worker) once the call is over: the asyncio bridge.
        self._listener: Callable[[PoolCall], object] | None = None

    def _is_signaled_for(self, ts: ThreadState) -> bool:
        return self._state >= _DONE

    def _take_locked(self) -> bool:
        """A worker dequeued the call (under the lock): False if it was cancelled."""
        if self._state != _PENDING:
            return False
        self._state = _RUNNING
        return True

    def _run(self) -> None:
        """Run on the worker that took it (``_take_locked`` returned True)."""
        try:
            self._result = self._fn(*self._args)
        except BaseException as exc:  # delivered to the caller, like a Future
            self._exception = exc
            if not isinstance(exc, Exception):
                self._complete(_DONE)
                raise
        self._complete(_DONE)

    def _complete(self, state: int) -> None:
        with LOCK:
            self._state = state
            if self._waiters:
                wake_waiters(self)
        if self._listener is not None:
            self._tell_listener()

    def _tell_listener(self) -> None:
        listener = self._listener
        if listener is not None:
            listener(self)

    def done(self) -> bool:
        """True once the call returned, raised or was cancelled."""
        return self._state >= _DONE

    def cancelled(self) -> bool:
        """True if :meth:`cancel` removed the call before it started."""
        return self._state == _CANCELLED

    def cancel(self) -> bool:
        """Cancel the call if it has not started; returns True if it will never run."""
        with LOCK:
            if self._state == _CANCELLED:
                return True
            if self._state != _PENDING:
                return False
            self._state = _CANCELLED
            if self._waiters:
                wake_waiters(self)
        self._tell_listener()
        return True

    def _wait(self, timeout: float | None) -> None:
        if self._state < _DONE:
            code = wait_for_one(self, timeout, False)
            if code != WaitCode.WAIT_OBJECT_0:
                raise Win32Error(code, "the call has not finished")

    def result(self, timeout: float | None = None) -> Any:
        """The return value of ``fn`` (waiting up to ``timeout`` seconds, None = forever).

        Raises:
            Win32Error: WAIT_TIMEOUT if not done in time; ERROR_OPERATION_ABORTED if cancelled.
            BaseException: whatever ``fn`` raised.
        """
        self._wait(timeout)
        if self._state == _CANCELLED:
            raise Win32Error(WinError.ERROR_OPERATION_ABORTED, "the call was cancelled")
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """What ``fn`` raised (None if it returned); same waiting rules as :meth:`result`."""
        self._wait(timeout)
        if self._state == _CANCELLED:
            raise Win32Error(WinError.ERROR_OPERATION_ABORTED, "the call was cancelled")
        return self._exception

    def __repr__(self) -> str:
        state = ("pending", "running", "done", "cancelled")[self._state]
        return f"<PoolCall {state} {self._fn!r}>"
