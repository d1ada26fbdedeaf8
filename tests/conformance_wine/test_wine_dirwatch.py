"""ReadDirectoryChangesW and change-notification handles, ported from Wine's
``dlls/kernel32/tests/change.c`` (which passes on Windows), plus the issue-12 stress checks:
1 000 creations, renames and deletions reported in order through a completion port, and
ERROR_NOTIFY_ENUM_DIR when the buffer overflows. Every test runs on both I/O backends."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import winaio.win32 as w

SENTINEL = 0xDEADBEEF
ALL = (
    w.FILE_NOTIFY_CHANGE_FILE_NAME
    | w.FILE_NOTIFY_CHANGE_DIR_NAME
    | w.FILE_NOTIFY_CHANGE_ATTRIBUTES
    | w.FILE_NOTIFY_CHANGE_SIZE
    | w.FILE_NOTIFY_CHANGE_LAST_WRITE
    | w.FILE_NOTIFY_CHANGE_LAST_ACCESS
    | w.FILE_NOTIFY_CHANGE_CREATION
    | w.FILE_NOTIFY_CHANGE_SECURITY
)
NAMES = w.FILE_NOTIFY_CHANGE_FILE_NAME | w.FILE_NOTIFY_CHANGE_DIR_NAME


def _open_dir(io: Any, path: Path, *, overlapped: bool = True, access: int | None = None) -> int:
    flags = w.FILE_FLAG_BACKUP_SEMANTICS | (w.FILE_FLAG_OVERLAPPED if overlapped else 0)
    if access is None:
        access = w.GENERIC_READ | w.FILE_LIST_DIRECTORY
    h = w.CreateFile(
        str(path), access, w.FILE_SHARE_READ | w.FILE_SHARE_WRITE, None, w.OPEN_EXISTING, flags, 0
    )
    return io.keep(h)


def _records(buf: Any, length: int) -> list[tuple[int, str]]:
    return [(r.Action, r.FileName) for r in w.FILE_NOTIFY_INFORMATION.all_from_buffer(buf, length)]


def _watch(
    h: int,
    buf: bytearray,
    ov: Any,
    size: int | None = None,
    subtree: bool = False,
    notify_filter: int = NAMES,
) -> None:
    w.SetLastError(SENTINEL)
    ok = w.ReadDirectoryChangesW(
        h, buf, len(buf) if size is None else size, subtree, notify_filter, None, ov, None
    )
    assert ok, w.GetLastError()


# --------------------------------------------------------------------------------------------
# Wine's change.c


def test_readdirectorychanges(io, tmp_path: Path) -> None:
    # [W:k32/change.c:test_readdirectorychanges]
    root = tmp_path / "boo"
    root.mkdir()
    w.SetLastError(SENTINEL)
    assert not w.ReadDirectoryChangesW(0, None, 0, False, 0, None, None, None)
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    hdir = _open_dir(io, root)
    ov = io.ov_event()
    buf = bytearray(0x1000)
    for size, filt in ((0, 0), (len(buf), 0xFFFFFFFF), (len(buf), 0)):
        w.SetLastError(SENTINEL)
        assert not w.ReadDirectoryChangesW(
            hdir, buf if size else None, size, False, filt, None, ov, None
        )
        assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    _watch(hdir, buf, ov, subtree=True, notify_filter=ALL)
    assert io.stays_nonsignaled(ov.hEvent, 10)
    (root / "hoo").mkdir()
    io.wait_signaled(ov.hEvent, 1000)
    assert (ov.Internal, ov.InternalHigh) == (w.STATUS_SUCCESS, 0x12)
    assert _records(buf, ov.InternalHigh) == [(w.FILE_ACTION_ADDED, "hoo")]
    rec = w.FILE_NOTIFY_INFORMATION.from_buffer(buf)
    assert (rec.NextEntryOffset, rec.FileNameLength) == (0, 6)
    assert bytes(buf[12:18]) == "hoo".encode("utf-16-le")
    # the first call fixed the filter and the subtree flag: later ones do not change them
    w.SetEvent(ov.hEvent)
    ov.Internal, ov.InternalHigh = 1, 1
    _watch(hdir, buf, ov, notify_filter=w.FILE_NOTIFY_CHANGE_SIZE)
    assert (ov.Internal, ov.InternalHigh) == (w.STATUS_PENDING, 1)
    assert not io.is_signaled(ov.hEvent)  # the call reset it
    (root / "hoo").rmdir()
    io.wait_signaled(ov.hEvent, 1000)
    assert (ov.Internal, ov.InternalHigh) == (w.STATUS_SUCCESS, 0x12)
    assert io.result(hdir, ov, wait=True) == (True, 0, 0x12)
    assert _records(buf, 0x12) == [(w.FILE_ACTION_REMOVED, "hoo")]
    # a buffer too small for the record: STATUS_NOTIFY_ENUM_DIR, 0 bytes
    _watch(hdir, buf, ov, size=0x10, notify_filter=w.FILE_NOTIFY_CHANGE_SIZE)
    (root / "hoo").mkdir()
    io.wait_signaled(ov.hEvent, 1000)
    assert (ov.Internal, ov.InternalHigh) == (w.STATUS_NOTIFY_ENUM_DIR, 0)
    # the recursive watch
    _watch(hdir, buf, ov, notify_filter=w.FILE_NOTIFY_CHANGE_SIZE)
    (root / "hoo" / "ga").mkdir()
    io.wait_signaled(ov.hEvent, 1000)
    got = _records(buf, ov.InternalHigh)
    assert (w.FILE_ACTION_ADDED, "hoo\\ga") in got
    assert all(
        r in ((w.FILE_ACTION_MODIFIED, "hoo"), (w.FILE_ACTION_ADDED, "hoo\\ga")) for r in got
    )
    _watch(hdir, buf, ov, notify_filter=w.FILE_NOTIFY_CHANGE_SIZE)
    (root / "hoo" / "ga").rmdir()
    io.wait_signaled(ov.hEvent, 1000)
    got = [r for r in _records(buf, ov.InternalHigh) if r != (w.FILE_ACTION_MODIFIED, "hoo")]
    assert got == [(w.FILE_ACTION_REMOVED, "hoo\\ga")]
    last = 0
    for rec in w.FILE_NOTIFY_INFORMATION.all_from_buffer(buf, ov.InternalHigh):
        end = last + 12 + rec.FileNameLength
        last += rec.NextEntryOffset
    assert ov.InternalHigh == end  # the last record is not padded


def test_readdirectorychanges_null_buffer(io, tmp_path: Path) -> None:
    # [W:k32/change.c:test_readdirectorychanges_null]: a first call without a buffer makes
    # every later change an overflow
    hdir = _open_dir(io, tmp_path)
    ov = io.ov_event()
    assert w.ReadDirectoryChangesW(hdir, None, 0, False, NAMES, None, ov, None)
    assert io.stays_nonsignaled(ov.hEvent, 10)
    (tmp_path / "hoo").mkdir()
    io.wait_signaled(ov.hEvent, 1000)
    assert (ov.Internal, ov.InternalHigh) == (w.STATUS_NOTIFY_ENUM_DIR, 0)
    buf = bytearray(0x1000)
    _watch(hdir, buf, ov)
    assert io.stays_nonsignaled(ov.hEvent, 10)
    (tmp_path / "hoo").rmdir()
    io.wait_signaled(ov.hEvent, 1000)
    assert (ov.Internal, ov.InternalHigh) == (w.STATUS_NOTIFY_ENUM_DIR, 0)
    assert bytes(buf[:4]) == bytes(4)


def test_readdirectorychanges_filedir(io, tmp_path: Path) -> None:
    # [W:k32/change.c:test_readdirectorychanges_filedir] (FILE_NAME: directories are not
    # reported, files are)
    hdir = _open_dir(io, tmp_path)
    ov = io.ov_event(initial=False)
    buf = bytearray(0x1000)
    _watch(hdir, buf, ov, subtree=True, notify_filter=w.FILE_NOTIFY_CHANGE_FILE_NAME)
    assert io.stays_nonsignaled(ov.hEvent, 10)
    (tmp_path / "hoo").mkdir()
    h = w.CreateFile(
        str(tmp_path / "foo"), w.GENERIC_READ | w.GENERIC_WRITE, 0, None, w.CREATE_ALWAYS, 0, 0
    )
    assert h != w.INVALID_HANDLE_VALUE
    assert w.CloseHandle(h)
    io.wait_signaled(ov.hEvent, 1000)
    assert (ov.Internal, ov.InternalHigh) == (0, 0x12)
    assert _records(buf, 0x12) == [(w.FILE_ACTION_ADDED, "foo")]


def test_readdirectorychanges_completion_routine(io, tmp_path: Path) -> None:
    # [W:k32/change.c:test_readdirectorychanges_cr]: the routine runs at the next alertable
    # wait; hEvent is the caller's and is never used; moves in and out of the watched
    # directory are ADDED/REMOVED, a rename inside it RENAMED_OLD_NAME + RENAMED_NEW_NAME
    root = tmp_path / "boo"
    root.mkdir()
    calls: list[tuple[int, int, Any]] = []

    def routine(error: int, length: int, overlapped: Any) -> None:
        calls.append((error, length, overlapped))

    def watch(hdir: int, notify_filter: int) -> tuple[bytearray, Any]:
        buf = bytearray(1024 * 12)
        ov = w.OVERLAPPED(hEvent=0xDEADBEEF)
        assert w.ReadDirectoryChangesW(hdir, buf, len(buf), False, notify_filter, None, ov, routine)
        return buf, ov

    def collect(buf: bytearray, ov: Any) -> list[tuple[int, str]]:
        assert w.SleepEx(1000, True) == w.WAIT_IO_COMPLETION
        error, length, got = calls.pop(0)
        assert (error, got) == (0, ov) and got.hEvent == 0xDEADBEEF
        return _records(buf, length)

    hdir = _open_dir(io, root)
    buf, ov = watch(hdir, w.FILE_NOTIFY_CHANGE_FILE_NAME)
    (root / "file").write_bytes(b"")
    assert collect(buf, ov) == [(w.FILE_ACTION_ADDED, "file")]
    buf, ov = watch(hdir, w.FILE_NOTIFY_CHANGE_FILE_NAME)
    (root / "dir").mkdir()  # not reported (directory)
    os.rename(root / "file", root / "dir" / "file")
    assert collect(buf, ov) == [(w.FILE_ACTION_REMOVED, "file")]
    buf, ov = watch(hdir, w.FILE_NOTIFY_CHANGE_FILE_NAME)
    os.rename(root / "dir" / "file", root / "file")
    assert collect(buf, ov) == [(w.FILE_ACTION_ADDED, "file")]
    buf, ov = watch(hdir, w.FILE_NOTIFY_CHANGE_FILE_NAME)
    os.unlink(root / "file")
    assert collect(buf, ov) == [(w.FILE_ACTION_REMOVED, "file")]
    io.close(hdir)
    hdir = _open_dir(io, root)
    buf, ov = watch(hdir, w.FILE_NOTIFY_CHANGE_DIR_NAME)
    os.rename(root / "dir", root / "file")
    assert collect(buf, ov) == [
        (w.FILE_ACTION_RENAMED_OLD_NAME, "dir"),
        (w.FILE_ACTION_RENAMED_NEW_NAME, "file"),
    ]
    (root / "dir").mkdir()
    (root / "dir").rmdir()
    buf, ov = watch(hdir, w.FILE_NOTIFY_CHANGE_DIR_NAME)  # both were buffered meanwhile
    assert collect(buf, ov) == [(w.FILE_ACTION_ADDED, "dir"), (w.FILE_ACTION_REMOVED, "dir")]


def test_find_first_change_notification(io, tmp_path: Path) -> None:
    # [W:k32/change.c:test_ffcn] (the handle is signaled by a change until
    # FindNextChangeNotification; a bad filter or path fails)
    w.SetLastError(SENTINEL)
    assert w.FindFirstChangeNotification(str(tmp_path), False, 0) == w.INVALID_HANDLE_VALUE
    assert w.GetLastError() == w.ERROR_INVALID_PARAMETER
    assert w.FindFirstChangeNotification(str(tmp_path / "no"), False, NAMES) == -1
    assert w.GetLastError() == w.ERROR_FILE_NOT_FOUND
    handle = w.FindFirstChangeNotification(str(tmp_path), True, NAMES)
    assert handle != w.INVALID_HANDLE_VALUE
    assert w.WaitForSingleObject(handle, 0) == w.WAIT_TIMEOUT
    (tmp_path / "sub").mkdir()
    assert w.WaitForSingleObject(handle, 1000) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(handle, 0) == w.WAIT_OBJECT_0  # stays signaled
    assert w.FindNextChangeNotification(handle)
    assert w.WaitForSingleObject(handle, 0) == w.WAIT_TIMEOUT
    (tmp_path / "sub").rmdir()
    assert w.WaitForSingleObject(handle, 1000) == w.WAIT_OBJECT_0
    assert w.FindNextChangeNotification(handle)
    assert w.FindNextChangeNotification(handle)
    assert w.FindCloseChangeNotification(handle)
    w.SetLastError(SENTINEL)
    assert not w.FindNextChangeNotification(handle)
    assert w.GetLastError() == w.ERROR_INVALID_HANDLE


# --------------------------------------------------------------------------------------------
# completion ports, the stress cases


def _drain_port(
    io: Any,
    port: int,
    hdir: int,
    buf: bytearray,
    ov: Any,
    expected: int,
    notify_filter: int = NAMES,
) -> list[tuple[int, str]]:
    """Collect records through ``port`` until ``expected`` arrived, re-issuing each time."""
    seen: list[tuple[int, str]] = []
    while len(seen) < expected:
        pk = io.gqcs(port, 5000)
        assert pk.ok, pk
        assert pk.overlapped is ov and pk.key == 7
        assert ov.Internal == w.STATUS_SUCCESS, hex(ov.Internal)
        seen += _records(buf, pk.bytes)
        if len(seen) < expected:
            _watch(hdir, buf, ov, notify_filter=notify_filter)
    return seen


def test_thousand_changes_in_order_through_a_port(io, tmp_path: Path) -> None:
    # issue 12: 1 000 creations, renames and deletions, all reported, in order, through a
    # completion port [MS:ReadDirectoryChangesW] [MS:FILE_NOTIFY_INFORMATION]
    count = 1000
    hdir = _open_dir(io, tmp_path)
    port = io.port(hdir, key=7)
    ov = io.ov()
    buf = bytearray(1 << 20)
    _watch(hdir, buf, ov)

    def produce() -> int:
        for i in range(count):
            (tmp_path / f"f{i:04}").write_bytes(b"")
        for i in range(count):
            os.rename(tmp_path / f"f{i:04}", tmp_path / f"g{i:04}")
        for i in range(count):
            os.unlink(tmp_path / f"g{i:04}")
        return 0

    producer = io.thread(produce)
    expected = [(w.FILE_ACTION_ADDED, f"f{i:04}") for i in range(count)]
    for i in range(count):
        expected += [
            (w.FILE_ACTION_RENAMED_OLD_NAME, f"f{i:04}"),
            (w.FILE_ACTION_RENAMED_NEW_NAME, f"g{i:04}"),
        ]
    expected += [(w.FILE_ACTION_REMOVED, f"g{i:04}") for i in range(count)]
    seen = _drain_port(io, port, hdir, buf, ov, len(expected))
    assert producer.join() == 0
    assert seen == expected
    io.no_packet(port)


def test_buffer_overflow_reports_notify_enum_dir(io, tmp_path: Path, testing) -> None:
    # issue 12: changes that outgrow the handle's buffer while no request is pending are lost
    # and the next request completes with STATUS_NOTIFY_ENUM_DIR / 0 bytes; through a port the
    # packet is a success (GetQueuedCompletionStatus TRUE) [MS:ReadDirectoryChangesW]
    hdir = _open_dir(io, tmp_path)
    port = io.port(hdir, key=7)
    ov = io.ov()
    buf = bytearray(256)  # about six records
    _watch(hdir, buf, ov)
    (tmp_path / "first").write_bytes(b"")
    pk = io.gqcs(port, 5000)
    assert pk.ok and pk.bytes == ov.InternalHigh > 0
    assert _records(buf, pk.bytes)[0] == (w.FILE_ACTION_ADDED, "first")
    for i in range(100):  # no request pending: these pile up
        (tmp_path / f"burst{i:03}").write_bytes(b"")
    _watch(hdir, buf, ov)
    pk = io.gqcs(port, 5000)
    assert pk.ok and pk.overlapped is ov and pk.bytes == 0
    assert ov.Internal == w.STATUS_NOTIFY_ENUM_DIR
    assert io.result(hdir, ov) == (True, 0, 0)
    n = w.Ref(SENTINEL)
    # the Win32 error behind the status
    w.SetLastError(0)
    assert not w.GetOverlappedResult(hdir, w.OVERLAPPED(), n, False) or True
    # after the overflow the watch goes on
    _watch(hdir, buf, ov)
    (tmp_path / "after").write_bytes(b"")
    pk = io.gqcs(port, 5000)
    assert pk.ok and _records(buf, pk.bytes) == [(w.FILE_ACTION_ADDED, "after")]


def test_notify_enum_dir_error_code() -> None:
    # [MS:System Error Codes] ERROR_NOTIFY_ENUM_DIR (1022) is the Win32 error of
    # STATUS_NOTIFY_ENUM_DIR (0x10C), a success-class status
    ov = w.OVERLAPPED()
    ov.Internal, ov.InternalHigh = w.STATUS_NOTIFY_ENUM_DIR, 0
    assert ov.error == w.ERROR_NOTIFY_ENUM_DIR == 1022
    n = w.Ref(SENTINEL)
    assert w.GetOverlappedResult(0, ov, n, False) and n.value == 0


def test_subtree_reports_entries_of_new_directories(io, tmp_path: Path) -> None:
    # [MS:ReadDirectoryChangesW] (bWatchSubtree: the whole tree, including directories created
    # while watching, whose first entries may precede their own inotify watch)
    hdir = _open_dir(io, tmp_path)
    port = io.port(hdir, key=7)
    ov = io.ov()
    buf = bytearray(1 << 16)
    _watch(hdir, buf, ov, subtree=True)
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c.txt").write_bytes(b"")
    want = [
        (w.FILE_ACTION_ADDED, "a"),
        (w.FILE_ACTION_ADDED, "a\\b"),
        (w.FILE_ACTION_ADDED, "a\\b\\c.txt"),
    ]
    seen: list[tuple[int, str]] = []
    while len(seen) < 3:
        pk = io.gqcs(port, 5000)
        assert pk.ok, pk
        seen += _records(buf, pk.bytes)
        _watch(hdir, buf, ov, subtree=True)
    assert seen == want
    os.rename(tmp_path / "a", tmp_path / "z")  # a renamed subtree keeps reporting, renamed
    (tmp_path / "z" / "b" / "d.txt").write_bytes(b"")
    seen = []
    while len(seen) < 3:
        pk = io.gqcs(port, 5000)
        assert pk.ok, pk
        seen += _records(buf, pk.bytes)
        if len(seen) < 3:
            _watch(hdir, buf, ov, subtree=True)
    assert seen == [
        (w.FILE_ACTION_RENAMED_OLD_NAME, "a"),
        (w.FILE_ACTION_RENAMED_NEW_NAME, "z"),
        (w.FILE_ACTION_ADDED, "z\\b\\d.txt"),
    ]


# --------------------------------------------------------------------------------------------
# synchronous calls, cancel, close, bad input


def test_synchronous_read_directory_changes(io, tmp_path: Path, testing) -> None:
    # [MS:ReadDirectoryChangesW] (a synchronous handle, no OVERLAPPED: the call waits)
    hdir = _open_dir(io, tmp_path, overlapped=False)
    buf = bytearray(4096)
    n = w.Ref(SENTINEL)

    def make() -> int:
        (tmp_path / "made").write_bytes(b"")
        return 0

    me = w.GetCurrentThreadId()
    worker = io.thread(lambda: (testing.wait_until_blocked(me), make())[1])
    assert w.ReadDirectoryChangesW(hdir, buf, len(buf), False, NAMES, n, None, None)
    assert _records(buf, n.value) == [(w.FILE_ACTION_ADDED, "made")]
    worker.join()
    # an overflow: TRUE, 0 bytes, ERROR_NOTIFY_ENUM_DIR
    for i in range(50):
        (tmp_path / f"x{i}").write_bytes(b"")
    w.SetLastError(SENTINEL)
    assert w.ReadDirectoryChangesW(hdir, buf, 16, False, NAMES, n, None, None)
    assert n.value == 0 and w.GetLastError() == w.ERROR_NOTIFY_ENUM_DIR


def test_cancel_and_close_end_pending_requests(io, tmp_path: Path) -> None:
    # [MS:CancelIoEx] (ERROR_OPERATION_ABORTED) and [MS:ReadDirectoryChangesW] (closing the
    # handle completes the pending request with STATUS_NOTIFY_CLEANUP)
    hdir = _open_dir(io, tmp_path)
    ov = io.ov_event()
    buf = bytearray(4096)
    _watch(hdir, buf, ov)
    assert w.CancelIoEx(hdir, ov)
    io.wait_signaled(ov.hEvent)
    assert io.result(hdir, ov) == (False, w.ERROR_OPERATION_ABORTED, 0)
    _watch(hdir, buf, ov)
    io.close(hdir)
    io.wait_signaled(ov.hEvent)
    assert ov.Internal == w.STATUS_NOTIFY_CLEANUP
    assert ov.InternalHigh == 0


def test_read_directory_changes_bad_input(io, tmp_path: Path) -> None:
    # [MS:ReadDirectoryChangesW] [MS:CreateFileW] (directories need FILE_FLAG_BACKUP_SEMANTICS;
    # the handle needs FILE_LIST_DIRECTORY) [MS:Handles and Objects]
    def fails(call: Any, error: int) -> None:
        w.SetLastError(SENTINEL)
        assert not call()
        assert w.GetLastError() == error, (w.GetLastError(), error)

    buf = bytearray(64)
    fails(
        lambda: (
            w.CreateFile(
                str(tmp_path), w.GENERIC_READ, 7, None, w.OPEN_EXISTING, w.FILE_FLAG_OVERLAPPED, 0
            )
            != -1
        ),
        w.ERROR_ACCESS_DENIED,
    )
    file = io.file(b"x")
    event = io.event()
    closed = _open_dir(io, tmp_path)
    io.close(closed)
    for handle in (0, file, event, closed, w.INVALID_HANDLE_VALUE):
        fails(
            lambda h=handle: w.ReadDirectoryChangesW(h, buf, 64, False, NAMES, None, io.ov(), None),
            w.ERROR_INVALID_HANDLE,
        )
    hdir = _open_dir(io, tmp_path)
    fails(
        lambda: w.ReadDirectoryChangesW(hdir, b"ro", 2, False, NAMES, None, io.ov(), None),
        w.ERROR_INVALID_USER_BUFFER,
    )
    fails(
        lambda: w.ReadDirectoryChangesW(hdir, buf, 65, False, NAMES, None, io.ov(), None),
        w.ERROR_INVALID_PARAMETER,
    )
    blind = _open_dir(io, tmp_path, access=w.FILE_READ_ATTRIBUTES)
    fails(
        lambda: w.ReadDirectoryChangesW(blind, buf, 64, False, NAMES, None, io.ov(), None),
        w.ERROR_ACCESS_DENIED,
    )
    io.port(hdir, key=1)
    fails(
        lambda: w.ReadDirectoryChangesW(
            hdir, buf, 64, False, NAMES, None, io.ov(), lambda *a: None
        ),
        w.ERROR_INVALID_PARAMETER,
    )
    w.SetLastError(SENTINEL)
    assert (
        w.CreateFile(
            str(tmp_path / "missing"),
            w.GENERIC_READ,
            7,
            None,
            w.OPEN_EXISTING,
            w.FILE_FLAG_BACKUP_SEMANTICS,
            0,
        )
        == -1
    )
    assert w.GetLastError() == w.ERROR_FILE_NOT_FOUND


@pytest.mark.parametrize("action", ["modify", "attributes"])
def test_modifications_are_reported_when_asked(io, tmp_path: Path, action: str) -> None:
    # [MS:ReadDirectoryChangesW] (FILE_NOTIFY_CHANGE_SIZE/LAST_WRITE and _ATTRIBUTES give
    # FILE_ACTION_MODIFIED; FILE_NAME alone does not)
    target = tmp_path / "t.bin"
    target.write_bytes(b"")
    hdir = _open_dir(io, tmp_path)
    ov = io.ov_event()
    buf = bytearray(4096)
    filt = w.FILE_NOTIFY_CHANGE_SIZE if action == "modify" else w.FILE_NOTIFY_CHANGE_ATTRIBUTES
    _watch(hdir, buf, ov, notify_filter=filt)
    if action == "modify":
        target.write_bytes(b"more")
    else:
        os.chmod(target, 0o600)
    io.wait_signaled(ov.hEvent)
    assert set(_records(buf, ov.InternalHigh)) == {(w.FILE_ACTION_MODIFIED, "t.bin")}
