"""The alias layer's inlined hot shapes (issue 9) must decide nothing themselves: every shape they
do not recognise - a handle with tag bits, a pseudo handle, a closed or foreign handle, a handle
without the access right, something that is not a handle at all - reaches the general path and
gets exactly its result and last error.

[MS:SetEvent] EVENT_MODIFY_STATE, [MS:WaitForSingleObject] SYNCHRONIZE, [MS:QueueUserAPC]
THREAD_SET_CONTEXT, [MS:GetQueuedCompletionStatus], [W:k32/sync.c:test_WaitForSingleObject]
(the low two bits of a handle are ignored).
"""

from __future__ import annotations

import winaio.win32 as w

EVENT_MODIFY_STATE = 0x0002
SYNCHRONIZE = 0x00100000
THREAD_SET_CONTEXT = 0x0010
NOT_A_HANDLE: list[object] = [[], 0x7FFFFFF0, 0, -3]


def _dup(h: int, access: int) -> int:
    out = w.Ref(0)
    proc = w.GetCurrentProcess()
    assert w.DuplicateHandle(proc, h, proc, out, access, False, 0)
    return out.value


def test_set_event_fast_path_falls_back_for_every_other_shape() -> None:
    ev = w.CreateEvent(None, True, False, None)
    try:
        assert w.SetEvent(ev | 1)  # tag bits are ignored by the general path
        assert w.WaitForSingleObject(ev, 0) == w.WAIT_OBJECT_0
        assert w.ResetEvent(ev)
        sync_only = _dup(ev, SYNCHRONIZE)
        w.SetLastError(0)
        assert not w.SetEvent(sync_only)
        assert w.GetLastError() == w.ERROR_ACCESS_DENIED
        assert w.WaitForSingleObject(ev, 0) == w.WAIT_TIMEOUT  # nothing happened
        sem = w.CreateSemaphore(None, 0, 1, None)
        assert not w.SetEvent(sem)
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE
        for bad in NOT_A_HANDLE:
            w.SetLastError(0)
            assert not w.SetEvent(bad)  # type: ignore[arg-type]
            assert w.GetLastError() == w.ERROR_INVALID_HANDLE
        for h in (sync_only, sem):
            assert w.CloseHandle(h)
    finally:
        assert w.CloseHandle(ev)


def test_wait_fast_path_falls_back_for_every_other_shape() -> None:
    ev = w.CreateEvent(None, True, True, None)
    try:
        assert w.WaitForSingleObject(ev | 2, 0) == w.WAIT_OBJECT_0
        modify_only = _dup(ev, EVENT_MODIFY_STATE)
        assert w.WaitForSingleObject(modify_only, 0) == w.WAIT_FAILED
        assert w.GetLastError() == w.ERROR_ACCESS_DENIED
        assert w.CloseHandle(modify_only)
        # GetCurrentThread()'s pseudo handle: never signaled for the thread itself.
        assert w.WaitForSingleObject(w.GetCurrentThread(), 0) == w.WAIT_TIMEOUT
        for bad in NOT_A_HANDLE:
            assert w.WaitForSingleObject(bad, 0) == w.WAIT_FAILED  # type: ignore[arg-type]
            assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    finally:
        assert w.CloseHandle(ev)


def test_queue_user_apc_fast_path_falls_back_for_every_other_shape() -> None:
    ran: list[object] = []
    assert w.QueueUserAPC(ran.append, w.GetCurrentThread(), 1)
    real = w.OpenThread(THREAD_SET_CONTEXT | SYNCHRONIZE, False, w.GetCurrentThreadId())
    no_context = w.OpenThread(SYNCHRONIZE, False, w.GetCurrentThreadId())
    try:
        assert w.QueueUserAPC(ran.append, real, 2)
        assert w.QueueUserAPC(ran.append, real | 1, 3)
        assert w.QueueUserAPC(ran.append, no_context, 4) == 0
        assert w.GetLastError() == w.ERROR_ACCESS_DENIED
        for bad in NOT_A_HANDLE:
            assert w.QueueUserAPC(ran.append, bad, 5) == 0  # type: ignore[arg-type]
            assert w.GetLastError() == w.ERROR_INVALID_HANDLE
        assert w.SleepEx(0, True) == w.WAIT_IO_COMPLETION
        assert ran == [1, 2, 3]
    finally:
        assert w.CloseHandle(real)
        assert w.CloseHandle(no_context)


def test_gqcs_fast_path_falls_back_for_every_other_shape() -> None:
    port = w.CreateIoCompletionPort(w.INVALID_HANDLE_VALUE, None, 0, 0)
    ev = w.CreateEvent(None, True, False, None)
    try:
        assert w.PostQueuedCompletionStatus(port, 7, 9, None)
        n, key, ov = w.Ref(0), w.Ref(0), w.Ref(object())
        assert w.GetQueuedCompletionStatus(port | 1, n, key, ov, 0)  # tag bits: general path
        assert (n.value, key.value, ov.value) == (7, 9, None)
        entries = [w.OVERLAPPED_ENTRY()]
        removed = w.Ref(5)
        for bad in [ev, *NOT_A_HANDLE]:
            ov.value = object()
            assert not w.GetQueuedCompletionStatus(bad, n, key, ov, 0)  # type: ignore[arg-type]
            assert w.GetLastError() == w.ERROR_INVALID_HANDLE
            assert ov.value is None  # *lpOverlapped = NULL on failure [MS:GQCS]
            removed.value = 5
            assert not w.GetQueuedCompletionStatusEx(bad, entries, 1, removed, 0, False)  # type: ignore[arg-type]
            assert w.GetLastError() == w.ERROR_INVALID_HANDLE
            assert removed.value == 0
        assert not w.GetQueuedCompletionStatusEx(port, entries, 2, removed, 0, False)
        assert w.GetLastError() == w.ERROR_INVALID_PARAMETER  # ulCount > entries
        assert not w.GetQueuedCompletionStatus(port, n, key, ov, 0)
        assert w.GetLastError() == w.WAIT_TIMEOUT
        assert ov.value is None
    finally:
        assert w.CloseHandle(ev)
        assert w.CloseHandle(port)
