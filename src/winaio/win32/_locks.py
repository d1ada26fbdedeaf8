"""Win32 aliases: critical sections, SRW locks, condition variables, one-time initialisation
and WaitOnAddress, over ``winaio._kernel._locks``.

The structures are Python objects passed where C passes their address. Functions Windows
declares ``void`` report misuse by raising the core's ``Win32Error`` (the deviations listed in
``_kernel/_locks.py``); BOOL functions use the last-error convention.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._kernel._locks import ConditionVariable as CoreConditionVariable
from .._kernel._locks import CriticalSection as CoreCriticalSection
from .._kernel._locks import InitOnce as CoreInitOnce
from .._kernel._locks import SRWLock as CoreSRWLock
from .._kernel._locks import wait_on_address, wake_by_address
from .._kernel._threads import current_thread_state
from ..codes import WinError
from ..errors import Win32Error
from ._base import Ref, dword, fail, seconds

__all__ = [
    "CONDITION_VARIABLE",
    "CONDITION_VARIABLE_LOCKMODE_SHARED",
    "CRITICAL_SECTION",
    "CRITICAL_SECTION_NO_DEBUG_INFO",
    "INIT_ONCE",
    "INIT_ONCE_ASYNC",
    "INIT_ONCE_CHECK_ONLY",
    "INIT_ONCE_INIT_FAILED",
    "SRWLOCK",
    "AcquireSRWLockExclusive",
    "AcquireSRWLockShared",
    "DeleteCriticalSection",
    "EnterCriticalSection",
    "InitOnceBeginInitialize",
    "InitOnceComplete",
    "InitOnceExecuteOnce",
    "InitOnceInitialize",
    "InitializeConditionVariable",
    "InitializeCriticalSection",
    "InitializeCriticalSectionAndSpinCount",
    "InitializeCriticalSectionEx",
    "InitializeSRWLock",
    "LeaveCriticalSection",
    "ReleaseSRWLockExclusive",
    "ReleaseSRWLockShared",
    "SetCriticalSectionSpinCount",
    "SleepConditionVariableCS",
    "SleepConditionVariableSRW",
    "TryAcquireSRWLockExclusive",
    "TryAcquireSRWLockShared",
    "TryEnterCriticalSection",
    "WaitOnAddress",
    "WakeAllConditionVariable",
    "WakeByAddressAll",
    "WakeByAddressSingle",
    "WakeConditionVariable",
]

CRITICAL_SECTION_NO_DEBUG_INFO = 0x01000000
_RTL_CS_FLAGS = 0xFF000000
CONDITION_VARIABLE_LOCKMODE_SHARED = 0x1
INIT_ONCE_CHECK_ONLY = 0x1
INIT_ONCE_ASYNC = 0x2
INIT_ONCE_INIT_FAILED = 0x4
_SPIN_MASK = 0x00FFFFFF


class CRITICAL_SECTION:  # noqa: N801 - the Win32 structure name
    """The CRITICAL_SECTION structure [MS:InitializeCriticalSection]; usable after one of the
    Initialize* calls. Its fields read the live state (OwningThread is the owner's thread id)."""

    __slots__ = ("_cs",)

    def __init__(self) -> None:
        self._cs: CoreCriticalSection | None = None

    @property
    def core(self) -> CoreCriticalSection:
        """The initialised core object (ERROR_INVALID_HANDLE before Initialize*)."""
        if self._cs is None:
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, "critical section not initialised")
        return self._cs

    @property
    def LockCount(self) -> int:
        """-1 when free; see ``CriticalSection.lock_count``."""
        return -1 if self._cs is None else self._cs.lock_count

    @property
    def RecursionCount(self) -> int:
        """How many times the owner entered it."""
        return 0 if self._cs is None else self._cs.recursion

    @property
    def OwningThread(self) -> int:
        """The owner's thread id (0 when free)."""
        return 0 if self._cs is None else (self._cs.owner or 0)

    @property
    def SpinCount(self) -> int:
        """The spin count."""
        return 0 if self._cs is None else self._cs.spin_count


