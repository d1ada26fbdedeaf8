"""Win32 aliases: threads and asynchronous procedure calls.

Each function adapts one core call to Win32 conventions (see ``_base``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from .._kernel import _api, _wait
from .._kernel._apc import queue_special_apc, queue_user_apc
from .._kernel._handles import CURRENT_THREAD, HANDLE_TABLE
from .._kernel._thread_ext import resume_thread
from .._kernel._threads import STILL_ACTIVE, KThread, current_thread_state, thread_state_by_id
from ..codes import Access, WinError
from ..errors import Win32Error
from ._base import Ref, fail
from ._base import handle_entry as _handle_entry

__all__ = [
    "APC_CALLBACK_DATA",
    "CREATE_SUSPENDED",
    "QUEUE_USER_APC_CALLBACK_DATA_CONTEXT",
    "QUEUE_USER_APC_FLAGS_NONE",
    "QUEUE_USER_APC_FLAGS_SPECIAL_USER_APC",
    "STILL_ACTIVE",
    "CreateThread",
    "ExitThread",
    "GetCurrentProcessId",
    "GetCurrentThread",
    "GetCurrentThreadId",
    "GetExitCodeThread",
    "GetThreadId",
    "NtTestAlert",
    "OpenThread",
    "QueueUserAPC",
    "QueueUserAPC2",
    "ResumeThread",
    "TerminateThread",
]

CREATE_SUSPENDED = 0x00000004
QUEUE_USER_APC_FLAGS_NONE = 0x00000000
QUEUE_USER_APC_FLAGS_SPECIAL_USER_APC = 0x00000001
#: 0x10000 per processthreadsapi.h (win32-async-spec §3 says 2; the SDK header is the source).
QUEUE_USER_APC_CALLBACK_DATA_CONTEXT = 0x00010000
_APC_FLAGS = QUEUE_USER_APC_FLAGS_SPECIAL_USER_APC | QUEUE_USER_APC_CALLBACK_DATA_CONTEXT


@dataclass(slots=True)
class APC_CALLBACK_DATA:  # noqa: N801 - the Win32 structure name
    """What an APC queued with QUEUE_USER_APC_CALLBACK_DATA_CONTEXT receives [MS:QueueUserAPC2].

    ``ContextRecord`` is None: there is no interrupted processor context to show in Python.
    """

    Parameter: Any
    ContextRecord: None = None
    Reserved0: int = 0
    Reserved1: int = 0


_THREAD_QUERY_LIMITED_INFORMATION = int(Access.THREAD_QUERY_LIMITED_INFORMATION)
_THREAD_SET_CONTEXT = int(Access.THREAD_SET_CONTEXT)
_THREAD_SUSPEND_RESUME = int(Access.THREAD_SUSPEND_RESUME)
_THREAD_TERMINATE = int(Access.THREAD_TERMINATE)


def _thread(handle: int, access: int) -> KThread:
    return HANDLE_TABLE.get(handle, KThread, access)


def GetCurrentThread() -> int:
    """[MS:GetCurrentThread]: the pseudo handle -2."""
    return CURRENT_THREAD


def GetCurrentThreadId() -> int:
    """[MS:GetCurrentThreadId]: the OS thread id."""
    return current_thread_state().tid


def GetCurrentProcessId() -> int:
    """[MS:GetCurrentProcessId]."""
    return os.getpid()


def GetThreadId(Thread: int) -> int:
    """[MS:GetThreadId] -> core ``KThread.thread_id``; 0 on failure."""
    try:
        return _thread(Thread, _THREAD_QUERY_LIMITED_INFORMATION).thread_id
    except Win32Error as exc:
        fail(exc)
        return 0


def OpenThread(dwDesiredAccess: int, bInheritHandle: bool, dwThreadId: int) -> int:
    """[MS:OpenThread]: a handle to a live thread by id; 0 + ERROR_INVALID_PARAMETER if none."""
    state = thread_state_by_id(dwThreadId)
    if state is None or state.thread is None:
        fail(Win32Error(WinError.ERROR_INVALID_PARAMETER, f"no thread {dwThreadId}"))
        return 0
    return HANDLE_TABLE.insert(state.thread, dwDesiredAccess)


def CreateThread(
    lpThreadAttributes: object,
    dwStackSize: int,
    lpStartAddress: Callable[[Any], int | None],
    lpParameter: Any,
    dwCreationFlags: int,
    lpThreadId: Ref[int] | None,
) -> int:
    """[MS:CreateThread] -> core ``start_thread``. The routine's return value is the exit code."""
    suspended = bool(dwCreationFlags & CREATE_SUSPENDED)
    thread = _api.start_thread(lpStartAddress, lpParameter, suspended=suspended)
    if lpThreadId is not None:
        lpThreadId.value = thread.thread_id
    return HANDLE_TABLE.insert(thread)


