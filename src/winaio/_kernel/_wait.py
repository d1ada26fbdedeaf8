"""THE wait algorithm: WaitForSingle/MultipleObjects(Ex), SleepEx, SignalObjectAndWait, NtTestAlert.

Evaluation order of every wait (win32-async-spec §2.1), re-run on every wake-up:

1. Validate (callers do it: bad handle -> ERROR_INVALID_HANDLE; 0 or > 64 objects or duplicates
   -> ERROR_INVALID_PARAMETER).
2. Object check (:func:`~._dispatcher.try_satisfy`): wait-any = first signaled in array order;
   wait-all = all at one instant, atomically.
3. Alertable and user APCs queued -> run them all FIFO (including ones queued meanwhile) and
   return WAIT_IO_COMPLETION **without re-checking the objects**, even if an APC signaled one.
4. Timeout 0 or elapsed -> WAIT_TIMEOUT. Relative timeouts use the monotonic clock.
5. Otherwise block until an object change satisfies us (the signaller does it for us), an APC
   arrives (alertable only) or the timeout elapses; then continue at 2/3/4.

Consequence: an already-signaled object beats a queued APC; the APC stays queued for the next
alertable wait [W:server/thread.c:check_wait] [W:k32/file.c:test_post_completion].

Waits never touch the thread's last-error (§0): errors are exceptions here, and the Win32
alias layer sets last-error only for WAIT_FAILED.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .._clock import monotonic
from ..codes import MAXIMUM_WAIT_OBJECTS, WaitCode, WinError
from ..errors import Win32Error
from ._apc import run_apcs, run_special_apcs
from ._dispatcher import (
    LOCK,
    TERMINATED,
    BlockListener,
    DispatcherObject,
    ThreadState,
    WaitBlock,
    run_block_hook,
    try_satisfy,
    unlink_wait,
)
from ._threads import _tls, check_terminating, current_thread_state

__all__ = [
    "abandon_wait",
    "block",
    "signal_and_wait",
    "sleep",
    "test_alert",
    "validate_objects",
    "wait_for_objects",
    "wait_for_one",
]

_WAIT_OBJECT_0 = int(WaitCode.WAIT_OBJECT_0)
_WAIT_ABANDONED_0 = int(WaitCode.WAIT_ABANDONED_0)
_WAIT_TIMEOUT = int(WaitCode.WAIT_TIMEOUT)
_WAIT_IO_COMPLETION = int(WaitCode.WAIT_IO_COMPLETION)
_TIMEOUT_MAX = threading.TIMEOUT_MAX
_new_object = object.__new__


def validate_objects(objects: tuple[DispatcherObject, ...]) -> None:
    """Spec §2.1 step 1 for a multiple-object wait.

    Raises:
        Win32Error: ERROR_INVALID_PARAMETER for 0 or more than 64 objects, or the same object
            twice ("may not contain multiple copies of the same handle"
            [MS:WaitForMultipleObjects]);
            ERROR_INVALID_HANDLE for something that is not a waitable kernel object.
    """
    count = len(objects)
    if count == 0 or count > MAXIMUM_WAIT_OBJECTS:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"{count} wait objects")
    for obj in objects:
        if not isinstance(obj, DispatcherObject):
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{obj!r} is not waitable")
    if count > 1 and len({id(obj) for obj in objects}) != count:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "the same object appears twice")


def block(
    ts: ThreadState, wb: WaitBlock, deadline: float | None, listener: BlockListener | None
) -> int:
    """Park the calling thread in the registered wait ``wb`` until it ends (steps 2-5).

    Called without the lock, after the caller registered ``wb`` (``ts.wait = wb`` and ``wb`` in
    each object's waiter list) under it and told ``listener`` (the thread's completion port, if
    any) that it blocks. Returns the wait code, ``WAIT_TIMEOUT`` or ``WAIT_IO_COMPLETION`` (APCs
    are *not* run here: the caller runs them without the lock); ``listener`` learns under the
    same lock that the thread runs again.

    Before it parks, it runs the thread's ``on_block`` hook (``ThreadState.on_block``: the
    thread backend hands a request it left to this thread's port wait to a worker).

    A wait ended while this thread was awake inside it (its parker runs code while it blocks,
    ``_dispatcher.Parker``) comes back with no token taken and ``ts.wait`` already cleared
    under the lock by :func:`~._dispatcher.complete_wait`: its result is returned without
    taking the lock again (``listener`` None; else the listener is told under the lock).
    """
    if ts.on_block is not None:
        # Work left to this thread's GetQueuedCompletionStatus goes elsewhere: it parks here
        # (``ThreadState.on_block``; an exception is the caller's, as below).
        run_block_hook(ts)
    parker = ts.parker
    while True:
        # An exception out of the parker (Ctrl-C) is the registering caller's to handle: each
        # one (wait_for_objects, wait_for_one, CompletionPort.get_many) unregisters its wait
        # with :func:`abandon_wait` around the registration and this call.
        if deadline is None:
            got = parker.acquire()
        else:
            remaining = deadline - monotonic()
            if remaining > 0:
                got = parker.acquire(True, min(remaining, _TIMEOUT_MAX))
            else:
                got = parker.acquire(False)
        if not got and listener is None and ts.wait is None:
            # Ended by this thread itself, awake in its wait: nothing left for the lock. (A
            # token given before that and not taken by the parker stays outstanding with
            # wake_pending set: the next wait takes it as a spurious wake-up.)
            result = wb.result
            if result is not None:
                if result == TERMINATED:
                    check_terminating(ts)
                return result
        with LOCK:
            if got:
                ts.wake_pending = False
            elif ts.wake_pending:
                # The token was released (under LOCK) after our acquire timed out: consume it
                # so the parker is locked again for the next wait.
                parker.acquire(False)
                ts.wake_pending = False
            result = wb.result
            if result is None:
                if ts.terminating:
                    unlink_wait(wb)
                    result = TERMINATED
                elif wb.alertable and (ts.apcs or ts.special_apcs):
                    unlink_wait(wb)
                    result = _WAIT_IO_COMPLETION
                elif deadline is not None and not monotonic() < deadline:  # NaN: at once
                    unlink_wait(wb)
                    result = _WAIT_TIMEOUT
                else:
                    continue
            ts.wait = None
            if listener is not None:
                listener.thread_unblocked(ts)
        if result == TERMINATED:
            check_terminating(ts)
        return result


def abandon_wait(ts: ThreadState, wb: WaitBlock, listener: BlockListener | None) -> None:
    """An exception ended the registered wait ``wb`` (a signal handler's KeyboardInterrupt in
    the main thread, in the parker or anywhere between the registration and the return;
    anything a ring leader's delivery let through): unregister it. Left registered, it would
    take the next packet of its port or the next signal of its objects for a thread that is
    not waiting any more. A wait already ended (its result stored) keeps its effect, as an
    interrupted ``threading.Lock.acquire`` that got the lock does. Idempotent."""
    with LOCK:
        if ts.wake_pending:
            ts.parker.acquire(False)  # the parker is locked again for the next wait
            ts.wake_pending = False
        if wb.result is None:
            unlink_wait(wb)
        ts.wait = None
        if listener is not None:
            listener.thread_unblocked(ts)


def _finish(ts: ThreadState, result: int) -> int:
    """Run what the result asks for, outside the lock: APCs for WAIT_IO_COMPLETION; special
    APCs that arrived during a non-alertable wait (they run after it returns, §3)."""
    if result == _WAIT_IO_COMPLETION:
        run_special_apcs(ts)
        run_apcs(ts)
    elif ts.special_apcs:
        run_special_apcs(ts)
    return result


def wait_for_objects(
    objects: tuple[DispatcherObject, ...],
    wait_all: bool,
    timeout: float | None,
    alertable: bool,
    signal: Callable[[ThreadState], None] | None = None,
) -> int:
    """Wait on already-validated ``objects``; returns the Win32 wait code.

    Args:
        objects: 1..64 distinct waitable objects (or none, for SleepEx).
        wait_all: WaitForMultipleObjects' bWaitAll.
        timeout: seconds; None = INFINITE; 0 = poll.
        alertable: run user APCs and return WAIT_IO_COMPLETION when any are queued.
        signal: SignalObjectAndWait's signal step, run under the same lock acquisition as the
            first object check so that "signal then wait" is one operation. If it raises,
            nothing waits.
    """
    ts = current_thread_state()
    if ts.special_apcs:
        run_special_apcs(ts)
    check_terminating(ts)
    wb: WaitBlock | None = None
    listener: BlockListener | None = None
    try:  # an exception once ``wb`` is registered unregisters it (abandon_wait)
        with LOCK:
            if signal is not None:
                signal(ts)
            result = try_satisfy(objects, wait_all, ts)
            if result is None:
                if alertable and (ts.apcs or ts.special_apcs):
                    result = _WAIT_IO_COMPLETION
                elif timeout is not None and timeout <= 0:
                    result = _WAIT_TIMEOUT
                else:
                    wb = WaitBlock(ts, objects, wait_all, alertable)
                    for obj in objects:
                        obj._waiters[wb] = None
                    ts.wait = wb
                    listener = ts.block_listener
                    if listener is not None:
                        listener.thread_blocked(ts)
        if result is None:
            assert wb is not None
            deadline = None if timeout is None else monotonic() + timeout
            result = block(ts, wb, deadline, listener)
    except BaseException:
        if wb is not None:
            abandon_wait(ts, wb, listener)
        raise
    return _finish(ts, result)


def wait_for_one(obj: DispatcherObject, timeout: float | None, alertable: bool) -> int:
    """WaitForSingleObjectEx on a validated object: the hot path of ``wait_for_objects``.

    Pure-Python hot shape (docs/design.md "The pure event ping-pong"): the thread's state read
    from the thread-local without a call, the wait block built slot by slot (as
    ``WaitBlock.__init__``), :func:`_finish` called only when it has something to run."""
    try:
        ts: ThreadState = _tls.ts
    except AttributeError:
        ts = current_thread_state()
    if ts.special_apcs:
        run_special_apcs(ts)
    if ts.terminating:
        check_terminating(ts)
    wb: WaitBlock | None = None
    listener: BlockListener | None = None
    try:  # an exception once ``wb`` is registered unregisters it (abandon_wait)
        with LOCK:
            if obj._is_signaled_for(ts):
                result = _WAIT_ABANDONED_0 if obj._satisfy(ts) else _WAIT_OBJECT_0
            elif alertable and (ts.apcs or ts.special_apcs):
                result = _WAIT_IO_COMPLETION
            elif timeout is not None and timeout <= 0:
                result = _WAIT_TIMEOUT
            else:
                wb = _new_object(WaitBlock)  # WaitBlock(ts, (obj,), False, alertable)
                wb.thread = ts
                wb.objects = (obj,)
                wb.wait_all = False
                wb.alertable = alertable
                wb.detach = wb.result = wb.data = None
                obj._waiters[wb] = None
                ts.wait = wb
                listener = ts.block_listener
                if listener is not None:
                    listener.thread_blocked(ts)
        if wb is not None:
            deadline = None if timeout is None else monotonic() + timeout
            result = block(ts, wb, deadline, listener)
    except BaseException:
        if wb is not None:
            abandon_wait(ts, wb, listener)
        raise
    if result == _WAIT_IO_COMPLETION or ts.special_apcs:
        return _finish(ts, result)
    return result


def sleep(timeout: float | None, alertable: bool) -> int:
    """SleepEx: 0 when the interval elapsed, WAIT_IO_COMPLETION if APCs ran (§2.2).

    ``sleep(0, False)`` yields the processor like Windows' Sleep(0).
    """
    if timeout is not None and timeout <= 0 and not alertable:
        ts = current_thread_state()
        check_terminating(ts)
        if ts.special_apcs:
            run_special_apcs(ts)
        time.sleep(0)  # Sleep(0): give up the rest of the time slice
        return 0
    result = wait_for_objects((), False, timeout, alertable)
    return 0 if result == _WAIT_TIMEOUT else result


def signal_and_wait(
    to_signal: DispatcherObject,
    to_wait: DispatcherObject,
    timeout: float | None,
    alertable: bool,
) -> int:
    """SignalObjectAndWait: signal ``to_signal`` and wait on ``to_wait`` as one operation.

    Raises:
        Win32Error: ERROR_INVALID_HANDLE if ``to_signal`` is not an event, semaphore or mutex;
            ERROR_TOO_MANY_POSTS (semaphore at max) or ERROR_NOT_OWNER (mutex), with no wait
            performed [W:k32/sync.c:test_signalandwait].
    """
    signal = getattr(to_signal, "_signal_locked", None)
    if signal is None:
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"cannot signal {to_signal!r}")
    if not isinstance(to_wait, DispatcherObject):
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{to_wait!r} is not waitable")
    return wait_for_objects((to_wait,), False, timeout, alertable, signal)


def test_alert() -> bool:
    """NtTestAlert: run the caller's pending user APCs now. Returns True iff any ran."""
    ts = current_thread_state()
    run_special_apcs(ts)
    return run_apcs(ts)
