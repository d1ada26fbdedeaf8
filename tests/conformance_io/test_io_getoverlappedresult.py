"""Win32 I/O conformance: GetOverlappedResult / GetOverlappedResultEx (behaviours 58-62;
spec §4.3).

Wine: k32/file.c test_overlapped (hand-built OVERLAPPEDs, hFile 0); MS: GetOverlappedResultEx.
"""

from __future__ import annotations

import winaio.win32 as w

SENTINEL = 0xDEADBEEF
STATUS_INVALID_HANDLE = 0xC0000008


def _gor(h: int, ov, wait: bool) -> tuple[bool, int, object]:
    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    ok = w.GetOverlappedResult(h, ov, n, wait)
    return ok, w.GetLastError(), n.value


def test_completed_success_needs_no_handle(io) -> None:
    # spec: win32 #58 [W:k32/file.c:test_overlapped]
    ov = w.OVERLAPPED()
    assert (ov.Internal, ov.InternalHigh, ov.Offset, ov.OffsetHigh, ov.hEvent) == (0, 0, 0, 0, 0)
    ov.Internal = 0
    ov.InternalHigh = 0xABCD
    ok, _err, n = _gor(0, ov, False)
    assert ok is True
    assert n == 0xABCD
    ok, _err, n = _gor(0, ov, True)  # not pending: no wait, no validation of h
    assert ok is True
    assert n == 0xABCD
    assert w.HasOverlappedIoCompleted(ov)


def test_completed_failure_maps_status_and_reports_bytes(io) -> None:
    # spec: win32 #59 [W:k32/file.c:test_overlapped]
    ov = w.OVERLAPPED()
    ov.Internal = STATUS_INVALID_HANDLE
    ov.InternalHigh = 0xABCD
    ok, err, n = _gor(0, ov, False)
    assert ok is False
    assert err == w.ERROR_INVALID_HANDLE
    assert n == 0xABCD
    ok, err, n = _gor(0, ov, True)
    assert (ok, err, n) == (False, w.ERROR_INVALID_HANDLE, 0xABCD)


def test_completed_status_mapping(io) -> None:
    # spec: win32 §1.7 (GetOverlappedResult maps OVERLAPPED.Internal through the table)
    cases = {
        w.STATUS_CANCELLED: w.ERROR_OPERATION_ABORTED,
        w.STATUS_END_OF_FILE: w.ERROR_HANDLE_EOF,
        w.STATUS_PIPE_BROKEN: w.ERROR_BROKEN_PIPE,
        w.STATUS_BUFFER_OVERFLOW: w.ERROR_MORE_DATA,
        0xC000000D: w.ERROR_INVALID_PARAMETER,  # STATUS_INVALID_PARAMETER
        0xC0000225: w.ERROR_NOT_FOUND,  # STATUS_NOT_FOUND
        0xC00000B0: w.ERROR_PIPE_NOT_CONNECTED,  # STATUS_PIPE_DISCONNECTED
        0xC00000B1: w.ERROR_NO_DATA,  # STATUS_PIPE_CLOSING
        0xC0000024: w.ERROR_INVALID_HANDLE,  # STATUS_OBJECT_TYPE_MISMATCH
    }
    for status, error in cases.items():
        ov = w.OVERLAPPED()
        ov.Internal = status
        ov.InternalHigh = 7
        assert _gor(0, ov, False) == (False, error, 7), hex(status)


def test_pending_without_wait_is_incomplete(io) -> None:
    # spec: win32 #60 [W:k32/file.c:test_overlapped]
    ov = w.OVERLAPPED()
    ov.Internal = w.STATUS_PENDING
    ov.InternalHigh = 0xABCD
    ok, err, n = _gor(0, ov, False)
    assert ok is False
    assert err == w.ERROR_IO_INCOMPLETE == 996
    assert n == SENTINEL  # *n untouched
    assert not w.HasOverlappedIoCompleted(ov)


def test_pending_with_signaled_event_is_treated_as_success(io) -> None:
    # spec: win32 #61 [W:k32/file.c:test_overlapped]
    ev = io.event(manual=True, initial=True)
    ov = w.OVERLAPPED(hEvent=ev)
    ov.Internal = w.STATUS_PENDING
    ov.InternalHigh = 0xABCD
    ok, _err, n = _gor(0, ov, True)
    assert ok is True
    assert n == 0xABCD
    assert ov.Internal == w.STATUS_PENDING  # not written back
    assert io.is_signaled(ev)  # a manual event is not consumed


