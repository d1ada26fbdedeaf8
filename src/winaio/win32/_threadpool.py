"""Win32 aliases: the Vista thread pool (pools, environments, cleanup groups, work, timer, wait
and I/O objects, callback instances).

Each function adapts one core call (``winaio._pool``) to Win32 conventions (see ``_base``):
- PTP_POOL, PTP_WORK, PTP_TIMER, PTP_WAIT, PTP_IO, PTP_CLEANUP_GROUP and PTP_CALLBACK_INSTANCE
  are the core objects themselves (NULL = None or 0); creation failures return None and set
  the last error.
- PFILETIME arguments are ints (or ``Ref`` boxes): negative = relative 100 ns units, 0 = now,
  positive = absolute FILETIME; None is the NULL pointer.
- Functions Windows declares VOID cannot report an error; given a NULL, closed or wrong object
  (or an invalid DWORD) they raise :class:`~winaio.errors.Win32Error` with the Win32 code - the
  analogue of the structured exception Windows raises for a bad pointer.
- Callbacks get the Win32 parameter lists: ``(Instance, Context, Work)``, ``(Instance,
  Context, Timer)``, ``(Instance, Context, Wait, WaitResult)``, ``(Instance, Context,
  Overlapped, IoResult, NumberOfBytesTransferred, Io)``, ``(Instance, Context)``.
"""

from __future__ import annotations

import datetime as _dt
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .._clock import filetime_to_wall_ns
from .._io._files import FileObject
from .._kernel._dispatcher import DispatcherObject
from .._kernel._handles import HANDLE_TABLE
from .._kernel._objects import Event, Mutex, Semaphore
from .._pool import (
    CallbackEnvironment,
    CallbackInstance,
    CallbackPriority,
    CleanupGroup,
    PoolIo,
    PoolTimer,
    PoolWait,
    PoolWork,
    ThreadPool,
    default_pool,
)
from ..codes import Access, WinError
from ..errors import Win32Error
from ._base import Ref, fail

