"""Win32 aliases: handles, events, semaphores, mutexes, waitable timers and waits.

Each function adapts one core call to Win32 conventions (see ``_base``); the behaviour lives in
``winaio._kernel``. MS Learn page names are given as ``[MS:Name]``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .._clock import filetime_now
from .._io import _kernel_events
from .._kernel import _wait
from .._kernel._access import map_access
from .._kernel._dispatcher import DispatcherObject
from .._kernel._handles import CURRENT_PROCESS, HANDLE_TABLE, NAMESPACE, ProcessObject
from .._kernel._objects import Event, Mutex, Semaphore
from .._kernel._timer import WaitableTimer
from ..codes import Access, WaitCode, WinError
from ..errors import Win32Error
from ._base import Ref, fail, seconds, set_last_error
from ._base import handle_entry as _handle_entry
from ._time import due_time_value, store_filetime

__all__ = [
    "DUPLICATE_CLOSE_SOURCE",
    "DUPLICATE_SAME_ACCESS",
    "CancelWaitableTimer",
    "CloseHandle",
    "CreateEvent",
    "CreateEventW",
    "CreateMutex",
    "CreateMutexW",
    "CreateSemaphore",
    "CreateSemaphoreW",
    "CreateWaitableTimer",
    "CreateWaitableTimerW",
    "DuplicateHandle",
    "GetCurrentProcess",
    "GetSystemTimeAsFileTime",
    "OpenEvent",
    "OpenMutex",
    "OpenSemaphore",
    "OpenWaitableTimer",
    "PulseEvent",
    "ReleaseMutex",
    "ReleaseSemaphore",
    "ResetEvent",
    "SetEvent",
    "SetWaitableTimer",
    "SignalObjectAndWait",
    "Sleep",
    "SleepEx",
    "WaitForMultipleObjects",
    "WaitForMultipleObjectsEx",
    "WaitForSingleObject",
    "WaitForSingleObjectEx",
]

T = TypeVar("T", bound=DispatcherObject)
_WAIT_FAILED = int(WaitCode.WAIT_FAILED)
_SYNCHRONIZE = int(Access.SYNCHRONIZE)
DUPLICATE_CLOSE_SOURCE = 0x00000001
DUPLICATE_SAME_ACCESS = 0x00000002
_EPOCH_1601 = _dt.datetime(1601, 1, 1, tzinfo=_dt.UTC)
_EVENT_MODIFY_STATE = int(Access.EVENT_MODIFY_STATE)
_SEMAPHORE_MODIFY_STATE = int(Access.SEMAPHORE_MODIFY_STATE)
_TIMER_MODIFY_STATE = int(Access.TIMER_MODIFY_STATE)
_INFINITE = 0xFFFFFFFF
_wait_for_one = _wait.wait_for_one


def _create(name: str | None, kind: type[T], factory: Callable[[], T]) -> int:
    """Create-or-open a (possibly named) object and return a new handle; 0 on failure."""
    try:
        if name:
            obj, existed = NAMESPACE.create(name, kind, factory)
        else:
            obj, existed = factory(), False
    except Win32Error as exc:
        fail(exc)
        return 0
    set_last_error(WinError.ERROR_ALREADY_EXISTS if existed else 0)
    return HANDLE_TABLE.insert(obj)


def _open(access: int, name: str | None, kind: type[DispatcherObject]) -> int:
    try:
        obj = NAMESPACE.open(name, kind)
        # Generic rights mapped, unknown or no rights refused [W:k32/sync.c:test_mutex].
        return HANDLE_TABLE.insert(obj, map_access(obj.type_name, access))
    except Win32Error as exc:
        fail(exc)
        return 0


def _waitable(handle: int, pseudo: bool = True) -> DispatcherObject:
    return HANDLE_TABLE.get(handle, DispatcherObject, _SYNCHRONIZE, pseudo=pseudo)


# --------------------------------------------------------------------------- handles


def CloseHandle(hObject: int) -> bool:
    """[MS:CloseHandle] -> core ``HandleTable.close``."""
    try:
        HANDLE_TABLE.close(hObject)
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def DuplicateHandle(
    hSourceProcessHandle: int,
    hSourceHandle: int,
    hTargetProcessHandle: int,
    lpTargetHandle: Ref[int] | None,
    dwDesiredAccess: int,
    bInheritHandle: bool,
    dwOptions: int,
) -> bool:
    """[MS:DuplicateHandle] within the current process -> core ``HandleTable.duplicate``."""
    try:
        for process in (hSourceProcessHandle, hTargetProcessHandle):
            HANDLE_TABLE.get(process, ProcessObject)  # only this process exists here
        access = None if dwOptions & DUPLICATE_SAME_ACCESS else dwDesiredAccess
        new = HANDLE_TABLE.duplicate(
            hSourceHandle, access, bool(dwOptions & DUPLICATE_CLOSE_SOURCE)
        )
    except Win32Error as exc:
        fail(exc)
        return False
    if lpTargetHandle is not None:
        lpTargetHandle.value = new
    return True


def GetCurrentProcess() -> int:
    """[MS:GetCurrentProcess]: the pseudo handle -1."""
    return CURRENT_PROCESS


# --------------------------------------------------------------------------- events


def CreateEvent(
    lpEventAttributes: object, bManualReset: bool, bInitialState: bool, lpName: str | None
) -> int:
    """[MS:CreateEventW] -> core ``Event``."""
    return _create(lpName, Event, lambda: Event(bool(bManualReset), bool(bInitialState)))


CreateEventW = CreateEvent


def OpenEvent(dwDesiredAccess: int, bInheritHandle: bool, lpName: str | None) -> int:
    """[MS:OpenEventW] -> core ``Namespace.open``."""
    return _open(dwDesiredAccess, lpName, Event)


def _event_op(hEvent: int, op: Callable[[Event], object]) -> bool:
    try:
        op(HANDLE_TABLE.get(hEvent, Event, _EVENT_MODIFY_STATE))
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def _SetEvent(hEvent: int) -> bool:
    """[MS:SetEvent] -> core ``Event.set``."""
    # The hot shape inlined (a plain event handle with EVENT_MODIFY_STATE): one dict lookup;
    # anything else (tag bits, bad handles, other types, missing access) takes ``_event_op``.
    try:
        event, granted = _handle_entry(hEvent)
    except TypeError:  # no such handle (None) or not a handle at all (unhashable)
        return _event_op(hEvent, Event.set)
    if type(event) is Event and granted & _EVENT_MODIFY_STATE:
        event.set()
        return True
    return _event_op(hEvent, Event.set)


def _ResetEvent(hEvent: int) -> bool:
    """[MS:ResetEvent] -> core ``Event.reset``."""
    # The same hot shape as SetEvent's, inlined; anything else takes ``_event_op``.
    try:
        event, granted = _handle_entry(hEvent)
    except TypeError:
        return _event_op(hEvent, Event.reset)
    if type(event) is Event and granted & _EVENT_MODIFY_STATE:
        event.reset()
        return True
    return _event_op(hEvent, Event.reset)


#: [MS:SetEvent] / [MS:ResetEvent]: the C accelerator's (``_fastevent.c``) when it was built -
#: the hot shape (a plain handle with EVENT_MODIFY_STATE to an exact Event) straight to the
#: core's ``Event.set`` / reset in C, every other call by the Python function, which stays the
#: reference (``_accel.use(False)`` sends every call to it). Assigned with the waits, below.
SetEvent = _SetEvent
ResetEvent = _ResetEvent


def PulseEvent(hEvent: int) -> bool:
    """[MS:PulseEvent] -> core ``Event.pulse``."""
    return _event_op(hEvent, Event.pulse)


# --------------------------------------------------------------------------- semaphores


def CreateSemaphore(
    lpSemaphoreAttributes: object, lInitialCount: int, lMaximumCount: int, lpName: str | None
) -> int:
    """[MS:CreateSemaphoreW] -> core ``Semaphore``."""
    return _create(lpName, Semaphore, lambda: Semaphore(lInitialCount, lMaximumCount))


CreateSemaphoreW = CreateSemaphore


def OpenSemaphore(dwDesiredAccess: int, bInheritHandle: bool, lpName: str | None) -> int:
    """[MS:OpenSemaphoreW] -> core ``Namespace.open``."""
    return _open(dwDesiredAccess, lpName, Semaphore)


def ReleaseSemaphore(hSemaphore: int, lReleaseCount: int, lpPreviousCount: Ref[int] | None) -> bool:
    """[MS:ReleaseSemaphore] -> core ``Semaphore.release``; *prev is untouched on failure."""
    try:
        sem = HANDLE_TABLE.get(hSemaphore, Semaphore, _SEMAPHORE_MODIFY_STATE)
        previous = sem.release(lReleaseCount)
    except Win32Error as exc:
        fail(exc)
        return False
    if lpPreviousCount is not None:
        lpPreviousCount.value = previous
    return True


# --------------------------------------------------------------------------- mutexes


def CreateMutex(lpMutexAttributes: object, bInitialOwner: bool, lpName: str | None) -> int:
    """[MS:CreateMutexW] -> core ``Mutex``. Opening an existing name does not take ownership."""
    return _create(lpName, Mutex, lambda: Mutex(bool(bInitialOwner)))


CreateMutexW = CreateMutex


def OpenMutex(dwDesiredAccess: int, bInheritHandle: bool, lpName: str | None) -> int:
    """[MS:OpenMutexW] -> core ``Namespace.open``."""
    return _open(dwDesiredAccess, lpName, Mutex)


def ReleaseMutex(hMutex: int) -> bool:
    """[MS:ReleaseMutex] -> core ``Mutex.release``."""
    try:
        HANDLE_TABLE.get(hMutex, Mutex).release()
    except Win32Error as exc:
        fail(exc)
        return False
    return True


# --------------------------------------------------------------------------- waitable timers


def CreateWaitableTimer(
    lpTimerAttributes: object, bManualReset: bool, lpTimerName: str | None
) -> int:
    """[MS:CreateWaitableTimerW] -> core ``WaitableTimer``."""
    return _create(lpTimerName, WaitableTimer, lambda: WaitableTimer(bool(bManualReset)))


CreateWaitableTimerW = CreateWaitableTimer


def OpenWaitableTimer(dwDesiredAccess: int, bInheritHandle: bool, lpTimerName: str | None) -> int:
    """[MS:OpenWaitableTimerW] -> core ``Namespace.open``."""
    return _open(dwDesiredAccess, lpTimerName, WaitableTimer)


def SetWaitableTimer(
    hTimer: int,
    lpDueTime: Any,
    lPeriod: int,
    pfnCompletionRoutine: Callable[[Any, int, int], object] | None,
    lpArgToCompletionRoutine: Any,
    fResume: bool,
) -> bool:
    """[MS:SetWaitableTimer] -> core ``WaitableTimer.set``.

    ``lpDueTime`` is the LARGE_INTEGER value - a ``LARGE_INTEGER``, a ``FILETIME``, a ``Ref``
    or an int: negative = relative in 100 ns units (monotonic), positive = absolute UTC
    FILETIME (follows the wall clock).
    """
    try:
        timer = HANDLE_TABLE.get(hTimer, WaitableTimer, _TIMER_MODIFY_STATE)
        if lPeriod < 0:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"negative period {lPeriod}")
        due = _due(due_time_value(lpDueTime))
        timer.set(due, lPeriod / 1000.0, pfnCompletionRoutine, lpArgToCompletionRoutine, fResume)
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def _due(due: int) -> float | _dt.datetime:
    if due <= 0:
        return -due / 1e7
    return _EPOCH_1601 + _dt.timedelta(microseconds=due // 10)


def CancelWaitableTimer(hTimer: int) -> bool:
    """[MS:CancelWaitableTimer] -> core ``WaitableTimer.cancel``."""
    try:
        HANDLE_TABLE.get(hTimer, WaitableTimer, _TIMER_MODIFY_STATE).cancel()
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def GetSystemTimeAsFileTime(lpSystemTimeAsFileTime: Any = None) -> int:
    """[MS:GetSystemTimeAsFileTime]: fills the FILETIME (or ``Ref``) out-parameter with the
    kernel's wall clock; the 64-bit value is also returned for convenience."""
    now = filetime_now()
    store_filetime(lpSystemTimeAsFileTime, now)
    return now


