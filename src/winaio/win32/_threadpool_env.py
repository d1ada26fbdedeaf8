"""Win32 aliases: the Vista thread pool - pools, callback environments, cleanup groups, and the
argument conventions shared with ``_threadpool`` (work, timer, wait and I/O objects).

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
from .._pool import (
    CallbackEnvironment,
    CallbackInstance,
    CallbackPriority,
    CleanupGroup,
    ThreadPool,
    default_pool,
)
from ..codes import WinError
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
    "CloseThreadpool",
    "CloseThreadpoolCleanupGroup",
    "CloseThreadpoolCleanupGroupMembers",
    "CreateThreadpool",
    "CreateThreadpoolCleanupGroup",
    "DestroyThreadpoolEnvironment",
    "InitializeThreadpoolEnvironment",
    "QueryThreadpoolStackInformation",
    "SetThreadpoolCallbackCleanupGroup",
    "SetThreadpoolCallbackLibrary",
    "SetThreadpoolCallbackPersistent",
    "SetThreadpoolCallbackPool",
    "SetThreadpoolCallbackPriority",
    "SetThreadpoolCallbackRunsLong",
    "SetThreadpoolStackInformation",
    "SetThreadpoolThreadMaximum",
    "SetThreadpoolThreadMinimum",
]

T = TypeVar("T")

TP_CALLBACK_PRIORITY_HIGH = 0
TP_CALLBACK_PRIORITY_NORMAL = 1
TP_CALLBACK_PRIORITY_LOW = 2
TP_CALLBACK_PRIORITY_INVALID = 3
_LONG_FUNCTION = 0x1
_PERSISTENT = 0x2
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


def tp_object(value: Any, kind: type[T], what: str) -> T:
    """A VOID function's object argument: NULL -> ERROR_INVALID_PARAMETER, wrong type ->
    ERROR_INVALID_HANDLE (raised, see the module docstring)."""
    if value is None or (type(value) is int and value == 0):
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"NULL {what}")
    if not isinstance(value, kind):
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{value!r} is not a {what}")
    return value


def dword(value: int, what: str) -> int:
    if type(value) is not int and not isinstance(value, int):
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"{what} {value!r}")
    if value < 0 or value > _DWORD_MAX:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"{what} {value} is not a DWORD")
    return int(value)


def filetime_arg(value: Any) -> float | _dt.datetime | None:
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


def resolve_environment(pcbe: Any) -> tuple[ThreadPool, CallbackEnvironment | None]:
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
    tp_object(ptpp, ThreadPool, "thread pool").release()


def SetThreadpoolThreadMaximum(ptpp: ThreadPool, cthrdMost: int) -> None:
    """[MS:SetThreadpoolThreadMaximum] -> core ``ThreadPool.set_max_threads``."""
    tp_object(ptpp, ThreadPool, "thread pool").set_max_threads(dword(cthrdMost, "cthrdMost"))


def SetThreadpoolThreadMinimum(ptpp: ThreadPool, cthrdMic: int) -> bool:
    """[MS:SetThreadpoolThreadMinimum] -> core ``ThreadPool.set_min_threads``."""
    try:
        tp_object(ptpp, ThreadPool, "thread pool").set_min_threads(dword(cthrdMic, "cthrdMic"))
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def SetThreadpoolStackInformation(ptpp: ThreadPool, ptpsi: TP_POOL_STACK_INFORMATION) -> bool:
    """[MS:SetThreadpoolStackInformation]: recorded and reported back.

    Deviation: worker stacks keep CPython's size (threading.stack_size is process-wide).
    """
    try:
        pool = tp_object(ptpp, ThreadPool, "thread pool")
        info = tp_object(ptpsi, TP_POOL_STACK_INFORMATION, "stack information")
    except Win32Error as exc:
        fail(exc)
        return False
    _stack_info[pool] = TP_POOL_STACK_INFORMATION(info.StackReserve, info.StackCommit)
    return True


def QueryThreadpoolStackInformation(ptpp: ThreadPool, ptpsi: TP_POOL_STACK_INFORMATION) -> bool:
    """[MS:QueryThreadpoolStackInformation]: what SetThreadpoolStackInformation recorded."""
    try:
        pool = tp_object(ptpp, ThreadPool, "thread pool")
        info = tp_object(ptpsi, TP_POOL_STACK_INFORMATION, "stack information")
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
    tp_object(pcbe, TP_CALLBACK_ENVIRON, "callback environment")


def SetThreadpoolCallbackPool(pcbe: TP_CALLBACK_ENVIRON, ptpp: ThreadPool | None) -> None:
    """[MS:SetThreadpoolCallbackPool]: the pool of the objects created with ``pcbe``."""
    tp_object(pcbe, TP_CALLBACK_ENVIRON, "callback environment").Pool = ptpp


def SetThreadpoolCallbackCleanupGroup(
    pcbe: TP_CALLBACK_ENVIRON,
    ptpcg: CleanupGroup | None,
    pfng: Callable[[Any, Any], object] | None,
) -> None:
    """[MS:SetThreadpoolCallbackCleanupGroup]: the group and its cancel callback."""
    env = tp_object(pcbe, TP_CALLBACK_ENVIRON, "callback environment")
    env.CleanupGroup = ptpcg
    env.CleanupGroupCancelCallback = pfng


def SetThreadpoolCallbackRunsLong(pcbe: TP_CALLBACK_ENVIRON) -> None:
    """[MS:SetThreadpoolCallbackRunsLong]: callbacks are long functions."""
    tp_object(pcbe, TP_CALLBACK_ENVIRON, "callback environment").Flags |= _LONG_FUNCTION


def SetThreadpoolCallbackPersistent(pcbe: TP_CALLBACK_ENVIRON) -> None:
    """[MS:SetThreadpoolCallbackPersistent]: recorded (every worker can run any callback)."""
    tp_object(pcbe, TP_CALLBACK_ENVIRON, "callback environment").Flags |= _PERSISTENT


def SetThreadpoolCallbackPriority(pcbe: TP_CALLBACK_ENVIRON, Priority: int) -> None:
    """[MS:SetThreadpoolCallbackPriority]: TP_CALLBACK_PRIORITY_HIGH/NORMAL/LOW."""
    env = tp_object(pcbe, TP_CALLBACK_ENVIRON, "callback environment")
    if Priority not in (0, 1, 2):
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"callback priority {Priority}")
    env.CallbackPriority = Priority


def SetThreadpoolCallbackLibrary(pcbe: TP_CALLBACK_ENVIRON, mod: Any) -> None:
    """[MS:SetThreadpoolCallbackLibrary]: recorded (no DLLs to keep loaded in Python)."""
    tp_object(pcbe, TP_CALLBACK_ENVIRON, "callback environment").RaceDll = mod


# ---------------------------------------------------------------------- cleanup groups


def CreateThreadpoolCleanupGroup() -> CleanupGroup:
    """[MS:CreateThreadpoolCleanupGroup] -> core ``CleanupGroup()``."""
    return CleanupGroup()


def CloseThreadpoolCleanupGroupMembers(
    ptpcg: CleanupGroup, fCancelPendingCallbacks: bool, pvCleanupContext: Any
) -> None:
    """[MS:CloseThreadpoolCleanupGroupMembers] -> core ``CleanupGroup.close_members``."""
    group = tp_object(ptpcg, CleanupGroup, "cleanup group")
    group.close_members(bool(fCancelPendingCallbacks), pvCleanupContext)


def CloseThreadpoolCleanupGroup(ptpcg: CleanupGroup) -> None:
    """[MS:CloseThreadpoolCleanupGroup] -> core ``CleanupGroup.close``."""
    tp_object(ptpcg, CleanupGroup, "cleanup group").close()