__all__ = [
    "TP_CALLBACK_ENVIRON",
    "TP_CALLBACK_ENVIRON_V3",
    "TP_CALLBACK_PRIORITY_HIGH",
    "TP_CALLBACK_PRIORITY_INVALID",
    "TP_CALLBACK_PRIORITY_LOW",
    "TP_CALLBACK_PRIORITY_NORMAL",
    "TP_POOL_STACK_INFORMATION",
    "CallbackMayRunLong",
    "CancelThreadpoolIo",
    "CloseThreadpool",
    "CloseThreadpoolCleanupGroup",
    "CloseThreadpoolCleanupGroupMembers",
    "CloseThreadpoolIo",
    "CloseThreadpoolTimer",
    "CloseThreadpoolWait",
    "CloseThreadpoolWork",
    "CreateThreadpool",
    "CreateThreadpoolCleanupGroup",
    "CreateThreadpoolIo",
    "CreateThreadpoolTimer",
    "CreateThreadpoolWait",
    "CreateThreadpoolWork",
    "DestroyThreadpoolEnvironment",
    "DisassociateCurrentThreadFromCallback",
    "InitializeThreadpoolEnvironment",
    "IsThreadpoolTimerSet",
    "QueryThreadpoolStackInformation",
    "ReleaseMutexWhenCallbackReturns",
    "ReleaseSemaphoreWhenCallbackReturns",
    "SetEventWhenCallbackReturns",
    "SetThreadpoolCallbackCleanupGroup",
    "SetThreadpoolCallbackLibrary",
    "SetThreadpoolCallbackPersistent",
    "SetThreadpoolCallbackPool",
    "SetThreadpoolCallbackPriority",
    "SetThreadpoolCallbackRunsLong",
    "SetThreadpoolStackInformation",
    "SetThreadpoolThreadMaximum",
    "SetThreadpoolThreadMinimum",
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

T = TypeVar("T")

TP_CALLBACK_PRIORITY_HIGH = 0
TP_CALLBACK_PRIORITY_NORMAL = 1
TP_CALLBACK_PRIORITY_LOW = 2
TP_CALLBACK_PRIORITY_INVALID = 3
_LONG_FUNCTION = 0x1
_PERSISTENT = 0x2
_SYNCHRONIZE = int(Access.SYNCHRONIZE)
_DWORD_MAX = 0xFFFFFFFF
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


class TP_CALLBACK_ENVIRON:  # noqa: N801 - the Win32 structure name
    """[MS:TP_CALLBACK_ENVIRON] (version 3 fields); set it up with the Set* functions."""

    __slots__ = (
        "ActivationContext",
        "CallbackPriority",
        "CleanupGroup",
        "CleanupGroupCancelCallback",
        "FinalizationCallback",
        "Flags",
        "Pool",
        "RaceDll",
        "Size",
        "Version",
    )

    ActivationContext: Any
    CallbackPriority: int
    CleanupGroup: CleanupGroup | None
    CleanupGroupCancelCallback: Callable[[Any, Any], object] | None
    FinalizationCallback: Callable[[CallbackInstance, Any], object] | None
    Flags: int
    Pool: ThreadPool | None
    RaceDll: Any
    Size: int
    Version: int

    def __init__(self) -> None:
        InitializeThreadpoolEnvironment(self)

    @property
    def LongFunction(self) -> bool:
        """u.s.LongFunction."""
        return bool(self.Flags & _LONG_FUNCTION)

    @property
    def Persistent(self) -> bool:
        """u.s.Persistent."""
        return bool(self.Flags & _PERSISTENT)


TP_CALLBACK_ENVIRON_V3 = TP_CALLBACK_ENVIRON


@dataclass
class TP_POOL_STACK_INFORMATION:  # noqa: N801
    """[MS:TP_POOL_STACK_INFORMATION]: recorded and reported; Python threads ignore it."""

    StackReserve: int = 0
    StackCommit: int = 0


_stack_info: weakref.WeakKeyDictionary[ThreadPool, TP_POOL_STACK_INFORMATION] = (
    weakref.WeakKeyDictionary()
)


def _obj(value: Any, kind: type[T], what: str) -> T:
    """A VOID function's object argument: NULL -> ERROR_INVALID_PARAMETER, wrong type ->
    ERROR_INVALID_HANDLE (raised, see the module docstring)."""
    if value is None or (type(value) is int and value == 0):
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"NULL {what}")
    if not isinstance(value, kind):
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{value!r} is not a {what}")
    return value


def _dword(value: int, what: str) -> int:
    if type(value) is not int and not isinstance(value, int):
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"{what} {value!r}")
    if value < 0 or value > _DWORD_MAX:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"{what} {value} is not a DWORD")
    return int(value)


def _filetime(value: Any) -> float | _dt.datetime | None:
    """A PFILETIME due time/timeout -> core seconds (relative) or datetime (absolute)."""
    if isinstance(value, Ref):
        value = value.value
    if value is None:
        return None
    if not isinstance(value, int):
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"FILETIME {value!r}")
    if value <= 0:
        return -value / 1e7
    return _EPOCH + _dt.timedelta(microseconds=filetime_to_wall_ns(value) // 1000)


def _environment(pcbe: Any) -> tuple[ThreadPool, CallbackEnvironment | None]:
    if pcbe is None:
        return default_pool(), None
    if not isinstance(pcbe, TP_CALLBACK_ENVIRON):
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"{pcbe!r} is not an environment")
    if pcbe.Version not in (1, 3):
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"environment version {pcbe.Version}")
    priority = pcbe.CallbackPriority if pcbe.Version == 3 else TP_CALLBACK_PRIORITY_NORMAL
    if priority not in (0, 1, 2):
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"callback priority {priority}")
    pool = pcbe.Pool
    if not pool:
        pool = default_pool()
    elif not isinstance(pool, ThreadPool):
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{pool!r} is not a thread pool")
    group = pcbe.CleanupGroup or None
    if group is not None and not isinstance(group, CleanupGroup):
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{group!r} is not a cleanup group")
    env = CallbackEnvironment(
        cleanup_group=group,
        cancel_callback=pcbe.CleanupGroupCancelCallback,
        finalization_callback=pcbe.FinalizationCallback,
        long_function=bool(pcbe.Flags & _LONG_FUNCTION),
        persistent=bool(pcbe.Flags & _PERSISTENT),
        priority=CallbackPriority(priority),
    )
    return pool, env


