"""Timeouts that are not DWORDs: the alias layer's failure value and ERROR_INVALID_PARAMETER.

A millisecond argument is a DWORD. ``int(x)`` used to convert it, so a string such as "10"
was parsed, a float truncated, and None or "abc" escaped as a bare TypeError/ValueError
instead of the function's failure value and last-error. Integers (bool and ``__index__``
types included) keep C's DWORD conversion (-1 is INFINITE); everything else is refused, as
ctypes and pywin32 refuse a float for a DWORD.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import pytest

import winaio.win32 as w
from winaio.codes import WinError
from winaio.errors import Win32Error

BAD = ["10", "abc", None, 1.5, float("nan"), b"1", [1]]


def _event() -> int:
    handle = w.CreateEvent(None, True, True, None)
    assert handle
    return handle


@pytest.fixture
def event() -> Any:
    handle = _event()
    yield handle
    w.CloseHandle(handle)


@pytest.fixture
def port() -> Any:
    handle = w.CreateIoCompletionPort(w.INVALID_HANDLE_VALUE, None, 0, 0)
    yield handle
    w.CloseHandle(handle)


def _calls(event: int, port: int) -> dict[str, tuple[Callable[[Any], Any], Any]]:
    """name -> (call with a timeout, the failure value)."""
    cs = w.CRITICAL_SECTION()
    w.InitializeCriticalSection(cs)
    srw = w.SRWLOCK()
    w.InitializeSRWLock(srw)
    cv = w.CONDITION_VARIABLE()
    w.InitializeConditionVariable(cv)
    word = ctypes.c_uint32(0)
    other = ctypes.c_uint32(1)

    def sleep_cs(ms: Any) -> Any:
        w.EnterCriticalSection(cs)
        try:
            return w.SleepConditionVariableCS(cv, cs, ms)
        finally:
            w.LeaveCriticalSection(cs)

    def sleep_srw(ms: Any) -> Any:
        w.AcquireSRWLockExclusive(srw)
        try:
            return w.SleepConditionVariableSRW(cv, srw, ms, 0)
        finally:
            w.ReleaseSRWLockExclusive(srw)

    failed = w.WAIT_FAILED
    return {
        "WaitForSingleObject": (lambda ms: w.WaitForSingleObject(event, ms), failed),
        "WaitForSingleObjectEx": (lambda ms: w.WaitForSingleObjectEx(event, ms, True), failed),
        "WaitForMultipleObjects": (
            lambda ms: w.WaitForMultipleObjects(1, [event], False, ms),
            failed,
        ),
        "WaitForMultipleObjectsEx": (
            lambda ms: w.WaitForMultipleObjectsEx(1, [event], True, ms, True),
            failed,
        ),
        "SignalObjectAndWait": (lambda ms: w.SignalObjectAndWait(event, event, ms, False), failed),
        "GetQueuedCompletionStatus": (
            lambda ms: w.GetQueuedCompletionStatus(port, w.Ref(0), w.Ref(0), w.Ref(None), ms),
            False,
        ),
        "GetQueuedCompletionStatusEx": (
            lambda ms: w.GetQueuedCompletionStatusEx(
                port, [w.OVERLAPPED_ENTRY()], 1, w.Ref(0), ms, False
            ),
            False,
        ),
        "GetOverlappedResultEx": (
            lambda ms: w.GetOverlappedResultEx(event, w.OVERLAPPED(), w.Ref(0), ms, False),
            False,
        ),
        "SleepConditionVariableCS": (sleep_cs, False),
        "SleepConditionVariableSRW": (sleep_srw, False),
        "WaitOnAddress": (lambda ms: w.WaitOnAddress(word, other, 4, ms), False),
        "WaitNamedPipe": (lambda ms: w.WaitNamedPipe(r"\\.\pipe\winaio-no-such-pipe", ms), False),
    }


NAMES = sorted(_calls(0, 0))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", BAD, ids=repr)
def test_a_timeout_that_is_not_a_dword_fails_with_invalid_parameter(
    name: str, bad: Any, event: int, port: int
) -> None:
    call, failure = _calls(event, port)[name]
    w.SetLastError(0)
    assert call(bad) == failure
    assert w.GetLastError() == WinError.ERROR_INVALID_PARAMETER


@pytest.mark.parametrize("name", NAMES)
def test_integer_timeouts_still_convert_like_a_dword(name: str, event: int, port: int) -> None:
    call, failure = _calls(event, port)[name]
    for ms in (0, False, 2**32):  # 2**32 is 0 as a DWORD
        w.SetLastError(0)
        result = call(ms)
        assert result != failure or w.GetLastError() != WinError.ERROR_INVALID_PARAMETER


@pytest.mark.parametrize("bad", BAD, ids=repr)
def test_sleep_refuses_a_timeout_that_is_not_a_dword(bad: Any) -> None:
    # Sleep/SleepEx have no failure value: the typed error carries the status.
    with pytest.raises(Win32Error) as info:
        w.Sleep(bad)
    assert info.value.winerror == WinError.ERROR_INVALID_PARAMETER
    with pytest.raises(Win32Error) as info:
        w.SleepEx(bad, True)
    assert info.value.winerror == WinError.ERROR_INVALID_PARAMETER


def test_wait_on_address_refuses_a_size_that_is_not_an_integer() -> None:
    word = ctypes.c_uint32(0)
    w.SetLastError(0)
    assert w.WaitOnAddress(word, ctypes.c_uint32(1), "4", 0) is False
    assert w.GetLastError() == WinError.ERROR_INVALID_PARAMETER


@pytest.fixture
def pipe() -> Any:
    read, write = w.Ref(0), w.Ref(0)
    assert w.CreatePipe(read, write, None, 0)
    yield read.value
    w.CloseHandle(read.value)
    w.CloseHandle(write.value)


@pytest.mark.parametrize("bad", ["10", "abc", None, 1.5], ids=repr)
def test_other_integer_arguments_refuse_what_is_not_an_integer(
    bad: Any, event: int, pipe: int, tmp_path: Any
) -> None:
    calls: dict[str, Callable[[], Any]] = {
        "FindFirstChangeNotification.dwNotifyFilter": lambda: w.FindFirstChangeNotification(
            str(tmp_path), False, bad
        ),
        "ReadDirectoryChangesW.dwNotifyFilter": lambda: w.ReadDirectoryChangesW(
            event, bytearray(64), 64, False, bad, w.Ref(0), None, None
        ),
        "PeekNamedPipe.nBufferSize": lambda: w.PeekNamedPipe(
            pipe, bytearray(8), bad, w.Ref(0), w.Ref(0), None
        ),
        "SetThreadPriority.nPriority": lambda: w.SetThreadPriority(w.GetCurrentThread(), bad),
        "RegisterWaitForSingleObject.dwMilliseconds": lambda: w.RegisterWaitForSingleObject(
            w.Ref(None), event, lambda context, fired: None, None, bad, 0
        ),
    }
    for name, call in calls.items():
        w.SetLastError(0)
        assert call() in (False, w.INVALID_HANDLE_VALUE), name
        assert w.GetLastError() == WinError.ERROR_INVALID_PARAMETER, name
