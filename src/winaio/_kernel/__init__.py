"""Kernel objects, waits and APCs: pure threading, no I/O, no asyncio (win32-async-spec §1-3).

Modules:
- ``_dispatcher``: the dispatcher lock, waitable-object base, wait blocks, thread state.
- ``_objects``: events, semaphores, mutexes.  ``_timer``: waitable timers + the timer thread.
- ``_threads``: thread objects, CreateThread, thread-exit effects.  ``_apc``: APC queues.
- ``_wait``: the wait algorithm.  ``_handles``: handle table and object namespace.
- ``_api``: the Pythonic functions re-exported by ``winaio``.
"""

from __future__ import annotations

from ._api import (
    WaitResult,
    WaitStatus,
    current_thread,
    exit_thread,
    queue_apc,
    queue_special_apc,
    signal_and_wait,
    sleep,
    start_thread,
    test_alert,
    wait,
    wait_all,
    wait_any,
)
from ._dispatcher import DispatcherObject
from ._objects import Event, Mutex, Semaphore
from ._threads import KThread
from ._timer import WaitableTimer

__all__ = [
    "DispatcherObject",
    "Event",
    "KThread",
    "Mutex",
    "Semaphore",
    "WaitResult",
    "WaitStatus",
    "WaitableTimer",
    "current_thread",
    "exit_thread",
    "queue_apc",
    "queue_special_apc",
    "signal_and_wait",
    "sleep",
    "start_thread",
    "test_alert",
    "wait",
    "wait_all",
    "wait_any",
]