# ---------------------------------------------------------------------- pools


def CreateThreadpool(reserved: Any = None) -> ThreadPool | None:
    """[MS:CreateThreadpool] -> core ``ThreadPool()``; NULL on failure."""
    try:
        return ThreadPool()
    except Win32Error as exc:
        fail(exc)
        return None


def CloseThreadpool(ptpp: ThreadPool) -> None:
    """[MS:CloseThreadpool] -> core ``ThreadPool.release`` (closes after its last object)."""
    _obj(ptpp, ThreadPool, "thread pool").release()


def SetThreadpoolThreadMaximum(ptpp: ThreadPool, cthrdMost: int) -> None:
    """[MS:SetThreadpoolThreadMaximum] -> core ``ThreadPool.set_max_threads``."""
    _obj(ptpp, ThreadPool, "thread pool").set_max_threads(_dword(cthrdMost, "cthrdMost"))


def SetThreadpoolThreadMinimum(ptpp: ThreadPool, cthrdMic: int) -> bool:
    """[MS:SetThreadpoolThreadMinimum] -> core ``ThreadPool.set_min_threads``."""
    try:
        _obj(ptpp, ThreadPool, "thread pool").set_min_threads(_dword(cthrdMic, "cthrdMic"))
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def SetThreadpoolStackInformation(ptpp: ThreadPool, ptpsi: TP_POOL_STACK_INFORMATION) -> bool:
    """[MS:SetThreadpoolStackInformation]: recorded and reported back.

    Deviation: worker stacks keep CPython's size (threading.stack_size is process-wide).
    """
    try:
        pool = _obj(ptpp, ThreadPool, "thread pool")
        info = _obj(ptpsi, TP_POOL_STACK_INFORMATION, "stack information")
    except Win32Error as exc:
        fail(exc)
        return False
    _stack_info[pool] = TP_POOL_STACK_INFORMATION(info.StackReserve, info.StackCommit)
    return True


def QueryThreadpoolStackInformation(ptpp: ThreadPool, ptpsi: TP_POOL_STACK_INFORMATION) -> bool:
    """[MS:QueryThreadpoolStackInformation]: what SetThreadpoolStackInformation recorded."""
    try:
        pool = _obj(ptpp, ThreadPool, "thread pool")
        info = _obj(ptpsi, TP_POOL_STACK_INFORMATION, "stack information")
    except Win32Error as exc:
        fail(exc)
        return False
    known = _stack_info.get(pool, TP_POOL_STACK_INFORMATION(0x100000, 0x1000))
    info.StackReserve, info.StackCommit = known.StackReserve, known.StackCommit
    return True


# ---------------------------------------------------------------------- environments


def InitializeThreadpoolEnvironment(pcbe: TP_CALLBACK_ENVIRON) -> None:
    """[MS:InitializeThreadpoolEnvironment]: version 3, default pool, normal priority."""
    pcbe.Version = 3
    pcbe.Pool = None
    pcbe.CleanupGroup = None
    pcbe.CleanupGroupCancelCallback = None
    pcbe.RaceDll = None
    pcbe.ActivationContext = None
    pcbe.FinalizationCallback = None
    pcbe.Flags = 0
    pcbe.CallbackPriority = TP_CALLBACK_PRIORITY_NORMAL
    pcbe.Size = 72


