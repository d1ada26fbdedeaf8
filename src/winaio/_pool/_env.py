"""Callback environments and callback instances (win32-async-spec §9; [MS:TP_CALLBACK_ENVIRON]).

- :class:`CallbackEnvironment` is TP_CALLBACK_ENVIRON without the pool (the pool is the object
  the callback object is created from): cleanup group and its cancel callback, finalization
  callback, long-function and persistent hints, priority (high callbacks are taken before normal
  ones, normal before low [W:nt/threadpool.c:test_tp_simple]).
- :class:`CallbackInstance` is TP_CALLBACK_INSTANCE: what a running callback may ask of the pool.
  The "when the callback returns" actions run after the finalization callback, in Wine's order:
  mutex release, semaphore release, event set; the first action of each kind set wins
  [W:dlls/ntdll/threadpool.c:tp_object_execute]. An instance is only usable on its callback's
  thread while the callback runs (else ERROR_INVALID_PARAMETER).

Invariants: an instance's ``associated`` flag is cleared at most once (by ``disassociate`` or by
the end of the callback), always under the dispatcher lock, so the object's associated-callback
count stays exact.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._kernel._dispatcher import LOCK
from .._kernel._objects import Event, Mutex, Semaphore
from ..codes import WinError
from ..errors import Win32Error

if TYPE_CHECKING:
    from ._objects import PoolObject
    from ._pool import ThreadPool

__all__ = [
    "CallbackEnvironment",
    "CallbackInstance",
    "CallbackPriority",
    "current_instance",
]


class CallbackPriority(enum.IntEnum):
    """TP_CALLBACK_PRIORITY: the order in which queued callbacks are taken."""

    HIGH = 0
    NORMAL = 1
    LOW = 2


@dataclass(frozen=True, slots=True)
class CallbackEnvironment:
    """How the callbacks of a pool object run (TP_CALLBACK_ENVIRON, minus the pool).

    Attributes:
        cleanup_group: the :class:`~winaio.CleanupGroup` the object joins.
        cancel_callback: ``cancel_callback(context, cleanup_context)``, called by
            ``CleanupGroup.close_members(cancel_pending=True)`` for each member still open.
        finalization_callback: ``finalization_callback(instance, context)``, run after every
            callback of the object, before the "when the callback returns" actions.
        long_function: every callback may run long: it does not count against the pool port's
            concurrency value (as if it called ``instance.may_run_long()`` first).
        persistent: accepted for fidelity; every worker here can run any callback.
        priority: HIGH, NORMAL or LOW.
    """

    cleanup_group: Any = None
    cancel_callback: Callable[[Any, Any], object] | None = None
    finalization_callback: Callable[[CallbackInstance, Any], object] | None = None
    long_function: bool = False
    persistent: bool = False
    priority: CallbackPriority = CallbackPriority.NORMAL


DEFAULT_ENVIRONMENT = CallbackEnvironment()

#: ``.instance``: the callback instance running on this thread (set by ``PoolObject._execute``).
CURRENT = threading.local()


def current_instance() -> CallbackInstance | None:
    """The callback instance running on the calling thread, if any."""
    instance: CallbackInstance | None = getattr(CURRENT, "instance", None)
    return instance


class CallbackInstance:
    """TP_CALLBACK_INSTANCE: handed to every object callback as its first argument.

    Attributes:
        object: the pool object whose callback this is (None for ``TrySubmitThreadpoolCallback``
            callbacks, whose object is private).
    """

    __slots__ = (
        "_event",
        "_long",
        "_mutex",
        "_running",
        "_semaphore",
        "_semaphore_count",
        "associated",
        "object",
        "pool",
    )

    def __init__(self, obj: PoolObject | None, pool: ThreadPool, long_function: bool) -> None:
        self.object = obj
        self.pool = pool
        self.associated = True
        self._long = long_function
        self._running = True
        self._event: Event | None = None
        self._semaphore: Semaphore | None = None
        self._semaphore_count = 0
        self._mutex: Mutex | None = None

    def _check(self) -> None:
        # The running callback's instance is the thread's current one (``_execute`` sets it).
        if not self._running or getattr(CURRENT, "instance", None) is not self:
            raise Win32Error(
                WinError.ERROR_INVALID_PARAMETER,
                "a callback instance is only valid on its thread while its callback runs",
            )

    def set_event_on_return(self, event: Event) -> None:
        """SetEventWhenCallbackReturns: set ``event`` once the callback has returned."""
        self._check()
        if not isinstance(event, Event):
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{event!r} is not an event")
        if self._event is None:
            self._event = event

    def release_semaphore_on_return(self, semaphore: Semaphore, count: int = 1) -> None:
        """ReleaseSemaphoreWhenCallbackReturns: release ``semaphore`` by ``count`` afterwards."""
        self._check()
        if not isinstance(semaphore, Semaphore):
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{semaphore!r} is not a semaphore")
        if count <= 0:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"release count {count}")
        if self._semaphore is None:
            self._semaphore = semaphore
            self._semaphore_count = count

    def release_mutex_on_return(self, mutex: Mutex) -> None:
        """ReleaseMutexWhenCallbackReturns: release ``mutex`` (owned by this thread) afterwards."""
        self._check()
        if not isinstance(mutex, Mutex):
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{mutex!r} is not a mutex")
        if self._mutex is None:
            self._mutex = mutex

    def may_run_long(self) -> bool:
        """CallbackMayRunLong: this callback may not return quickly.

        From now on the thread does not count against the pool port's concurrency value, so
        another queued callback can run. Returns True if another worker is idle or can be
        created (max_threads not reached), False otherwise (STATUS_TOO_MANY_THREADS).
        """
        self._check()
        return self.pool._callback_may_run_long(self)

    def disassociate(self) -> None:
        """DisassociateCurrentThreadFromCallback: the object's ``wait_callbacks`` no longer waits
        for this callback (cleanup-group waits still do)."""
        self._check()
        obj = self.object
        with LOCK:
            if not self.associated:
                return
            self.associated = False
            if obj is not None:
                obj._associated -= 1
                obj._notify_locked()

    def _on_return(self) -> None:
        """The "when the callback returns" actions (module docstring); errors are raised."""
        mutex = self._mutex
        if mutex is not None:
            mutex.release()
        semaphore = self._semaphore
        if semaphore is not None:
            semaphore.release(self._semaphore_count)
        event = self._event
        if event is not None:
            event.set()

    def __repr__(self) -> str:
        return f"<CallbackInstance of {self.object!r}>"
