"""GetQueuedCompletionStatusEx given an lpCompletionPortEntries it cannot write: no packet lost.

The packets were dequeued first and the entries written after: a list holding something
that is not an OVERLAPPED_ENTRY raised a bare AttributeError once the packets were off the
queue - gone for every later caller. Now: FALSE, ERROR_NOACCESS (what Windows reports for
an output buffer it cannot write), *ulNumEntriesRemoved 0, and the packets are still queued,
in order, for the next call. No array at all (None) is ERROR_NOACCESS too.
"""

from __future__ import annotations

from typing import Any

import pytest

import winaio.win32 as w
from winaio.codes import NtStatus, WinError


@pytest.mark.parametrize(
    "entries",
    [[None, None, None], ["x", "y", "z"], [w.OVERLAPPED_ENTRY(), None, None], None],
    ids=["nones", "strings", "good-then-none", "no-array"],
)
def test_entries_it_cannot_write_leave_every_packet_queued(entries: Any) -> None:
    port = w.CreateIoCompletionPort(w.INVALID_HANDLE_VALUE, None, 0, 0)
    try:
        for key in ("a", "b", "c"):
            assert w.PostQueuedCompletionStatus(port, 1, key, None)
        removed = w.Ref(9)
        assert w.GetQueuedCompletionStatusEx(port, entries, 3, removed, 0, False) is False
        assert w.GetLastError() == WinError.ERROR_NOACCESS
        assert removed.value == 0
        good = [w.OVERLAPPED_ENTRY() for _ in range(4)]
        assert w.GetQueuedCompletionStatusEx(port, good, 4, removed, 0, False)
        assert removed.value == 3
        assert [e.lpCompletionKey for e in good[:3]] == ["a", "b", "c"]
    finally:
        w.CloseHandle(port)


def test_gqcs_out_parameters_it_cannot_write_leave_the_packet_queued() -> None:
    port = w.CreateIoCompletionPort(w.INVALID_HANDLE_VALUE, None, 0, 0)
    try:
        assert w.PostQueuedCompletionStatus(port, 5, "a", None)
        assert w.GetQueuedCompletionStatus(port, None, None, None, 0) is False  # type: ignore[arg-type]
        assert w.GetLastError() == WinError.ERROR_NOACCESS
        entries = [w.OVERLAPPED_ENTRY()]
        assert w.GetQueuedCompletionStatusEx(port, entries, 1, None, 0, False) is False  # type: ignore[arg-type]
        assert w.GetLastError() == WinError.ERROR_NOACCESS
        count, key, ov = w.Ref(0), w.Ref(None), w.Ref(None)
        assert w.GetQueuedCompletionStatus(port, count, key, ov, 0)
        assert (count.value, key.value) == (5, "a")
    finally:
        w.CloseHandle(port)


def test_ntremoveiocompletion_outputs_it_cannot_write_leave_the_packets_queued() -> None:
    port = w.CreateIoCompletionPort(w.INVALID_HANDLE_VALUE, None, 0, 0)
    try:
        assert w.PostQueuedCompletionStatus(port, 5, "a", None)
        assert w.PostQueuedCompletionStatus(port, 6, "b", None)
        violation = int(NtStatus.STATUS_ACCESS_VIOLATION)
        assert w.NtRemoveIoCompletion(port, None, None, None, 0) == violation  # type: ignore[arg-type]
        removed = w.Ref(9)
        assert w.NtRemoveIoCompletionEx(port, [None, None], 2, removed, 0, False) == violation  # type: ignore[list-item]
        entries = [w.FILE_IO_COMPLETION_INFORMATION() for _ in range(2)]
        assert w.NtRemoveIoCompletionEx(port, entries, 2, removed, 0, False) == 0
        assert removed.value == 2 and [e.KeyContext for e in entries] == ["a", "b"]
    finally:
        w.CloseHandle(port)