class SRWLOCK:
    """The SRWLOCK structure: ready to use without InitializeSRWLock (SRWLOCK_INIT)."""

    __slots__ = ("core",)

    def __init__(self) -> None:
        self.core = CoreSRWLock()


class CONDITION_VARIABLE:  # noqa: N801
    """The CONDITION_VARIABLE structure: ready to use (CONDITION_VARIABLE_INIT)."""

    __slots__ = ("core",)

    def __init__(self) -> None:
        self.core = CoreConditionVariable()


class INIT_ONCE:  # noqa: N801
    """The INIT_ONCE structure: ready to use (INIT_ONCE_STATIC_INIT); ``Ptr`` reads the state
    as Windows encodes it (0, 1, 3 or context | 2)."""

    __slots__ = ("core",)

    def __init__(self) -> None:
        self.core = CoreInitOnce()

    @property
    def Ptr(self) -> Any:
        """The state word (see ``InitOnce.ptr``)."""
        return self.core.ptr


def _spin(count: int) -> int:
    return int(count) & _SPIN_MASK


# ------------------------------------------------------------------------------ critical sections


def InitializeCriticalSection(lpCriticalSection: CRITICAL_SECTION) -> None:
    """[MS:InitializeCriticalSection] -> core ``CriticalSection``."""
    lpCriticalSection._cs = CoreCriticalSection()


def InitializeCriticalSectionAndSpinCount(
    lpCriticalSection: CRITICAL_SECTION, dwSpinCount: int
) -> bool:
    """[MS:InitializeCriticalSectionAndSpinCount] -> core ``CriticalSection(spin_count)``
    (the high byte holds flags, not spins)."""
    lpCriticalSection._cs = CoreCriticalSection(_spin(dwSpinCount))
    return True


def InitializeCriticalSectionEx(
    lpCriticalSection: CRITICAL_SECTION, dwSpinCount: int, Flags: int
) -> bool:
    """[MS:InitializeCriticalSectionEx] -> core ``CriticalSection``; flags outside the RTL
    flag byte fail ERROR_INVALID_PARAMETER."""
    if Flags & ~_RTL_CS_FLAGS:
        fail(Win32Error(WinError.ERROR_INVALID_PARAMETER, f"flags 0x{Flags:X}"))
        return False
    lpCriticalSection._cs = CoreCriticalSection(_spin(dwSpinCount))
    return True


def SetCriticalSectionSpinCount(lpCriticalSection: CRITICAL_SECTION, dwSpinCount: int) -> int:
    """[MS:SetCriticalSectionSpinCount] -> core ``CriticalSection.spin_count``: the previous."""
    cs = lpCriticalSection.core
    previous = cs.spin_count
    cs.spin_count = _spin(dwSpinCount)
    return previous


def EnterCriticalSection(lpCriticalSection: CRITICAL_SECTION) -> None:
    """[MS:EnterCriticalSection] -> core ``CriticalSection.enter`` (recursive, spins, then
    blocks non-alertably)."""
    lpCriticalSection.core.enter()


def TryEnterCriticalSection(lpCriticalSection: CRITICAL_SECTION) -> bool:
    """[MS:TryEnterCriticalSection] -> core ``CriticalSection.try_enter``."""
    return lpCriticalSection.core.try_enter()


def LeaveCriticalSection(lpCriticalSection: CRITICAL_SECTION) -> None:
    """[MS:LeaveCriticalSection] -> core ``CriticalSection.leave``.

    Deviation: leaving a critical section the caller does not own raises ERROR_NOT_OWNER
    (Windows silently corrupts it).
    """
    lpCriticalSection.core.leave()


def DeleteCriticalSection(lpCriticalSection: CRITICAL_SECTION) -> None:
    """[MS:DeleteCriticalSection] -> core ``CriticalSection.delete`` (later use raises
    ERROR_INVALID_HANDLE)."""
    lpCriticalSection.core.delete()


# ------------------------------------------------------------------------------ SRW locks


def InitializeSRWLock(SRWLock: SRWLOCK) -> None:
    """[MS:InitializeSRWLock] -> a fresh core ``SRWLock``."""
    SRWLock.core = CoreSRWLock()