def DestroyThreadpoolEnvironment(pcbe: TP_CALLBACK_ENVIRON) -> None:
    """[MS:DestroyThreadpoolEnvironment]: nothing to free."""
    _obj(pcbe, TP_CALLBACK_ENVIRON, "callback environment")


def SetThreadpoolCallbackPool(pcbe: TP_CALLBACK_ENVIRON, ptpp: ThreadPool | None) -> None:
    """[MS:SetThreadpoolCallbackPool]: the pool of the objects created with ``pcbe``."""
    _obj(pcbe, TP_CALLBACK_ENVIRON, "callback environment").Pool = ptpp


def SetThreadpoolCallbackCleanupGroup(
    pcbe: TP_CALLBACK_ENVIRON,
    ptpcg: CleanupGroup | None,
    pfng: Callable[[Any, Any], object] | None,
) -> None:
    """[MS:SetThreadpoolCallbackCleanupGroup]: the group and its cancel callback."""
    env = _obj(pcbe, TP_CALLBACK_ENVIRON, "callback environment")
    env.CleanupGroup = ptpcg
    env.CleanupGroupCancelCallback = pfng


def SetThreadpoolCallbackRunsLong(pcbe: TP_CALLBACK_ENVIRON) -> None:
    """[MS:SetThreadpoolCallbackRunsLong]: callbacks are long functions."""
    _obj(pcbe, TP_CALLBACK_ENVIRON, "callback environment").Flags |= _LONG_FUNCTION


def SetThreadpoolCallbackPersistent(pcbe: TP_CALLBACK_ENVIRON) -> None:
    """[MS:SetThreadpoolCallbackPersistent]: recorded (every worker can run any callback)."""
    _obj(pcbe, TP_CALLBACK_ENVIRON, "callback environment").Flags |= _PERSISTENT


def SetThreadpoolCallbackPriority(pcbe: TP_CALLBACK_ENVIRON, Priority: int) -> None:
    """[MS:SetThreadpoolCallbackPriority]: TP_CALLBACK_PRIORITY_HIGH/NORMAL/LOW."""
    env = _obj(pcbe, TP_CALLBACK_ENVIRON, "callback environment")
    if Priority not in (0, 1, 2):
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"callback priority {Priority}")
    env.CallbackPriority = Priority


def SetThreadpoolCallbackLibrary(pcbe: TP_CALLBACK_ENVIRON, mod: Any) -> None:
    """[MS:SetThreadpoolCallbackLibrary]: recorded (no DLLs to keep loaded in Python)."""
    _obj(pcbe, TP_CALLBACK_ENVIRON, "callback environment").RaceDll = mod


# ---------------------------------------------------------------------- cleanup groups


def CreateThreadpoolCleanupGroup() -> CleanupGroup:
    """[MS:CreateThreadpoolCleanupGroup] -> core ``CleanupGroup()``."""
    return CleanupGroup()


def CloseThreadpoolCleanupGroupMembers(
    ptpcg: CleanupGroup, fCancelPendingCallbacks: bool, pvCleanupContext: Any
) -> None:
    """[MS:CloseThreadpoolCleanupGroupMembers] -> core ``CleanupGroup.close_members``."""
    group = _obj(ptpcg, CleanupGroup, "cleanup group")
    group.close_members(bool(fCancelPendingCallbacks), pvCleanupContext)


def CloseThreadpoolCleanupGroup(ptpcg: CleanupGroup) -> None:
    """[MS:CloseThreadpoolCleanupGroup] -> core ``CleanupGroup.close``."""
    _obj(ptpcg, CleanupGroup, "cleanup group").close()


# ---------------------------------------------------------------------- work


