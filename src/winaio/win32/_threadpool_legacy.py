"""Win32 aliases: the legacy thread-pool APIs (QueueUserWorkItem, BindIoCompletionCallback,
RegisterWaitForSingleObject / UnregisterWait(Ex), timer queues).

Each function adapts one core call (``winaio._pool._legacy``) to Win32 conventions (``_base``).
Wait handles, timer queues and timer-queue timers are the core objects (NULL = None or 0).
Completion-event parameters: NULL = do not wait, INVALID_HANDLE_VALUE = wait for the
callbacks, an event handle = set it once they are done. "Callbacks still queued or running"
is FALSE + ERROR_IO_PENDING [W:k32/sync.c:test_timer_queue]
[W:k32/thread.c:test_RegisterWaitForSingleObject].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._io._files import FileObject
from .._kernel._handles import HANDLE_TABLE
from .._kernel._objects import Event
from .._pool import (
    QueueTimer,
    RegisteredWait,
    bind_io_completion_callback,
    default_pool,
    queue_user_work_item,
)
from .._pool import TimerQueue as _TimerQueue
from ..codes import Access, WinError
from ..errors import Win32Error
from ._base import Ref, fail, seconds
from ._threadpool import waitable

__all__ = [
    "WT_EXECUTEDEFAULT",
    "WT_EXECUTEINIOTHREAD",
    "WT_EXECUTEINPERSISTENTIOTHREAD",
    "WT_EXECUTEINPERSISTENTTHREAD",
    "WT_EXECUTEINTIMERTHREAD",
    "WT_EXECUTEINUITHREAD",
    "WT_EXECUTEINWAITTHREAD",
    "WT_EXECUTELONGFUNCTION",
    "WT_EXECUTEONLYONCE",
    "WT_TRANSFER_IMPERSONATION",
    "BindIoCompletionCallback",
    "ChangeTimerQueueTimer",
    "CreateTimerQueue",
    "CreateTimerQueueTimer",
    "DeleteTimerQueue",
    "DeleteTimerQueueEx",
    "DeleteTimerQueueTimer",
    "QueueUserWorkItem",
    "RegisterWaitForSingleObject",
    "UnregisterWait",
    "UnregisterWaitEx",
]

WT_EXECUTEDEFAULT = 0x00000000
WT_EXECUTEINIOTHREAD = 0x00000001
WT_EXECUTEINUITHREAD = 0x00000002
WT_EXECUTEINWAITTHREAD = 0x00000004
WT_EXECUTEONLYONCE = 0x00000008
WT_EXECUTELONGFUNCTION = 0x00000010
WT_EXECUTEINTIMERTHREAD = 0x00000020
WT_EXECUTEINPERSISTENTIOTHREAD = 0x00000040
WT_EXECUTEINPERSISTENTTHREAD = 0x00000080
WT_TRANSFER_IMPERSONATION = 0x00000100

_INVALID_HANDLE_VALUE = -1
_EVENT_MODIFY_STATE = int(Access.EVENT_MODIFY_STATE)
_IO_PENDING = Win32Error(WinError.ERROR_IO_PENDING)


def _completion(handle: Any) -> bool | Event | None:
    """A CompletionEvent parameter -> the core's ``completion`` argument."""
    if not handle:
        return None
    if handle == _INVALID_HANDLE_VALUE:
        return True
    return HANDLE_TABLE.get(handle, Event, _EVENT_MODIFY_STATE, pseudo=False)


def _pending_result(done: bool) -> bool:
    if not done:
        fail(_IO_PENDING)
    return done


def QueueUserWorkItem(Function: Callable[[Any], object], Context: Any, Flags: int) -> bool:
    """[MS:QueueUserWorkItem] -> core ``queue_user_work_item``."""
    try:
        queue_user_work_item(Function, Context, long_function=bool(Flags & WT_EXECUTELONGFUNCTION))
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def BindIoCompletionCallback(
    FileHandle: int, Function: Callable[[int, int, Any], object] | None, Flags: int
) -> bool:
    """[MS:BindIoCompletionCallback] -> core ``bind_io_completion_callback`` (default pool)."""
    try:
        if not FileHandle:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "NULL file handle")  # Vista+
        file = HANDLE_TABLE.get(FileHandle, FileObject, pseudo=False)
        if Function is None:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "no completion function")
        bind_io_completion_callback(file, Function)
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def RegisterWaitForSingleObject(
    phNewWaitObject: Ref[Any],
    hObject: int,
    Callback: Callable[[Any, bool], object],
    Context: Any,
    dwMilliseconds: int,
    dwFlags: int,
) -> bool:
    """[MS:RegisterWaitForSingleObject] -> core ``RegisteredWait`` (default pool).

    The new wait handle is stored before the wait is armed, so the callback can use it.
    """
    try:
        obj = waitable(hObject)
        timeout = seconds(dwMilliseconds)
        wait = RegisteredWait(
            default_pool(), obj, Callback, (Context,), timeout,
            once=bool(dwFlags & WT_EXECUTEONLYONCE),
            in_wait_thread=bool(dwFlags & WT_EXECUTEINWAITTHREAD),
            long_function=bool(dwFlags & WT_EXECUTELONGFUNCTION),
        )  # fmt: skip
        phNewWaitObject.value = wait
        wait.start()
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def UnregisterWaitEx(WaitHandle: RegisteredWait | None, CompletionEvent: Any) -> bool:
    """[MS:UnregisterWaitEx] -> core ``RegisteredWait.unregister``."""
    try:
        if not isinstance(WaitHandle, RegisteredWait):
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{WaitHandle!r} is not a wait")
        done = WaitHandle.unregister(_completion(CompletionEvent))
    except Win32Error as exc:
        fail(exc)
        return False
    return _pending_result(done)