def AcquireSRWLockExclusive(SRWLock: SRWLOCK) -> None:
    """[MS:AcquireSRWLockExclusive] -> core ``SRWLock.acquire(exclusive=True)``.

    Deviation: re-acquiring a lock the thread holds raises ERROR_POSSIBLE_DEADLOCK instead of
    hanging forever.
    """
    SRWLock.core.acquire(True)


def AcquireSRWLockShared(SRWLock: SRWLOCK) -> None:
    """[MS:AcquireSRWLockShared] -> core ``SRWLock.acquire(exclusive=False)``."""
    SRWLock.core.acquire(False)


def TryAcquireSRWLockExclusive(SRWLock: SRWLOCK) -> bool:
    """[MS:TryAcquireSRWLockExclusive] -> core ``SRWLock.try_acquire_exclusive``."""
    return SRWLock.core.try_acquire_exclusive()


def TryAcquireSRWLockShared(SRWLock: SRWLOCK) -> bool:
    """[MS:TryAcquireSRWLockShared] -> core ``SRWLock.try_acquire_shared``."""
    return SRWLock.core.try_acquire_shared()


def ReleaseSRWLockExclusive(SRWLock: SRWLOCK) -> None:
    """[MS:ReleaseSRWLockExclusive] -> core ``SRWLock.release`` (raises ERROR_NOT_OWNER when
    not held exclusively, as Windows raises STATUS_RESOURCE_NOT_OWNED)."""
    SRWLock.core.release(True)


def ReleaseSRWLockShared(SRWLock: SRWLOCK) -> None:
    """[MS:ReleaseSRWLockShared] -> core ``SRWLock.release`` (ERROR_NOT_OWNER as above)."""
    SRWLock.core.release(False)


# ------------------------------------------------------------------------------ condition variables


def InitializeConditionVariable(ConditionVariable: CONDITION_VARIABLE) -> None:
    """[MS:InitializeConditionVariable] -> a fresh core ``ConditionVariable``."""
    ConditionVariable.core = CoreConditionVariable()


def SleepConditionVariableCS(
    ConditionVariable: CONDITION_VARIABLE, CriticalSection: CRITICAL_SECTION, dwMilliseconds: int
) -> bool:
    """[MS:SleepConditionVariableCS] -> core ``ConditionVariable.sleep``: FALSE + ERROR_TIMEOUT
    when the time-out elapsed (the critical section is owned again either way)."""
    try:
        cs = CriticalSection.core
        if cs.owner != current_thread_state().tid:
            raise Win32Error(WinError.ERROR_NOT_OWNER, "the critical section is not owned")
        woken = ConditionVariable.core.sleep(cs.leave, cs.enter, seconds(dwMilliseconds))
    except Win32Error as exc:
        fail(exc)
        return False
    if not woken:
        fail(Win32Error(WinError.ERROR_TIMEOUT))
        return False
    return True


def SleepConditionVariableSRW(
    ConditionVariable: CONDITION_VARIABLE, SRWLock: SRWLOCK, dwMilliseconds: int, Flags: int
) -> bool:
    """[MS:SleepConditionVariableSRW] -> core ``ConditionVariable.sleep``, releasing and
    re-acquiring the lock shared with CONDITION_VARIABLE_LOCKMODE_SHARED, else exclusive."""
    try:
        if Flags & ~CONDITION_VARIABLE_LOCKMODE_SHARED:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"flags 0x{Flags:X}")
        lock = SRWLock.core
        exclusive = not Flags & CONDITION_VARIABLE_LOCKMODE_SHARED
        woken = ConditionVariable.core.sleep(
            lambda: lock.release(exclusive),
            lambda: lock.acquire(exclusive),
            seconds(dwMilliseconds),
        )
    except Win32Error as exc:
        fail(exc)
        return False
    if not woken:
        fail(Win32Error(WinError.ERROR_TIMEOUT))
        return False
    return True