# --------------------------------------------------------------------------- waits


def _wait_single(hHandle: int, dwMilliseconds: int, bAlertable: bool) -> int:
    """WaitForSingleObject(Ex)'s general path, the reference for every shape: pseudo handles,
    tag bits, bad or closed handles, wrong types, missing SYNCHRONIZE, timeouts not DWORDs."""
    try:
        obj = _waitable(hHandle)  # the handle first: its error wins over the timeout's
        timeout = None if dwMilliseconds == _INFINITE else seconds(dwMilliseconds)
        return _wait_for_one(obj, timeout, bAlertable)
    except Win32Error as exc:
        fail(exc)
        return _WAIT_FAILED


def _WaitForSingleObject(hHandle: int, dwMilliseconds: int) -> int:
    """[MS:WaitForSingleObject] -> core ``wait``."""
    # The hot shape inlined, with no call to the Ex (issue 9: in the ping-pong the signaler's
    # path from SetEvent to its own blocking wait holds the GIL the woken thread wants): a
    # plain handle with SYNCHRONIZE to a waitable object, INFINITE or a DWORD below it. Any
    # other shape takes ``_wait_single`` before anything happened.
    try:
        obj, granted = _handle_entry(hHandle)
    except TypeError:  # no such handle (None), a pseudo handle, or not a handle at all
        return _wait_single(hHandle, dwMilliseconds, False)
    if granted & _SYNCHRONIZE and isinstance(obj, DispatcherObject):
        if dwMilliseconds == _INFINITE:
            timeout = None
        elif type(dwMilliseconds) is int and 0 <= dwMilliseconds < _INFINITE:
            timeout = dwMilliseconds / 1000.0
        else:
            return _wait_single(hHandle, dwMilliseconds, False)
        try:
            return _wait_for_one(obj, timeout, False)
        except Win32Error as exc:
            fail(exc)
            return _WAIT_FAILED
    return _wait_single(hHandle, dwMilliseconds, False)


def _WaitForSingleObjectEx(hHandle: int, dwMilliseconds: int, bAlertable: bool) -> int:
    """[MS:WaitForSingleObjectEx] -> core ``wait``."""
    # The same hot shape as WaitForSingleObject's; every other shape goes to ``_wait_single``.
    try:
        obj, granted = _handle_entry(hHandle)
    except TypeError:
        return _wait_single(hHandle, dwMilliseconds, bAlertable)
    if granted & _SYNCHRONIZE and isinstance(obj, DispatcherObject):
        if dwMilliseconds == _INFINITE:
            timeout = None
        elif type(dwMilliseconds) is int and 0 <= dwMilliseconds < _INFINITE:
            timeout = dwMilliseconds / 1000.0
        else:
            return _wait_single(hHandle, dwMilliseconds, bAlertable)
        try:
            return _wait_for_one(obj, timeout, bAlertable)
        except Win32Error as exc:
            fail(exc)
            return _WAIT_FAILED
    return _wait_single(hHandle, dwMilliseconds, bAlertable)


#: [MS:WaitForSingleObject] / [MS:WaitForSingleObjectEx]: the C accelerator's when it was
#: built (``_fastevent.c``: a plain handle with SYNCHRONIZE to an exact Event, INFINITE or 0 ms,
#: straight to the core's ``wait_for_one`` in C; issue 9's event ping-pong), every other call
#: by the Python function, the reference.
WaitForSingleObject = _WaitForSingleObject
WaitForSingleObjectEx = _WaitForSingleObjectEx
if _kernel_events.c_wait_for_one is not None:
    SetEvent, ResetEvent, WaitForSingleObject, WaitForSingleObjectEx = (
        _kernel_events.fastio.configure_event_win32(
            HANDLE_TABLE._entries, _SetEvent, _ResetEvent, _WaitForSingleObject,
            _WaitForSingleObjectEx, fail, Win32Error, _WAIT_FAILED, _EVENT_MODIFY_STATE,
            _SYNCHRONIZE,
        )
    )  # fmt: skip


