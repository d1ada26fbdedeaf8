"""Win32 aliases: the *Ex object creators (CreateEventEx & co., handles with the asked access),
SuspendThread and Get/SetThreadPriority, FILETIME and LARGE_INTEGER.

Each function adapts one core call (``winaio._kernel``) to Win32 conventions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from .._kernel._access import MAXIMUM_ALLOWED, map_access
from .._kernel._dispatcher import DispatcherObject
from .._kernel._handles import HANDLE_TABLE, NAMESPACE
from .._kernel._objects import Event, Mutex, Semaphore
from .._kernel._thread_ext import (
    THREAD_MODE_BACKGROUND_BEGIN,
    THREAD_MODE_BACKGROUND_END,
    set_thread_priority,
    suspend_thread,
    thread_priority,
)
from .._kernel._threads import KThread
from .._kernel._timer import WaitableTimer
from ..codes import Access, WinError
from ..errors import Win32Error
from ._base import fail, integer, set_last_error
from ._time import FILETIME, LARGE_INTEGER

__all__ = [
    "CREATE_EVENT_INITIAL_SET",
    "CREATE_EVENT_MANUAL_RESET",
    "CREATE_MUTEX_INITIAL_OWNER",
    "CREATE_WAITABLE_TIMER_HIGH_RESOLUTION",
    "CREATE_WAITABLE_TIMER_MANUAL_RESET",
    "FILETIME",
    "LARGE_INTEGER",
    "MAXIMUM_ALLOWED",
    "THREAD_MODE_BACKGROUND_BEGIN",
    "THREAD_MODE_BACKGROUND_END",
    "THREAD_PRIORITY_ABOVE_NORMAL",
    "THREAD_PRIORITY_BELOW_NORMAL",
    "THREAD_PRIORITY_ERROR_RETURN",
    "THREAD_PRIORITY_HIGHEST",
    "THREAD_PRIORITY_IDLE",
    "THREAD_PRIORITY_LOWEST",
    "THREAD_PRIORITY_NORMAL",
    "THREAD_PRIORITY_TIME_CRITICAL",
    "THREAD_SET_INFORMATION",
    "THREAD_SET_LIMITED_INFORMATION",
    "CreateEventEx",
    "CreateEventExW",
    "CreateMutexEx",
    "CreateMutexExW",
    "CreateSemaphoreEx",
    "CreateSemaphoreExW",
    "CreateWaitableTimerEx",
    "CreateWaitableTimerExW",
    "GetThreadPriority",
    "SetThreadPriority",
    "SuspendThread",
]

CREATE_EVENT_MANUAL_RESET = 0x1
CREATE_EVENT_INITIAL_SET = 0x2
CREATE_MUTEX_INITIAL_OWNER = 0x1
CREATE_WAITABLE_TIMER_MANUAL_RESET = 0x1
CREATE_WAITABLE_TIMER_HIGH_RESOLUTION = 0x2
THREAD_PRIORITY_IDLE = -15
THREAD_PRIORITY_LOWEST = -2
THREAD_PRIORITY_BELOW_NORMAL = -1
THREAD_PRIORITY_NORMAL = 0
THREAD_PRIORITY_ABOVE_NORMAL = 1
THREAD_PRIORITY_HIGHEST = 2
THREAD_PRIORITY_TIME_CRITICAL = 15
THREAD_PRIORITY_ERROR_RETURN = 0x7FFFFFFF
THREAD_SET_INFORMATION = 0x0020
THREAD_SET_LIMITED_INFORMATION = 0x0400
_THREAD_QUERY = int(Access.THREAD_QUERY_INFORMATION | Access.THREAD_QUERY_LIMITED_INFORMATION)
_THREAD_SET = THREAD_SET_INFORMATION | THREAD_SET_LIMITED_INFORMATION
_SUSPEND_RESUME = int(Access.THREAD_SUSPEND_RESUME)

T = TypeVar("T", bound=DispatcherObject)


def _create_ex(
    name: str | None, kind: type[T], factory: Callable[[], T], access: int, type_name: str
) -> int:
    """Create-or-open an object and return a handle with ``access`` (mapped); 0 on failure."""
    try:
        mask = map_access(type_name, access) if access else 0
        if name:
            obj, existed = NAMESPACE.create(name, kind, factory)
        else:
            obj, existed = factory(), False
    except Win32Error as exc:
        fail(exc)
        return 0
    set_last_error(WinError.ERROR_ALREADY_EXISTS if existed else 0)
    return HANDLE_TABLE.insert(obj, mask)


def _flags(flags: int, allowed: int) -> bool:
    if flags & ~allowed:
        fail(Win32Error(WinError.ERROR_INVALID_PARAMETER, f"flags 0x{flags:X}"))
        return False
    return True


def CreateEventEx(
    lpEventAttributes: object, lpName: str | None, dwFlags: int, dwDesiredAccess: int
) -> int:
    """[MS:CreateEventExW] -> core ``Event``; the handle has dwDesiredAccess (generic rights
    mapped), e.g. SYNCHRONIZE only: waits work, SetEvent fails ERROR_ACCESS_DENIED."""
    if not _flags(dwFlags, CREATE_EVENT_MANUAL_RESET | CREATE_EVENT_INITIAL_SET):
        return 0
    manual = bool(dwFlags & CREATE_EVENT_MANUAL_RESET)
    initial = bool(dwFlags & CREATE_EVENT_INITIAL_SET)
    return _create_ex(lpName, Event, lambda: Event(manual, initial), dwDesiredAccess, "Event")


CreateEventExW = CreateEventEx


def CreateMutexEx(
    lpMutexAttributes: object, lpName: str | None, dwFlags: int, dwDesiredAccess: int
) -> int:
    """[MS:CreateMutexExW] -> core ``Mutex`` (CREATE_MUTEX_INITIAL_OWNER: owned by the caller
    when created, not when an existing one is opened)."""
    if not _flags(dwFlags, CREATE_MUTEX_INITIAL_OWNER):
        return 0
    owned = bool(dwFlags & CREATE_MUTEX_INITIAL_OWNER)
    return _create_ex(lpName, Mutex, lambda: Mutex(owned), dwDesiredAccess, "Mutant")


CreateMutexExW = CreateMutexEx


def CreateSemaphoreEx(
    lpSemaphoreAttributes: object,
    lInitialCount: int,
    lMaximumCount: int,
    lpName: str | None,
    dwFlags: int,
    dwDesiredAccess: int,
) -> int:
    """[MS:CreateSemaphoreExW] -> core ``Semaphore`` (dwFlags is reserved: must be 0)."""
    if not _flags(dwFlags, 0):
        return 0
    return _create_ex(
        lpName,
        Semaphore,
        lambda: Semaphore(lInitialCount, lMaximumCount),
        dwDesiredAccess,
        "Semaphore",
    )


CreateSemaphoreExW = CreateSemaphoreEx


def CreateWaitableTimerEx(
    lpTimerAttributes: object, lpTimerName: str | None, dwFlags: int, dwDesiredAccess: int
) -> int:
    """[MS:CreateWaitableTimerExW] -> core ``WaitableTimer`` (HIGH_RESOLUTION accepted: the
    timer thread already has the clock's resolution)."""
    allowed = CREATE_WAITABLE_TIMER_MANUAL_RESET | CREATE_WAITABLE_TIMER_HIGH_RESOLUTION
    if not _flags(dwFlags, allowed):
        return 0
    manual = bool(dwFlags & CREATE_WAITABLE_TIMER_MANUAL_RESET)
    return _create_ex(
        lpTimerName, WaitableTimer, lambda: WaitableTimer(manual), dwDesiredAccess, "Timer"
    )


CreateWaitableTimerExW = CreateWaitableTimerEx


def _thread(handle: int, any_of: int) -> KThread:
    thread = HANDLE_TABLE.get(handle, KThread)
    _, granted = HANDLE_TABLE.resolve(handle)
    if not granted & any_of:
        raise Win32Error(WinError.ERROR_ACCESS_DENIED, f"thread handle lacks 0x{any_of:X}")
    return thread


def SuspendThread(hThread: int) -> int:
    """[MS:SuspendThread] -> core ``suspend_thread``: the previous suspend count, 0xFFFFFFFF on
    failure.

    Deviation: another running thread stops at its next winaio wait (or when its current wait
    ends; an alertable wait then returns WAIT_IO_COMPLETION after the resume); the calling
    thread suspends at once. CPython cannot stop a thread in the middle of Python code.
    """
    try:
        return suspend_thread(_thread(hThread, _SUSPEND_RESUME))
    except Win32Error as exc:
        fail(exc)
        return 0xFFFFFFFF


def GetThreadPriority(hThread: int) -> int:
    """[MS:GetThreadPriority] -> core ``thread_priority``; THREAD_PRIORITY_ERROR_RETURN on
    failure (the handle needs THREAD_QUERY_(LIMITED_)INFORMATION)."""
    try:
        return thread_priority(_thread(hThread, _THREAD_QUERY).state)
    except Win32Error as exc:
        fail(exc)
        return THREAD_PRIORITY_ERROR_RETURN


def SetThreadPriority(hThread: int, nPriority: int) -> bool:
    """[MS:SetThreadPriority] -> core ``set_thread_priority`` (the handle needs
    THREAD_SET_(LIMITED_)INFORMATION).

    Deviation: the priority is recorded and reported by GetThreadPriority, not applied to the
    Linux thread.
    """
    try:
        set_thread_priority(_thread(hThread, _THREAD_SET).state, integer(nPriority, "nPriority"))
    except Win32Error as exc:
        fail(exc)
        return False
    return True
