"""Audit additions to the Win32 acceptance tests (tests/conformance*): the exact case a
behaviour names where the owners' tests stand in another object, and blocking variants.

- #25 is stated with a *file* handle (Wine test_signalandwait); the owners' test uses a timer
  and a thread handle. Files and pipes are waitable here (#56), so they need their own check.
- #29 with the non-alertable calls actually *blocked* when the APC arrives from another thread
  (the owners' I/O variant completes at once): a synchronous ReadFile on a pipe waiting for
  data and a GetQueuedCompletionStatus waiting for a packet are not interrupted and do not run
  the APC; the next alertable wait does.
- #77 says "emit 0" for the removed count of a timed-out GQCSEx; the owners' test accepts 1.
"""

from __future__ import annotations

from typing import Any

import pytest

import winaio.testing as wt
import winaio.win32 as w

from .conftest import LONG, SENTINEL, SHORT

pytestmark = pytest.mark.timeout(60)


def test_25_signal_and_wait_on_file_and_pipe_handles(kit: Any) -> None:
    # spec: win32 #25 [W:k32/sync.c:test_signalandwait] (SignalObjectAndWait(file, file, 0,
    # FALSE) -> WAIT_FAILED, ERROR_INVALID_HANDLE; a file or pipe cannot be signaled, and the
    # wait half is not performed: a signaled auto event passed as the object to wait on stays
    # signaled)
    f = kit.file(b"data")
    server, _client = kit.pipe()
    for h in (f, server):
        w.SetLastError(SENTINEL)
        assert w.SignalObjectAndWait(h, h, 0, False) == w.WAIT_FAILED
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE
        auto = kit.event(manual=False, initial=True)
        w.SetLastError(SENTINEL)
        assert w.SignalObjectAndWait(h, auto, 0, False) == w.WAIT_FAILED
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE
        assert w.WaitForSingleObject(auto, 0) == w.WAIT_OBJECT_0  # not consumed
    # Waiting on a file is fine (#56): signaling one is what fails.
    ev = kit.event(manual=False, initial=False)
    assert w.SignalObjectAndWait(ev, f, 0, False) in (w.WAIT_OBJECT_0, w.WAIT_TIMEOUT)
    assert w.WaitForSingleObject(ev, 0) == w.WAIT_OBJECT_0  # the signal half happened


def test_29_blocked_synchronous_read_is_not_interrupted_by_an_apc(kit: Any) -> None:
    # spec: win32 #29 [W:nt/pipe.c:read_pipe_test] (a thread blocked in a synchronous ReadFile
    # gets an APC from another thread: the read keeps waiting, returns its data, and the APC
    # runs only at the thread's next alertable wait)
    server, client = kit.pipe(client_overlapped=False)
    log: list[Any] = []
    seen: list[Any] = []

    def body() -> None:
        buf = bytearray(8)
        n = w.Ref(SENTINEL)
        seen.append(w.ReadFile(client, buf, 8, n, None))
        seen.append((n.value, bytes(buf[: n.value]), list(log)))
        seen.append(w.SleepEx(0, True))
        seen.append(list(log))

    t = kit.thread(body)
    wt.wait_until_blocked(t.tid)
    assert w.QueueUserAPC(lambda data: log.append(data), t.handle, 7)
    assert t.still_running(SHORT)  # the synchronous read was not interrupted
    assert log == []
    kit.write(server, b"abc")
    t.join()
    assert seen == [True, (3, b"abc", []), w.WAIT_IO_COMPLETION, [7]]


def test_29_blocked_gqcs_is_not_interrupted_by_an_apc(kit: Any) -> None:
    # spec: win32 #29 [W:k32/file.c:test_post_completion] (GetQueuedCompletionStatus blocked on
    # an empty port: an APC does not end it and does not run; the posted packet does)
    port = kit.port()
    log: list[Any] = []
    seen: list[Any] = []

    def body() -> None:
        n, key, ov = w.Ref(SENTINEL), w.Ref(SENTINEL), w.Ref(SENTINEL)
        seen.append(w.GetQueuedCompletionStatus(port, n, key, ov, LONG))
        seen.append((n.value, key.value, ov.value, list(log)))
        seen.append(w.SleepEx(0, True))

    t = kit.thread(body)
    wt.wait_until_blocked(t.tid)
    assert w.QueueUserAPC(lambda data: log.append(data), t.handle, 1)
    assert t.still_running(SHORT)
    assert log == []
    assert w.PostQueuedCompletionStatus(port, 5, 6, None)
    t.join()
    assert seen == [True, (5, 6, None, []), w.WAIT_IO_COMPLETION]
    assert log == [1]


def test_77_gqcsex_timeout_writes_zero_removed(kit: Any) -> None:
    # spec: win32 #77 (FALSE, WAIT_TIMEOUT, and ulNumEntriesRemoved written as 0: the spec's
    # "emit 0"; also with an alertable wait that times out)
    port = kit.port()
    entries = [w.OVERLAPPED_ENTRY() for _ in range(4)]
    for timeout, alertable in ((0, False), (SHORT, False), (0, True), (SHORT, True)):
        removed = w.Ref(SENTINEL)
        w.SetLastError(SENTINEL)
        assert w.GetQueuedCompletionStatusEx(port, entries, 4, removed, timeout, alertable) is False
        assert w.GetLastError() == w.WAIT_TIMEOUT
        assert removed.value == 0