def WakeConditionVariable(ConditionVariable: CONDITION_VARIABLE) -> None:
    """[MS:WakeConditionVariable] -> core ``ConditionVariable.wake``."""
    ConditionVariable.core.wake()


def WakeAllConditionVariable(ConditionVariable: CONDITION_VARIABLE) -> None:
    """[MS:WakeAllConditionVariable] -> core ``ConditionVariable.wake(everyone=True)``."""
    ConditionVariable.core.wake(everyone=True)


# ------------------------------------------------------------------------------ one-time init


def InitOnceInitialize(InitOnce: INIT_ONCE) -> None:
    """[MS:InitOnceInitialize] -> a fresh core ``InitOnce``."""
    InitOnce.core = CoreInitOnce()


def InitOnceExecuteOnce(
    InitOnce: INIT_ONCE,
    InitFn: Callable[[INIT_ONCE, Any, Ref[Any]], bool],
    Parameter: Any,
    Context: Ref[Any] | None,
) -> bool:
    """[MS:InitOnceExecuteOnce] -> core ``InitOnce.execute``: ``InitFn(InitOnce, Parameter,
    Context)`` runs once; FALSE (last-error untouched) when it returns FALSE."""
    box: Ref[Any] = Context if Context is not None else Ref(None)

    def run(_: Any) -> tuple[bool, Any]:
        return bool(InitFn(InitOnce, Parameter, box)), box.value

    try:
        ok, context = InitOnce.core.execute(run)
    except Win32Error as exc:
        fail(exc)
        return False
    if ok and Context is not None:
        Context.value = context
    return ok


def InitOnceBeginInitialize(
    lpInitOnce: INIT_ONCE, dwFlags: int, fPending: Ref[bool], lpContext: Ref[Any] | None
) -> bool:
    """[MS:InitOnceBeginInitialize] -> core ``InitOnce.begin``."""
    try:
        if dwFlags & ~(INIT_ONCE_CHECK_ONLY | INIT_ONCE_ASYNC):
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"flags 0x{dwFlags:X}")
        pending, context = lpInitOnce.core.begin(
            check_only=bool(dwFlags & INIT_ONCE_CHECK_ONLY),
            asynchronous=bool(dwFlags & INIT_ONCE_ASYNC),
        )
    except Win32Error as exc:
        fail(exc)
        return False
    fPending.value = pending
    if not pending and lpContext is not None:
        lpContext.value = context
    return True


def InitOnceComplete(lpInitOnce: INIT_ONCE, dwFlags: int, lpContext: Any) -> bool:
    """[MS:InitOnceComplete] -> core ``InitOnce.complete``."""
    try:
        if dwFlags & ~(INIT_ONCE_ASYNC | INIT_ONCE_INIT_FAILED):
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"flags 0x{dwFlags:X}")
        lpInitOnce.core.complete(
            asynchronous=bool(dwFlags & INIT_ONCE_ASYNC),
            failed=bool(dwFlags & INIT_ONCE_INIT_FAILED),
            context=lpContext,
        )
    except Win32Error as exc:
        fail(exc)
        return False
    return True


# ------------------------------------------------------------------------------ address waits


def WaitOnAddress(Address: Any, CompareAddress: Any, AddressSize: int, dwMilliseconds: int) -> bool:
    """[MS:WaitOnAddress] -> core ``wait_on_address``: ``Address`` is a writable buffer (a
    ctypes object, bytearray, memoryview...); FALSE + ERROR_TIMEOUT on time-out."""
    try:
        woken = wait_on_address(
            Address, CompareAddress, dword(AddressSize, "AddressSize"), seconds(dwMilliseconds)
        )
    except Win32Error as exc:
        fail(exc)
        return False
    if not woken:
        fail(Win32Error(WinError.ERROR_TIMEOUT))
        return False
    return True


def WakeByAddressSingle(Address: Any) -> None:
    """[MS:WakeByAddressSingle] -> core ``wake_by_address``."""
    wake_by_address(Address, False)


def WakeByAddressAll(Address: Any) -> None:
    """[MS:WakeByAddressAll] -> core ``wake_by_address(everyone=True)``."""
    wake_by_address(Address, True)
