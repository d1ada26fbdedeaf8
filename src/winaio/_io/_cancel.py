"""Cancelling requests: CancelIo, CancelIoEx, CancelSynchronousIo, and the thread-exit rundown.

Cancellation (spec §7) only *marks* a request and asks the backend (``_files.request_cancel``);
the request then completes through all its channels with STATUS_CANCELLED (or with its real
result if it won the race). CancelIo targets the caller's requests on the file object, CancelIoEx
any thread's (matching one OVERLAPPED or all; nothing matched -> ERROR_NOT_FOUND, and a request
already being cancelled does not match again, #98).

Thread exit (spec §8, [W:ws/afd.c:test_async_thread_termination]): a request issued by the
exiting thread survives iff its file is associated with a port AND it has a completion value
(no ``hEvent|1``) AND it has no event AND it is not an APC request; every other one is cancelled.
Then the exit waits until each of those has completed (the **rundown**, as IoCancelThreadIo
waits for the thread's IRPs before the thread object is signaled [MS:Canceling IRPs]): a
cancel only asks the backend (io_uring may answer -EALREADY while the read runs), and a request
still pending after its thread was seen to end could take data written after that. Invariant:
once a thread object is signaled, none of its non-port requests is pending; one that had
already finished completes with its real result, as on Windows. Bounded by
:data:`RUNDOWN_TIMEOUT`; skipped at interpreter shutdown (no reaper runs then). The hook is
registered when this module is imported, which ``_issue`` (every way a request is registered)
does.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._kernel._dispatcher import ThreadState
from .._kernel._threads import EXIT_CANCEL_IO, add_thread_exit_hook, current_thread_state
from ..codes import WinError
from ..errors import Win32Error
from ._files import _IO_KEY, FileObject, request_cancel

if TYPE_CHECKING:
    from ._ops import Operation

__all__ = [
    "RUNDOWN_TIMEOUT",
    "cancel_io",
    "cancel_io_ex",
    "cancel_synchronous_io",
    "wait_for_rundown",
]

#: The thread's ``ThreadState.extensions`` key of the synchronous request it is blocked in
#: (``_sync.run_sync`` sets it, :func:`cancel_synchronous_io` reads it).
_SYNC_KEY = "sync_op"
#: Thread exit waits this long (seconds) for its cancelled requests to complete before the
#: thread object is signaled anyway (module docstring). Windows waits 5 minutes, then
#: disassociates the IRP from the thread [MS:Canceling IRPs]; a cancel here takes effect in
#: microseconds unless a backend is stuck, and a thread that never ends is worse than that.
RUNDOWN_TIMEOUT = 10.0
_RUNDOWN_FIRST_POLL = 0.00005
_RUNDOWN_LAST_POLL = 0.005
_monotonic = time.monotonic
_sleep = time.sleep


def _check_file(file: object) -> None:
    if not isinstance(file, FileObject):
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{file!r} is not a file")


def cancel_io(file: FileObject) -> None:
    """CancelIo: cancel the calling thread's requests on ``file`` (always succeeds).

    Raises:
        Win32Error: ERROR_INVALID_HANDLE if ``file`` is not a file object.
    """
    _check_file(file)
    ts = current_thread_state()
    for op in file.pending_ops():
        if op.issuer is ts:
            request_cancel(op)


def cancel_io_ex(file: FileObject, overlapped: Any = None) -> None:
    """CancelIoEx: cancel any thread's requests on ``file`` (those using ``overlapped``).

    Raises:
        Win32Error: ERROR_NOT_FOUND if no request was cancelled; ERROR_INVALID_HANDLE if
            ``file`` is not a file object.
    """
    _check_file(file)
    found = False
    for op in file.pending_ops():
        if (overlapped is None or op.overlapped is overlapped) and request_cancel(op):
            found = True
    if not found:
        raise Win32Error(WinError.ERROR_NOT_FOUND)


def cancel_synchronous_io(ts: ThreadState) -> None:
    """CancelSynchronousIo: abort the synchronous request ``ts`` is blocked in.

    Raises:
        Win32Error: ERROR_NOT_FOUND when it is not blocked in synchronous I/O (async requests
            are never affected).
    """
    op = ts.extensions.get(_SYNC_KEY)
    if op is None or not request_cancel(op):
        raise Win32Error(WinError.ERROR_NOT_FOUND)


def _survives_thread_exit(op: Operation) -> bool:
    return op.file.port is not None and not op.skip_port and op.event is None and op.routine is None


def _cancel_thread_io(ts: ThreadState) -> None:
    """Thread-exit hook: the §8 rule, then the rundown wait (module docstring)."""
    ops: Iterable[Operation] = list(ts.extensions.get(_IO_KEY, ()))
    doomed = [op for op in ops if not _survives_thread_exit(op)]
    for op in doomed:
        request_cancel(op)
    if doomed and not sys.is_finalizing():  # at shutdown no reaper runs any more
        wait_for_rundown(doomed, RUNDOWN_TIMEOUT)


def wait_for_rundown(ops: Iterable[Operation], timeout: float) -> bool:
    """Wait until every request of ``ops`` has completed, at most ``timeout`` seconds; True
    if they all did. Never raises (a thread-exit hook).

    Polls ``op.done`` (set under LOCK by the single delivery funnel) with a backoff from
    50 us to 5 ms, as IoCancelThreadIo polls the thread's IRP list (every 100 ms): whoever
    reaps the completion (a ring leader, the ring thread, the thread backend's reactor)
    is another thread, and a cancel normally takes effect within microseconds.
    """
    pending = list(ops)
    deadline = _monotonic() + timeout
    delay = _RUNDOWN_FIRST_POLL
    while True:
        pending = [op for op in pending if not op.done]
        if not pending:
            return True
        remaining = deadline - _monotonic()
        if remaining <= 0:
            return False
        _sleep(min(delay, remaining))
        delay = min(delay * 2, _RUNDOWN_LAST_POLL)


add_thread_exit_hook(_cancel_thread_io, EXIT_CANCEL_IO)  # before a backend's migration