def ResumeThread(hThread: int) -> int:
    """[MS:ResumeThread] -> core ``KThread.resume``: previous count, 0xFFFFFFFF on failure."""
    try:
        return resume_thread(_thread(hThread, _THREAD_SUSPEND_RESUME))
    except Win32Error as exc:
        fail(exc)
        return 0xFFFFFFFF


def ExitThread(dwExitCode: int) -> NoReturn:
    """[MS:ExitThread] -> core ``exit_thread``."""
    _api.exit_thread(dwExitCode)


def TerminateThread(hThread: int, dwExitCode: int) -> bool:
    """[MS:TerminateThread] -> core ``KThread.terminate`` (see its deviation note)."""
    try:
        thread = _thread(hThread, _THREAD_TERMINATE)
    except Win32Error as exc:
        fail(exc)
        return False
    thread.terminate(dwExitCode)
    return True


def GetExitCodeThread(hThread: int, lpExitCode: Ref[int]) -> bool:
    """[MS:GetExitCodeThread] -> core ``KThread.exit_code`` (STILL_ACTIVE while running)."""
    try:
        code = _thread(hThread, _THREAD_QUERY_LIMITED_INFORMATION).exit_code
    except Win32Error as exc:
        fail(exc)
        return False
    lpExitCode.value = STILL_ACTIVE if code is None else code
    return True


def QueueUserAPC(pfnAPC: Callable[[Any], object], hThread: int, dwData: Any) -> int:
    """[MS:QueueUserAPC] -> core ``queue_apc``: nonzero on success, 0 + last-error on failure."""
    try:
        # The hot shapes inlined: GetCurrentThread()'s pseudo handle, or a plain thread handle
        # with THREAD_SET_CONTEXT; anything else takes ``_thread``, which raises the right error.
        if hThread == CURRENT_THREAD:
            target = current_thread_state()
        else:
            try:
                thread, granted = _handle_entry(hThread)
            except TypeError:
                thread, granted = None, 0
            if thread.__class__ is not KThread or not granted & _THREAD_SET_CONTEXT:
                thread = _thread(hThread, _THREAD_SET_CONTEXT)
            target = thread.state
        queue_user_apc(target, pfnAPC, (dwData,))
    except Win32Error as exc:
        fail(exc)
        return 0
    return 1


def QueueUserAPC2(ApcRoutine: Callable[[Any], object], Thread: int, Data: Any, Flags: int) -> bool:
    """[MS:QueueUserAPC2] -> core ``queue_apc`` / ``queue_special_apc``."""
    try:
        if Flags & ~_APC_FLAGS:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"flags 0x{Flags:X}")
        target = _thread(Thread, _THREAD_SET_CONTEXT).state
        if Flags & QUEUE_USER_APC_CALLBACK_DATA_CONTEXT:
            Data = APC_CALLBACK_DATA(Data)
        if Flags & QUEUE_USER_APC_FLAGS_SPECIAL_USER_APC:
            queue_special_apc(target, ApcRoutine, (Data,), current_thread_state())
        else:
            queue_user_apc(target, ApcRoutine, (Data,))
    except Win32Error as exc:
        fail(exc)
        return False
    return True


def NtTestAlert() -> int:
    """[NtTestAlert] -> core ``test_alert``: runs pending user APCs; returns STATUS_SUCCESS."""
    _wait.test_alert()
    return 0