def WaitForMultipleObjects(
    nCount: int, lpHandles: Sequence[int], bWaitAll: bool, dwMilliseconds: int
) -> int:
    """[MS:WaitForMultipleObjects] -> core ``wait_any`` / ``wait_all``."""
    return WaitForMultipleObjectsEx(nCount, lpHandles, bWaitAll, dwMilliseconds, False)


def WaitForMultipleObjectsEx(
    nCount: int,
    lpHandles: Sequence[int],
    bWaitAll: bool,
    dwMilliseconds: int,
    bAlertable: bool,
) -> int:
    """[MS:WaitForMultipleObjectsEx] -> core ``wait_any`` / ``wait_all``. Pseudo handles fail."""
    try:
        if nCount <= 0 or nCount > 64 or nCount > len(lpHandles):
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"nCount {nCount}")
        objects = tuple(_waitable(h, pseudo=False) for h in lpHandles[:nCount])
        _wait.validate_objects(objects)
        timeout = seconds(dwMilliseconds)
        return _wait.wait_for_objects(objects, bool(bWaitAll), timeout, bool(bAlertable))
    except Win32Error as exc:
        fail(exc)
        return _WAIT_FAILED


def SignalObjectAndWait(
    hObjectToSignal: int, hObjectToWaitOn: int, dwMilliseconds: int, bAlertable: bool
) -> int:
    """[MS:SignalObjectAndWait] -> core ``signal_and_wait``."""
    try:
        to_signal = HANDLE_TABLE.resolve(hObjectToSignal)[0]
        to_wait = _waitable(hObjectToWaitOn)
        timeout = seconds(dwMilliseconds)
        return _wait.signal_and_wait(to_signal, to_wait, timeout, bool(bAlertable))
    except Win32Error as exc:
        fail(exc)
        return _WAIT_FAILED


def Sleep(dwMilliseconds: int) -> None:
    """[MS:Sleep] -> core ``sleep``. Never changes last-error."""
    _wait.sleep(seconds(dwMilliseconds), False)


def SleepEx(dwMilliseconds: int, bAlertable: bool) -> int:
    """[MS:SleepEx] -> core ``sleep``: 0, or WAIT_IO_COMPLETION if APCs ran."""
    return _wait.sleep(seconds(dwMilliseconds), bool(bAlertable))