def CreateThreadpoolWork(
    pfnwk: Callable[[CallbackInstance, Any, PoolWork], object],
    pv: Any,
    pcbe: TP_CALLBACK_ENVIRON | None,
) -> PoolWork | None:
    """[MS:CreateThreadpoolWork] -> core ``ThreadPool.create_work``; NULL on failure."""
    try:
        pool, env = _environment(pcbe)
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
    _obj(pwk, PoolWork, "work object").submit()


def WaitForThreadpoolWorkCallbacks(pwk: PoolWork, fCancelPendingCallbacks: bool) -> None:
    """[MS:WaitForThreadpoolWorkCallbacks] -> core ``PoolWork.wait_callbacks``.

    Deviation: called from a callback of the same object it does not wait for that callback
    (Windows deadlocks); the same holds for the timer, wait and I/O variants.
    """
    _obj(pwk, PoolWork, "work object").wait_callbacks(bool(fCancelPendingCallbacks))


def CloseThreadpoolWork(pwk: PoolWork) -> None:
    """[MS:CloseThreadpoolWork] -> core ``PoolWork.close``."""
    _obj(pwk, PoolWork, "work object").close()


def TrySubmitThreadpoolCallback(
    pfns: Callable[[CallbackInstance, Any], object], pv: Any, pcbe: TP_CALLBACK_ENVIRON | None
) -> bool:
    """[MS:TrySubmitThreadpoolCallback] -> core ``ThreadPool.submit_callback``."""
    try:
        pool, env = _environment(pcbe)
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
        pool, env = _environment(pcbe)
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
    timer = _obj(pti, PoolTimer, "timer object")
    period = _dword(msPeriod, "msPeriod") / 1000
    window = _dword(msWindowLength, "msWindowLength") / 1000
    return timer.set(_filetime(pftDueTime), period, window)


def SetThreadpoolTimer(pti: PoolTimer, pftDueTime: Any, msPeriod: int, msWindowLength: int) -> None:
    """[MS:SetThreadpoolTimer] -> core ``PoolTimer.set``."""
    SetThreadpoolTimerEx(pti, pftDueTime, msPeriod, msWindowLength)


def IsThreadpoolTimerSet(pti: PoolTimer) -> bool:
    """[MS:IsThreadpoolTimerSet] -> core ``PoolTimer.is_set``."""
    return _obj(pti, PoolTimer, "timer object").is_set


def WaitForThreadpoolTimerCallbacks(pti: PoolTimer, fCancelPendingCallbacks: bool) -> None:
    """[MS:WaitForThreadpoolTimerCallbacks] -> core ``PoolTimer.wait_callbacks``."""
    _obj(pti, PoolTimer, "timer object").wait_callbacks(bool(fCancelPendingCallbacks))


def CloseThreadpoolTimer(pti: PoolTimer) -> None:
    """[MS:CloseThreadpoolTimer] -> core ``PoolTimer.close``."""
    _obj(pti, PoolTimer, "timer object").close()


# ---------------------------------------------------------------------- waits


def CreateThreadpoolWait(
    pfnwa: Callable[[CallbackInstance, Any, PoolWait, int], object],
    pv: Any,
    pcbe: TP_CALLBACK_ENVIRON | None,
) -> PoolWait | None:
    """[MS:CreateThreadpoolWait] -> core ``ThreadPool.create_wait``; NULL on failure."""
    try:
        pool, env = _environment(pcbe)
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
    wait = _obj(pwa, PoolWait, "wait object")
    if not h:
        return wait.set(None)
    return wait.set(waitable(h), _filetime(pftTimeout))


def SetThreadpoolWait(pwa: PoolWait, h: Any, pftTimeout: Any) -> None:
    """[MS:SetThreadpoolWait] -> core ``PoolWait.set``.

    Deviation: a mutex handle (documented as unsupported) raises Win32Error
    ERROR_INVALID_PARAMETER at once; a satisfied wait never blocks a thread (the signalling
    thread queues the callback), so there is no 63-handles-per-wait-thread limit.
    """
    SetThreadpoolWaitEx(pwa, h, pftTimeout)


