"""Asynchronous procedure calls: per-thread user-APC queues (win32-async-spec §3).

Facts encoded here:
- QueueUserAPC appends to the target's FIFO queue; a target that has terminated (or is
  terminating) makes it fail with ERROR_GEN_FAILURE [MS:QueueUserAPC]
  [W:k32/sync.c:test_QueueUserAPC].
- User APCs run only at alertable points (SleepEx/WaitFor*Ex(alertable), SignalObjectAndWait,
  GetQueuedCompletionStatusEx/GetOverlappedResultEx(alertable), NtTestAlert). There *all* queued
  APCs run FIFO, including ones queued while dispatching, then the call returns
  WAIT_IO_COMPLETION [W:k32/sync.c:test_alertable_wait].
- APCs still queued when the thread exits are discarded, never called.
- One queue, several producers: QueueUserAPC, I/O completion routines (the issuing thread),
  timer completion routines (the setting thread) [MS:Asynchronous Procedure Calls].

Special user APCs (QueueUserAPC2 + QUEUE_USER_APC_FLAGS_SPECIAL_USER_APC), a **documented
deviation**: Windows interrupts the target wherever it runs. CPython cannot run code in another
thread at an arbitrary point, so here a special APC runs (a) at once, inside the call, when
queued to the calling thread (as on Windows, [W:k32/sync.c:test_QueueUserAPC]); (b) immediately
when the target is in an alertable wait (the wait is interrupted and returns WAIT_IO_COMPLETION
after running it and any user APCs); (c) after the current non-alertable wait returns its normal
result [MS:QueueUserAPC2]; (d) otherwise at the target's next entry into a winaio wait.

Rules: queue under the dispatcher lock (so "alive" and "in an alertable wait" are read
atomically with the append); run APCs only without the lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..codes import WinError
from ..errors import Win32Error
from ._dispatcher import LOCK, ThreadState, wake_thread

__all__ = ["queue_special_apc", "queue_user_apc", "run_apcs", "run_special_apcs"]


def queue_user_apc(target: ThreadState, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Append ``fn(*args)`` to ``target``'s user-APC queue; wake it if it waits alertably.

    Raises:
        Win32Error: ERROR_GEN_FAILURE if the target thread has terminated.
    """
    with LOCK:
        if not target.alive or target.terminating:
            raise Win32Error(WinError.ERROR_GEN_FAILURE, "the target thread has terminated")
        target.apcs.append((fn, args))
        wb = target.wait
        if wb is not None and wb.alertable:
            wake_thread(target)


def queue_special_apc(
    target: ThreadState, fn: Callable[..., Any], args: tuple[Any, ...], caller: ThreadState
) -> None:
    """Queue a special user APC (see the module docstring for where it runs)."""
    with LOCK:
        if not target.alive or target.terminating:
            raise Win32Error(WinError.ERROR_GEN_FAILURE, "the target thread has terminated")
        if target is not caller:
            target.special_apcs.append((fn, args))
            wb = target.wait
            if wb is not None and wb.alertable:
                wake_thread(target)
            return
    # Queued to ourselves: it has run by the time QueueUserAPC2 returns.
    fn(*args)


def run_apcs(ts: ThreadState) -> bool:
    """Run every queued user APC of the calling thread, FIFO, until the queue is empty.

    Returns True iff at least one ran. An exception from an APC propagates (like an SEH
    exception unwinding out of the alertable wait); the APCs after it stay queued.
    """
    apcs = ts.apcs
    ran = False
    while True:
        try:
            fn, args = apcs.popleft()
        except IndexError:
            # Another thread may remove an entry concurrently (CancelWaitableTimer drops its
            # outstanding routine), so emptiness is detected by popleft, not by a prior check.
            return ran
        ran = True
        fn(*args)


def run_special_apcs(ts: ThreadState) -> bool:
    """Run every queued special APC of the calling thread. Returns True iff one ran."""
    apcs = ts.special_apcs
    ran = False
    while True:
        try:
            fn, args = apcs.popleft()
        except IndexError:
            return ran
        ran = True
        fn(*args)