def UnregisterWait(WaitHandle: RegisteredWait | None) -> bool:
    """[MS:UnregisterWait] -> core ``RegisteredWait.unregister`` (does not wait)."""
    return UnregisterWaitEx(WaitHandle, None)


def CreateTimerQueue() -> _TimerQueue | None:
    """[MS:CreateTimerQueue] -> core ``TimerQueue()`` on the default pool."""
    try:
        return _TimerQueue()
    except Win32Error as exc:
        fail(exc)
        return None


def _queue(TimerQueue: Any) -> _TimerQueue:
    if not TimerQueue:
        return _TimerQueue.default()
    if not isinstance(TimerQueue, _TimerQueue):
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{TimerQueue!r} is not a timer queue")
    return TimerQueue


def DeleteTimerQueueEx(TimerQueue: _TimerQueue | None, CompletionEvent: Any) -> bool:
    """[MS:DeleteTimerQueueEx] -> core ``TimerQueue.delete`` (TRUE, as on Vista and later)."""
    try:
        if not isinstance(TimerQueue, _TimerQueue):
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{TimerQueue!r} is not a queue")
        TimerQueue.delete(_completion(CompletionEvent))
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def DeleteTimerQueue(TimerQueue: _TimerQueue | None) -> bool:
    """[MS:DeleteTimerQueue] -> DeleteTimerQueueEx(queue, NULL)."""
    return DeleteTimerQueueEx(TimerQueue, None)


def CreateTimerQueueTimer(
    phNewTimer: Ref[Any],
    TimerQueue: _TimerQueue | None,
    Callback: Callable[[Any, bool], object],
    Parameter: Any,
    DueTime: int,
    Period: int,
    Flags: int,
) -> bool:
    """[MS:CreateTimerQueueTimer] -> core ``TimerQueue.create_timer``.

    The callback gets (Parameter, TRUE); the new timer is stored before it is armed.
    """
    try:
        queue = _queue(TimerQueue)
        timer = queue.create_timer(
            Callback, Parameter, True,
            due=_ms(DueTime, "DueTime"), period=_ms(Period, "Period"),
            in_timer_thread=bool(Flags & WT_EXECUTEINTIMERTHREAD),
            once=bool(Flags & WT_EXECUTEONLYONCE),
            long_function=bool(Flags & WT_EXECUTELONGFUNCTION),
            start=False,
        )  # fmt: skip
        phNewTimer.value = timer
        timer.start()
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def _ms(value: int, what: str) -> float:
    if not isinstance(value, int) or value < 0 or value > 0xFFFFFFFF:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"{what} {value!r} is not a DWORD")
    return value / 1000


def ChangeTimerQueueTimer(
    TimerQueue: _TimerQueue | None, Timer: QueueTimer | None, DueTime: int, Period: int
) -> bool:
    """[MS:ChangeTimerQueueTimer] -> core ``QueueTimer.change``."""
    try:
        if not isinstance(Timer, QueueTimer):
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{Timer!r} is not a timer")
        Timer.change(_ms(DueTime, "DueTime"), _ms(Period, "Period"))
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def DeleteTimerQueueTimer(
    TimerQueue: _TimerQueue | None, Timer: QueueTimer | None, CompletionEvent: Any
) -> bool:
    """[MS:DeleteTimerQueueTimer] -> core ``QueueTimer.delete``."""
    try:
        if not Timer:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "NULL timer")
        if not isinstance(Timer, QueueTimer):
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{Timer!r} is not a timer")
        done = Timer.delete(_completion(CompletionEvent))
    except Win32Error as exc:
        fail(exc)
        return False
    return _pending_result(done)