def test_pending_ex_timeouts(io) -> None:
    # spec: win32 #62 [MS:GetOverlappedResultEx]
    server, client = io.pipe()
    ov = io.ov_event()
    buf = bytearray(8)
    assert w.ReadFile(server, buf, 8, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING

    n = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.GetOverlappedResultEx(server, ov, n, 0, False) is False
    assert w.GetLastError() == w.ERROR_IO_INCOMPLETE
    assert n.value == SENTINEL

    w.SetLastError(SENTINEL)
    assert w.GetOverlappedResultEx(server, ov, n, 100, False) is False
    assert w.GetLastError() == w.WAIT_TIMEOUT == 258

    # an APC queued to the caller is not run by a non-alertable call ...
    log: list = []
    assert w.QueueUserAPC(lambda d: log.append(d), w.GetCurrentThread(), 1)
    w.SetLastError(SENTINEL)
    assert w.GetOverlappedResultEx(server, ov, n, 50, False) is False
    assert w.GetLastError() == w.WAIT_TIMEOUT
    assert log == []
    # ... but ends an alertable one
    w.SetLastError(SENTINEL)
    assert w.GetOverlappedResultEx(server, ov, n, 5000, True) is False
    assert w.GetLastError() == w.WAIT_IO_COMPLETION == 192
    assert log == [1]
    assert not w.HasOverlappedIoCompleted(ov)

    io.send_all(client, b"done")
    n = w.Ref(SENTINEL)
    assert w.GetOverlappedResultEx(server, ov, n, 5000, True) is True
    assert n.value == 4
    assert bytes(buf[:4]) == b"done"


def test_pending_ex_alertable_runs_apc_queued_while_waiting(io, testing) -> None:
    # spec: win32 #62 (an APC arriving during the alertable wait ends it)
    server, _client = io.pipe()
    ov = io.ov_event()
    assert w.ReadFile(server, bytearray(8), 8, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    log: list = []
    results: list = []
    ready = io.event()

    def body() -> None:
        n = w.Ref(SENTINEL)
        assert w.SetEvent(ready)
        ok = w.GetOverlappedResultEx(server, ov, n, 5000, True)
        results.append((ok, w.GetLastError(), list(log)))

    t = io.thread(body)
    io.wait_signaled(ready)
    testing.wait_until_blocked(t.tid)
    assert w.QueueUserAPC(lambda d: log.append(d), t.handle, 9)
    t.join()
    assert results == [(False, w.WAIT_IO_COMPLETION, [9])]
    assert w.CancelIoEx(server, ov)
    io.wait_signaled(ov.hEvent)


def test_get_overlapped_result_waits_for_completion(io, testing) -> None:
    # spec: win32 §4.3 step 3 (bWait TRUE blocks until the event is signaled)
    server, client = io.pipe()
    ov = io.ov_event()
    buf = bytearray(8)
    assert w.ReadFile(server, buf, 8, None, ov) is False
    assert w.GetLastError() == w.ERROR_IO_PENDING
    got: list = []

    def body() -> None:
        n = w.Ref(SENTINEL)
        ok = w.GetOverlappedResult(server, ov, n, True)
        got.append((ok, n.value))

    t = io.thread(body)
    testing.wait_until_blocked(t.tid)
    assert got == []
    io.send_all(client, b"12345")
    t.join()
    assert got == [(True, 5)]


def test_pending_wait_on_invalid_handle_fails(io) -> None:
    # spec: win32 §4.3 step 3 (the wait fails: FALSE with the wait's error)
    ov = w.OVERLAPPED(hEvent=0xDEADBEE0)
    ov.Internal = w.STATUS_PENDING
    ok, err, n = _gor(0, ov, True)
    assert (ok, err) == (False, w.ERROR_INVALID_HANDLE)
    assert n == SENTINEL
    ov = w.OVERLAPPED(hEvent=0)  # no event: waits on hFile, here NULL
    ov.Internal = w.STATUS_PENDING
    ok, err, n = _gor(0, ov, True)
    assert (ok, err) == (False, w.ERROR_INVALID_HANDLE)
    n2 = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.GetOverlappedResultEx(0, ov, n2, 100, False) is False
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE
