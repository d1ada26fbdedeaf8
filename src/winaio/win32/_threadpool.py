"""Win32 aliases: thread-pool work, timer, wait and I/O objects and callback instances.

Each function adapts one core call (``winaio._pool``) to Win32 conventions; the argument
conventions (objects as PTP_* pointers, PFILETIME ints, VOID functions raising Win32Error on bad
input, Win32 callback parameter lists) are described in ``_threadpool_env``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._io._files import FileObject
from .._kernel._dispatcher import DispatcherObject
from .._kernel._handles import HANDLE_TABLE
from .._kernel._objects import Event, Mutex, Semaphore
from .._pool import CallbackInstance, PoolIo, PoolTimer, PoolWait, PoolWork
from ..codes import Access
from ..errors import Win32Error
from ._base import fail
from ._threadpool_env import (
    TP_CALLBACK_ENVIRON,
    dword,
    filetime_arg,
    resolve_environment,
    tp_object,
)

__all__ = [
    "CallbackMayRunLong",
    "CancelThreadpoolIo",
    "CloseThreadpoolIo",
    "CloseThreadpoolTimer",
    "CloseThreadpoolWait",
    "CloseThreadpoolWork",
    "CreateThreadpoolIo",
    "CreateThreadpoolTimer",
    "CreateThreadpoolWait",
    "CreateThreadpoolWork",
    "DisassociateCurrentThreadFromCallback",
    "IsThreadpoolTimerSet",
    "ReleaseMutexWhenCallbackReturns",
    "ReleaseSemaphoreWhenCallbackReturns",
    "SetEventWhenCallbackReturns",
    "SetThreadpoolTimer",
    "SetThreadpoolTimerEx",
    "SetThreadpoolWait",
    "SetThreadpoolWaitEx",
    "StartThreadpoolIo",
    "SubmitThreadpoolWork",
    "TrySubmitThreadpoolCallback",
    "WaitForThreadpoolIoCallbacks",
    "WaitForThreadpoolTimerCallbacks",
    "WaitForThreadpoolWaitCallbacks",
    "WaitForThreadpoolWorkCallbacks",
]

_SYNCHRONIZE = int(Access.SYNCHRONIZE)


# ---------------------------------------------------------------------- work


def CreateThreadpoolWork(
    pfnwk: Callable[[CallbackInstance, Any, PoolWork], object],
    pv: Any,
    pcbe: TP_CALLBACK_ENVIRON | None,
) -> PoolWork | None:
    """[MS:CreateThreadpoolWork] -> core ``ThreadPool.create_work``; NULL on failure."""
    try:
        pool, env = resolve_environment(pcbe)
        work = pool.create_work(pfnwk, pv, environment=env, context=pv)
    except Win32Error as exc:
        fail(exc)
        return None
    work._args = (pv, work)
    return work


def SubmitThreadpoolWork(pwk: PoolWork) -> None:
    """[MS:SubmitThreadpoolWork] -> core ``PoolWork.submit``.

    Deviation: a NULL, closed or wrong-type object raises Win32Error (ERROR_INVALID_PARAMETER /
    ERROR_INVALID_HANDLE) instead of an access violation; so do the other VOID thread-pool
    functions.
    """
    tp_object(pwk, PoolWork, "work object").submit()


def WaitForThreadpoolWorkCallbacks(pwk: PoolWork, fCancelPendingCallbacks: bool) -> None:
    """[MS:WaitForThreadpoolWorkCallbacks] -> core ``PoolWork.wait_callbacks``.

    Deviation: called from a callback of the same object it does not wait for that callback
    (Windows deadlocks); the same holds for the timer, wait and I/O variants.
    """
    tp_object(pwk, PoolWork, "work object").wait_callbacks(bool(fCancelPendingCallbacks))


def CloseThreadpoolWork(pwk: PoolWork) -> None:
    """[MS:CloseThreadpoolWork] -> core ``PoolWork.close``."""
    tp_object(pwk, PoolWork, "work object").close()


def TrySubmitThreadpoolCallback(
    pfns: Callable[[CallbackInstance, Any], object], pv: Any, pcbe: TP_CALLBACK_ENVIRON | None
) -> bool:
    """[MS:TrySubmitThreadpoolCallback] -> core ``ThreadPool.submit_callback``."""
    try:
        pool, env = resolve_environment(pcbe)
        pool.submit_callback(pfns, pv, environment=env, context=pv)
    except Win32Error as exc:
        fail(exc)
        return False
    return True


# ---------------------------------------------------------------------- timers


def CreateThreadpoolTimer(
    pfnti: Callable[[CallbackInstance, Any, PoolTimer], object],
    pv: Any,
    pcbe: TP_CALLBACK_ENVIRON | None,
) -> PoolTimer | None:
    """[MS:CreateThreadpoolTimer] -> core ``ThreadPool.create_timer``; NULL on failure."""
    try:
        pool, env = resolve_environment(pcbe)
        timer = pool.create_timer(pfnti, pv, environment=env, context=pv)
    except Win32Error as exc:
        fail(exc)
        return None
    timer._args = (pv, timer)
    return timer


def SetThreadpoolTimerEx(
    pti: PoolTimer, pftDueTime: Any, msPeriod: int, msWindowLength: int
) -> bool:
    """[MS:SetThreadpoolTimerEx] -> core ``PoolTimer.set``: TRUE if it was set before."""
    timer = tp_object(pti, PoolTimer, "timer object")
    period = dword(msPeriod, "msPeriod") / 1000
    window = dword(msWindowLength, "msWindowLength") / 1000
    return timer.set(filetime_arg(pftDueTime), period, window)


def SetThreadpoolTimer(pti: PoolTimer, pftDueTime: Any, msPeriod: int, msWindowLength: int) -> None:
    """[MS:SetThreadpoolTimer] -> core ``PoolTimer.set``."""
    SetThreadpoolTimerEx(pti, pftDueTime, msPeriod, msWindowLength)


def IsThreadpoolTimerSet(pti: PoolTimer) -> bool:
    """[MS:IsThreadpoolTimerSet] -> core ``PoolTimer.is_set``."""
    return tp_object(pti, PoolTimer, "timer object").is_set


def WaitForThreadpoolTimerCallbacks(pti: PoolTimer, fCancelPendingCallbacks: bool) -> None:
    """[MS:WaitForThreadpoolTimerCallbacks] -> core ``PoolTimer.wait_callbacks``."""
    tp_object(pti, PoolTimer, "timer object").wait_callbacks(bool(fCancelPendingCallbacks))


def CloseThreadpoolTimer(pti: PoolTimer) -> None:
    """[MS:CloseThreadpoolTimer] -> core ``PoolTimer.close``."""
    tp_object(pti, PoolTimer, "timer object").close()


# ---------------------------------------------------------------------- waits


def CreateThreadpoolWait(
    pfnwa: Callable[[CallbackInstance, Any, PoolWait, int], object],
    pv: Any,
    pcbe: TP_CALLBACK_ENVIRON | None,
) -> PoolWait | None:
    """[MS:CreateThreadpoolWait] -> core ``ThreadPool.create_wait``; NULL on failure."""
    try:
        pool, env = resolve_environment(pcbe)
        wait = pool.create_wait(pfnwa, pv, environment=env, context=pv)
    except Win32Error as exc:
        fail(exc)
        return None
    wait._args = (pv, wait)
    wait._raw_results = True
    return wait


def waitable(handle: Any) -> DispatcherObject:
    """A handle to wait on (SYNCHRONIZE needed; INVALID_HANDLE_VALUE = the process)."""
    return HANDLE_TABLE.get(handle, DispatcherObject, _SYNCHRONIZE)


def SetThreadpoolWaitEx(pwa: PoolWait, h: Any, pftTimeout: Any, Reserved: Any = None) -> bool:
    """[MS:SetThreadpoolWaitEx] -> core ``PoolWait.set``: TRUE if it was armed before."""
    wait = tp_object(pwa, PoolWait, "wait object")
    if not h:
        return wait.set(None)
    return wait.set(waitable(h), filetime_arg(pftTimeout))


def SetThreadpoolWait(pwa: PoolWait, h: Any, pftTimeout: Any) -> None:
    """[MS:SetThreadpoolWait] -> core ``PoolWait.set``.

    Deviation: a mutex handle (documented as unsupported) raises Win32Error
    ERROR_INVALID_PARAMETER at once; a satisfied wait never blocks a thread (the signalling
    thread queues the callback), so there is no 63-handles-per-wait-thread limit.
    """
    SetThreadpoolWaitEx(pwa, h, pftTimeout)


def WaitForThreadpoolWaitCallbacks(pwa: PoolWait, fCancelPendingCallbacks: bool) -> None:
    """[MS:WaitForThreadpoolWaitCallbacks] -> core ``PoolWait.wait_callbacks``."""
    tp_object(pwa, PoolWait, "wait object").wait_callbacks(bool(fCancelPendingCallbacks))


def CloseThreadpoolWait(pwa: PoolWait) -> None:
    """[MS:CloseThreadpoolWait] -> core ``PoolWait.close``."""
    tp_object(pwa, PoolWait, "wait object").close()


# ---------------------------------------------------------------------- I/O


def CreateThreadpoolIo(
    fl: int,
    pfnio: Callable[[CallbackInstance, Any, Any, int, int, PoolIo], object],
    pv: Any,
    pcbe: TP_CALLBACK_ENVIRON | None,
) -> PoolIo | None:
    """[MS:CreateThreadpoolIo] -> core ``ThreadPool.create_io``; NULL on failure."""
    try:
        file = HANDLE_TABLE.get(fl, FileObject, pseudo=False)
        pool, env = resolve_environment(pcbe)
        io = pool.create_io(file, pfnio, pv, environment=env, context=pv)
    except Win32Error as exc:
        fail(exc)
        return None
    io._tail = (io,)
    return io


def StartThreadpoolIo(pio: PoolIo) -> None:
    """[MS:StartThreadpoolIo] -> core ``PoolIo.start``."""
    tp_object(pio, PoolIo, "I/O object").start()


def CancelThreadpoolIo(pio: PoolIo) -> None:
    """[MS:CancelThreadpoolIo] -> core ``PoolIo.cancel``."""
    tp_object(pio, PoolIo, "I/O object").cancel()


def WaitForThreadpoolIoCallbacks(pio: PoolIo, fCancelPendingCallbacks: bool) -> None:
    """[MS:WaitForThreadpoolIoCallbacks] -> core ``PoolIo.wait_callbacks``."""
    tp_object(pio, PoolIo, "I/O object").wait_callbacks(bool(fCancelPendingCallbacks))


def CloseThreadpoolIo(pio: PoolIo) -> None:
    """[MS:CloseThreadpoolIo] -> core ``PoolIo.close``."""
    tp_object(pio, PoolIo, "I/O object").close()


# ---------------------------------------------------------------------- callback instances


def CallbackMayRunLong(pci: CallbackInstance) -> bool:
    """[MS:CallbackMayRunLong] -> core ``CallbackInstance.may_run_long``.

    Deviation: the thread also stops counting against the pool port's concurrency value for the
    rest of the callback - CPython cannot see blocking outside winaio waits, so this is how a long
    callback lets the next one run.
    """
    return tp_object(pci, CallbackInstance, "callback instance").may_run_long()


def DisassociateCurrentThreadFromCallback(pci: CallbackInstance) -> None:
    """[MS:DisassociateCurrentThreadFromCallback] -> core ``CallbackInstance.disassociate``."""
    tp_object(pci, CallbackInstance, "callback instance").disassociate()


def SetEventWhenCallbackReturns(pci: CallbackInstance, evt: int) -> None:
    """[MS:SetEventWhenCallbackReturns] -> core ``CallbackInstance.set_event_on_return``."""
    instance = tp_object(pci, CallbackInstance, "callback instance")
    instance.set_event_on_return(HANDLE_TABLE.get(evt, Event, pseudo=False))


def ReleaseSemaphoreWhenCallbackReturns(pci: CallbackInstance, sem: int, crel: int) -> None:
    """[MS:ReleaseSemaphoreWhenCallbackReturns] -> core ``release_semaphore_on_return``."""
    instance = tp_object(pci, CallbackInstance, "callback instance")
    instance.release_semaphore_on_return(HANDLE_TABLE.get(sem, Semaphore, pseudo=False), crel)


def ReleaseMutexWhenCallbackReturns(pci: CallbackInstance, mut: int) -> None:
    """[MS:ReleaseMutexWhenCallbackReturns] -> core ``CallbackInstance.release_mutex_on_return``."""
    instance = tp_object(pci, CallbackInstance, "callback instance")
    instance.release_mutex_on_return(HANDLE_TABLE.get(mut, Mutex, pseudo=False))