def WaitForThreadpoolWaitCallbacks(pwa: PoolWait, fCancelPendingCallbacks: bool) -> None:
    """[MS:WaitForThreadpoolWaitCallbacks] -> core ``PoolWait.wait_callbacks``."""
    _obj(pwa, PoolWait, "wait object").wait_callbacks(bool(fCancelPendingCallbacks))


def CloseThreadpoolWait(pwa: PoolWait) -> None:
    """[MS:CloseThreadpoolWait] -> core ``PoolWait.close``."""
    _obj(pwa, PoolWait, "wait object").close()


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
        pool, env = _environment(pcbe)
        io = pool.create_io(file, pfnio, pv, environment=env, context=pv)
    except Win32Error as exc:
        fail(exc)
        return None
    io._tail = (io,)
    return io


def StartThreadpoolIo(pio: PoolIo) -> None:
    """[MS:StartThreadpoolIo] -> core ``PoolIo.start``."""
    _obj(pio, PoolIo, "I/O object").start()


def CancelThreadpoolIo(pio: PoolIo) -> None:
    """[MS:CancelThreadpoolIo] -> core ``PoolIo.cancel``."""
    _obj(pio, PoolIo, "I/O object").cancel()


def WaitForThreadpoolIoCallbacks(pio: PoolIo, fCancelPendingCallbacks: bool) -> None:
    """[MS:WaitForThreadpoolIoCallbacks] -> core ``PoolIo.wait_callbacks``."""
    _obj(pio, PoolIo, "I/O object").wait_callbacks(bool(fCancelPendingCallbacks))


def CloseThreadpoolIo(pio: PoolIo) -> None:
    """[MS:CloseThreadpoolIo] -> core ``PoolIo.close``."""
    _obj(pio, PoolIo, "I/O object").close()


# ---------------------------------------------------------------------- callback instances


def CallbackMayRunLong(pci: CallbackInstance) -> bool:
    """[MS:CallbackMayRunLong] -> core ``CallbackInstance.may_run_long``.

    Deviation: the thread also stops counting against the pool port's concurrency value for the
    rest of the callback - CPython cannot see blocking outside winaio waits, so this is how a long
    callback lets the next one run.
    """
    return _obj(pci, CallbackInstance, "callback instance").may_run_long()


def DisassociateCurrentThreadFromCallback(pci: CallbackInstance) -> None:
    """[MS:DisassociateCurrentThreadFromCallback] -> core ``CallbackInstance.disassociate``."""
    _obj(pci, CallbackInstance, "callback instance").disassociate()


def SetEventWhenCallbackReturns(pci: CallbackInstance, evt: int) -> None:
    """[MS:SetEventWhenCallbackReturns] -> core ``CallbackInstance.set_event_on_return``."""
    instance = _obj(pci, CallbackInstance, "callback instance")
    instance.set_event_on_return(HANDLE_TABLE.get(evt, Event, pseudo=False))


def ReleaseSemaphoreWhenCallbackReturns(pci: CallbackInstance, sem: int, crel: int) -> None:
    """[MS:ReleaseSemaphoreWhenCallbackReturns] -> core ``release_semaphore_on_return``."""
    instance = _obj(pci, CallbackInstance, "callback instance")
    instance.release_semaphore_on_return(HANDLE_TABLE.get(sem, Semaphore, pseudo=False), crel)


def ReleaseMutexWhenCallbackReturns(pci: CallbackInstance, mut: int) -> None:
    """[MS:ReleaseMutexWhenCallbackReturns] -> core ``CallbackInstance.release_mutex_on_return``."""
    instance = _obj(pci, CallbackInstance, "callback instance")
    instance.release_mutex_on_return(HANDLE_TABLE.get(mut, Mutex, pseudo=False))
