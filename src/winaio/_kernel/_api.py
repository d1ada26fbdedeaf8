"""The Pythonic face of the kernel layer: waits, sleeps, APCs and threads in seconds and exceptions.

Everything here is a thin adapter over ``_wait``/``_apc``/``_threads``; the Win32 alias layer
(``winaio.win32``) adapts the same internals to milliseconds and BOOL + GetLastError.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NoReturn

from ..codes import WaitCode, WinError
from ..errors import Win32Error
from . import _apc, _wait
from ._dispatcher import DispatcherObject
from ._threads import ExitThreadRequest, KThread, current_thread_state, start_thread

__all__ = [
    "WaitResult",
    "WaitStatus",
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


class WaitStatus(enum.Enum):
    """Why a wait returned."""

    SIGNALED = "signaled"
    ABANDONED = "abandoned"
    TIMEOUT = "timeout"
    IO_COMPLETION = "io_completion"


@dataclass(frozen=True, slots=True)
class WaitResult:
    """The outcome of a wait.

    Attributes:
        code: the Win32 return value (WAIT_OBJECT_0 + i, WAIT_ABANDONED_0 + i, WAIT_TIMEOUT,
            WAIT_IO_COMPLETION).
    """

    code: int

    @property
    def status(self) -> WaitStatus:
        """SIGNALED, ABANDONED (the owner died holding the mutex), TIMEOUT or IO_COMPLETION."""
        code = self.code
        if code < WaitCode.WAIT_ABANDONED_0:
            return WaitStatus.SIGNALED
        if code < WaitCode.WAIT_IO_COMPLETION:
            return WaitStatus.ABANDONED
        if code == WaitCode.WAIT_IO_COMPLETION:
            return WaitStatus.IO_COMPLETION
        return WaitStatus.TIMEOUT

    @property
    def index(self) -> int | None:
        """Index of the object that satisfied a wait-any (0 for wait-all); None otherwise."""
        code = self.code
        if code < WaitCode.WAIT_ABANDONED_0:
            return code
        if code < WaitCode.WAIT_IO_COMPLETION:
            return code - WaitCode.WAIT_ABANDONED_0
        return None

    @property
    def signaled(self) -> bool:
        """True when the wait was satisfied (including by an abandoned mutex)."""
        return self.code < WaitCode.WAIT_IO_COMPLETION

    @property
    def abandoned(self) -> bool:
        """True when the wait acquired an abandoned mutex."""
        return WaitCode.WAIT_ABANDONED_0 <= self.code < WaitCode.WAIT_IO_COMPLETION

    @property
    def timed_out(self) -> bool:
        """True when the timeout elapsed first."""
        return self.code == WaitCode.WAIT_TIMEOUT

    @property
    def io_completion(self) -> bool:
        """True when an alertable wait returned because APCs ran."""
        return self.code == WaitCode.WAIT_IO_COMPLETION


_RESULTS: dict[int, WaitResult] = {}
_wait_for_one = _wait.wait_for_one


def _result(code: int) -> WaitResult:
    result = _RESULTS.get(code)
    if result is None:
        result = _RESULTS[code] = WaitResult(code)
    return result


def _timeout(timeout: float | None) -> float | None:
    if timeout is not None and timeout < 0:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"negative timeout {timeout}")
    return timeout


def wait(
    obj: DispatcherObject, timeout: float | None = None, *, alertable: bool = False
) -> WaitResult:
    """WaitForSingleObjectEx.

    Args:
        obj: any waitable kernel object (event, semaphore, mutex, timer, thread...).
        timeout: seconds; None waits forever; 0 polls.
        alertable: run queued user APCs (returning ``io_completion``) if the object is not
            already signaled.
    """
    if not isinstance(obj, DispatcherObject):
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{obj!r} is not waitable")
    if timeout is not None and timeout < 0:
        _timeout(timeout)  # raises ERROR_INVALID_PARAMETER
    code = _wait_for_one(obj, timeout, alertable)
    result = _RESULTS.get(code)  # the common codes are cached: no call on the hot path
    return result if result is not None else _result(code)


def wait_any(
    objects: Iterable[DispatcherObject], timeout: float | None = None, *, alertable: bool = False
) -> WaitResult:
    """WaitForMultipleObjectsEx(bWaitAll=FALSE): the first signaled object in order wins."""
    objs = tuple(objects)
    _wait.validate_objects(objs)
    return _result(_wait.wait_for_objects(objs, False, _timeout(timeout), alertable))


def wait_all(
    objects: Iterable[DispatcherObject], timeout: float | None = None, *, alertable: bool = False
) -> WaitResult:
    """WaitForMultipleObjectsEx(bWaitAll=TRUE): all at one instant, acquired atomically."""
    objs = tuple(objects)
    _wait.validate_objects(objs)
    return _result(_wait.wait_for_objects(objs, True, _timeout(timeout), alertable))


def signal_and_wait(
    to_signal: DispatcherObject,
    to_wait: DispatcherObject,
    timeout: float | None = None,
    *,
    alertable: bool = False,
) -> WaitResult:
    """SignalObjectAndWait: signal an event/semaphore/mutex and wait on another, atomically."""
    return _result(_wait.signal_and_wait(to_signal, to_wait, _timeout(timeout), alertable))


def sleep(seconds: float | None, *, alertable: bool = False) -> bool:
    """SleepEx. Returns True iff it returned early because APCs ran (WAIT_IO_COMPLETION)."""
    return _wait.sleep(_timeout(seconds), alertable) == WaitCode.WAIT_IO_COMPLETION


def test_alert() -> bool:
    """NtTestAlert: run the calling thread's queued APCs now. Returns True iff any ran."""
    return _wait.test_alert()


def current_thread() -> KThread:
    """The calling thread's waitable thread object."""
    thread = current_thread_state().thread
    assert thread is not None
    return thread


def queue_apc(thread: KThread, fn: Callable[..., Any], *args: Any) -> None:
    """QueueUserAPC: run ``fn(*args)`` in ``thread`` at its next alertable wait.

    Raises:
        Win32Error: ERROR_GEN_FAILURE if the thread has terminated.
    """
    _apc.queue_user_apc(thread.state, fn, args)


def queue_special_apc(thread: KThread, fn: Callable[..., Any], *args: Any) -> None:
    """QueueUserAPC2(QUEUE_USER_APC_FLAGS_SPECIAL_USER_APC); see ``_apc`` for the deviation."""
    _apc.queue_special_apc(thread.state, fn, args, current_thread_state())


def exit_thread(exit_code: int = 0) -> NoReturn:
    """ExitThread: end the calling thread with ``exit_code`` (unwinds like SystemExit)."""
    current_thread_state().exit_code = exit_code
    raise ExitThreadRequest(exit_code)
