"""The Vista thread pool on winaio completion ports (win32-async-spec §9, issue 10).

Modules:
- ``_pool``: :class:`ThreadPool` - workers that are completion-port threads, priority queues,
  growth and retirement, close.
- ``_objects``: the bookkeeping every callback object shares; work objects, one-shot callbacks,
  :class:`PoolCall`.  ``_env``: callback environments and instances.  ``_group``: cleanup groups.
- ``_waiter``: the one wait thread of a pool (timers, wait timeouts).  ``_clock``: its clocks.
- ``_timer``, ``_wait``, ``_io``: timer, wait and I/O objects.  ``_legacy``: QueueUserWorkItem,
  BindIoCompletionCallback, RegisterWaitForSingleObject, timer queues.
"""

from __future__ import annotations

from ._clock import ManualClock, PoolClock
from ._env import CallbackEnvironment, CallbackInstance, CallbackPriority
from ._group import CleanupGroup
from ._io import IoBinding, PoolIo
from ._legacy import (
    QueueTimer,
    RegisteredWait,
    TimerQueue,
    bind_io_completion_callback,
    queue_user_work_item,
    register_wait,
)
from ._objects import PoolCall, PoolObject, PoolWork
from ._pool import ThreadPool, default_pool
from ._timer import PoolTimer
from ._wait import PoolWait

__all__ = [
    "CallbackEnvironment",
    "CallbackInstance",
    "CallbackPriority",
    "CleanupGroup",
    "IoBinding",
    "ManualClock",
    "PoolCall",
    "PoolClock",
    "PoolIo",
    "PoolObject",
    "PoolTimer",
    "PoolWait",
    "PoolWork",
    "QueueTimer",
    "RegisteredWait",
    "ThreadPool",
    "TimerQueue",
    "bind_io_completion_callback",
    "default_pool",
    "queue_user_work_item",
    "register_wait",
]
