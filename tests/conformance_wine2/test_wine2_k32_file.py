"""Files, ported from Wine's ``dlls/kernel32/tests/file.c``: CreateFile dispositions and their
last-error values (test_CreateFileW), the offset in an OVERLAPPED on a synchronous handle
(test_offset_in_overlapped_structure), NULL buffers and zero sizes (test_read_write), end of
file and SetEndOfFile (test_eof), GetFileType on handles that are not files (test_GetFileType),
ReadFileEx/WriteFileEx at offsets (test_async_file_errors) - the parts
``tests/conformance_wine`` does not check yet."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import winaio.win32 as w

SENTINEL = 0xDEADBEEF
SHARE_ALL = w.FILE_SHARE_READ | w.FILE_SHARE_WRITE | w.FILE_SHARE_DELETE
RW = w.GENERIC_READ | w.GENERIC_WRITE


def _fails(call: Callable[[], Any], error: int) -> None:
    w.SetLastError(SENTINEL)
    assert not call()
    assert w.GetLastError() == error, (w.GetLastError(), error)


def _create(path: Path | str, access: int, share: int, disposition: int, flags: int = 0) -> int:
    w.SetLastError(SENTINEL)
    return w.CreateFile(str(path), access, share, None, disposition, flags, 0)


def _size(h: int) -> int:
    size = w.Ref(SENTINEL)
    assert w.GetFileSizeEx(h, size), w.GetLastError()
    return int(size.value)


def _seek(h: int, pos: int) -> None:
    assert w.SetFilePointer(h, pos, None, w.FILE_BEGIN) == pos


# --------------------------------------------------------------------------------------------
# test_CreateFileW


def test_create_file_dispositions_and_last_error(tmp_path: Path) -> None:
    # [W:k32/file.c:test_CreateFileW] (CREATE_NEW on an existing file: ERROR_FILE_EXISTS;
    # CREATE_ALWAYS and OPEN_ALWAYS on one: success with ERROR_ALREADY_EXISTS; OPEN_ALWAYS that
    # creates: last error 0)
    path = tmp_path / "pfx.tmp"
    path.write_bytes(b"")
    flags = w.FILE_FLAG_RANDOM_ACCESS
    h = _create(path, w.GENERIC_READ, 0, w.CREATE_NEW, flags)
    assert h == w.INVALID_HANDLE_VALUE and w.GetLastError() == w.ERROR_FILE_EXISTS
    for disposition in (w.CREATE_ALWAYS, w.OPEN_ALWAYS):
        h = _create(path, w.GENERIC_READ, w.FILE_SHARE_READ, disposition, flags)
        assert h != w.INVALID_HANDLE_VALUE and w.GetLastError() == w.ERROR_ALREADY_EXISTS
        assert w.CloseHandle(h)
    assert w.DeleteFile(str(path))
    h = _create(path, w.GENERIC_READ, w.FILE_SHARE_READ, w.OPEN_ALWAYS, flags)
    assert h != w.INVALID_HANDLE_VALUE and w.GetLastError() == 0
    assert w.CloseHandle(h)
    assert w.DeleteFile(str(path))
    h = _create(path, w.GENERIC_READ, w.FILE_SHARE_READ, w.CREATE_NEW, flags)
    assert h != w.INVALID_HANDLE_VALUE and w.GetLastError() == 0
    assert w.CloseHandle(h)


def test_create_file_bad_paths(tmp_path: Path) -> None:
    # [W:k32/file.c:test_CreateFileW] (an empty name: ERROR_PATH_NOT_FOUND; a missing file:
    # ERROR_FILE_NOT_FOUND; a missing directory on the way: ERROR_PATH_NOT_FOUND)
    h = _create("", w.GENERIC_READ, 0, w.CREATE_NEW)
    assert h == w.INVALID_HANDLE_VALUE and w.GetLastError() == w.ERROR_PATH_NOT_FOUND
    for disposition in (w.OPEN_EXISTING, w.TRUNCATE_EXISTING):
        h = _create(tmp_path / "missing", RW, 0, disposition)
        assert h == w.INVALID_HANDLE_VALUE and w.GetLastError() == w.ERROR_FILE_NOT_FOUND
    h = _create(tmp_path / "no-dir" / "f", RW, 0, w.CREATE_ALWAYS)
    assert h == w.INVALID_HANDLE_VALUE and w.GetLastError() == w.ERROR_PATH_NOT_FOUND


def test_create_file_on_an_existing_directory(tmp_path: Path) -> None:
    # [W:k32/file.c:test_CreateFileW] (OPEN_ALWAYS on a directory with
    # FILE_FLAG_BACKUP_SEMANTICS opens it; without the flag: ERROR_ACCESS_DENIED)
    d = tmp_path / "dir"
    d.mkdir()
    flags = w.FILE_ATTRIBUTE_NORMAL | w.FILE_FLAG_BACKUP_SEMANTICS
    h = _create(d, RW, 0, w.OPEN_ALWAYS, flags)
    assert h != w.INVALID_HANDLE_VALUE, w.GetLastError()
    assert w.CloseHandle(h)
    h = _create(d, w.GENERIC_READ, SHARE_ALL, w.OPEN_EXISTING, 0)
    assert h == w.INVALID_HANDLE_VALUE and w.GetLastError() == w.ERROR_ACCESS_DENIED


def test_delete_on_close_and_a_completion_port(tmp_path: Path) -> None:
    # [W:k32/file.c:test_CreateFile2] (FILE_FLAG_OVERLAPPED | FILE_FLAG_DELETE_ON_CLOSE: the
    # handle takes a completion port, and the file is gone after CloseHandle: DeleteFile then
    # fails with ERROR_FILE_NOT_FOUND)
    path = tmp_path / "doc.tmp"
    flags = w.FILE_ATTRIBUTE_NORMAL | w.FILE_FLAG_OVERLAPPED | w.FILE_FLAG_DELETE_ON_CLOSE
    h = _create(path, RW, w.FILE_SHARE_READ, w.CREATE_ALWAYS, flags)
    assert h != w.INVALID_HANDLE_VALUE and w.GetLastError() == 0
    w.SetLastError(SENTINEL)
    port = w.CreateIoCompletionPort(h, 0, 0, 2)
    assert port, w.GetLastError()
    assert w.CloseHandle(port)
    assert w.CloseHandle(h)
    _fails(lambda: w.DeleteFile(str(path)), w.ERROR_FILE_NOT_FOUND)


# --------------------------------------------------------------------------------------------
# test_offset_in_overlapped_structure


def test_offset_in_overlapped_structure(tmp_path: Path) -> None:
    # [W:k32/file.c:test_offset_in_overlapped_structure] (on a synchronous handle the OVERLAPPED
    # gives the offset; the file pointer ends after the bytes moved, also past the old end)
    path = tmp_path / "offset.bin"
    pattern = b"TeSt\0"
    buf = bytes(range(256))
    h = _create(path, w.GENERIC_WRITE, 0, w.CREATE_ALWAYS, w.FILE_ATTRIBUTE_NORMAL)
    assert h != w.INVALID_HANDLE_VALUE
    done = w.Ref(SENTINEL)
    assert w.WriteFile(h, buf, 256, done, None) and done.value == 256
    ov = w.OVERLAPPED(Offset=0x10)
    assert w.WriteFile(h, pattern, len(pattern), done, ov) and done.value == len(pattern)
    assert w.SetFilePointer(h, 0, None, w.FILE_CURRENT) == 0x10 + len(pattern)
    ov = w.OVERLAPPED(Offset=512)
    assert w.WriteFile(h, pattern, len(pattern), done, ov) and done.value == len(pattern)
    assert w.SetFilePointer(h, 0, None, w.FILE_CURRENT) == 512 + len(pattern)
    assert _size(h) == 512 + len(pattern)
    assert w.CloseHandle(h)

    h = _create(path, w.GENERIC_READ, 0, w.OPEN_EXISTING)
    assert h != w.INVALID_HANDLE_VALUE
    got = bytearray(256)
    ov = w.OVERLAPPED(Offset=0x10)
    assert w.ReadFile(h, got, len(pattern), done, ov) and done.value == len(pattern)
    assert w.SetFilePointer(h, 0, None, w.FILE_CURRENT) == 0x10 + len(pattern)
    assert bytes(got[: len(pattern)]) == pattern
    # the gap the second write left reads as zeros
    ov = w.OVERLAPPED(Offset=256)
    assert w.ReadFile(h, got, 256, done, ov) and done.value == 256 and got == bytes(256)
    assert w.CloseHandle(h)


# --------------------------------------------------------------------------------------------
# test_read_write


def test_null_buffers_and_zero_sizes(tmp_path: Path) -> None:
    # [W:k32/file.c:test_read_write] (0 bytes with a NULL buffer: TRUE, count 0, last error
    # untouched; a NULL buffer with a size: ERROR_INVALID_USER_BUFFER for writes,
    # ERROR_NOACCESS for reads, count 0; synchronous file I/O never runs a queued APC)
    ran: list[int] = []
    path = tmp_path / "rw.bin"
    h = _create(path, RW, 0, w.CREATE_ALWAYS, w.FILE_FLAG_RANDOM_ACCESS)
    assert h != w.INVALID_HANDLE_VALUE
    assert w.QueueUserAPC(ran.append, w.GetCurrentThread(), 1)
    n = w.Ref(SENTINEL)
    w.SetLastError(12345678)
    assert w.WriteFile(h, None, 0, n, None) and w.GetLastError() == 12345678 and n.value == 0
    n.value = SENTINEL
    _fails(lambda: w.WriteFile(h, None, 10, n, None), w.ERROR_INVALID_USER_BUFFER)
    assert n.value == 0
    assert w.WriteFile(h, b"this is the test data", 21, n, None) and n.value == 21
    _seek(h, 0)
    n.value = SENTINEL
    w.SetLastError(12345678)
    assert w.ReadFile(h, None, 0, n, None) and w.GetLastError() == 12345678 and n.value == 0
    n.value = SENTINEL
    _fails(lambda: w.ReadFile(h, None, 10, n, None), w.ERROR_NOACCESS)
    assert n.value == 0
    assert ran == []
    assert w.SleepEx(0, True) == w.WAIT_IO_COMPLETION and ran == [1]
    # the handle is checked before the buffer
    _fails(lambda: w.WriteFile(0xDEAD, None, 0x4000, n, None), w.ERROR_INVALID_HANDLE)
    assert n.value == 0
    # a read stops at the end of file
    _seek(h, 0x1234)
    assert w.SetEndOfFile(h)
    _seek(h, 0)
    big = bytearray(0x2000)
    assert w.ReadFile(h, big, 0x2000, n, None) and n.value == 0x1234
    assert w.CloseHandle(h)


# --------------------------------------------------------------------------------------------
# test_eof


def test_end_of_file(tmp_path: Path) -> None:
    # [W:k32/file.c:test_eof] (the file pointer past the end does not grow the file; a read
    # there: TRUE, 0 bytes, last error untouched; with an OVERLAPPED: ERROR_HANDLE_EOF, count 0,
    # InternalHigh 0; SetEndOfFile moves the end both ways, zero-filling)
    path = tmp_path / "eof.bin"
    h = _create(path, RW | w.DELETE, 0, w.CREATE_ALWAYS)
    assert h != w.INVALID_HANDLE_VALUE
    assert _size(h) == 0
    _seek(h, 2)
    assert _size(h) == 0
    buf = bytearray(20)
    size = w.Ref(SENTINEL)
    w.SetLastError(SENTINEL)
    assert w.ReadFile(h, buf, 20, size, None) and size.value == 0
    assert w.GetLastError() == SENTINEL
    _seek(h, 2)
    ov = w.OVERLAPPED(Offset=2)
    size.value = SENTINEL
    _fails(lambda: w.ReadFile(h, buf, 20, size, ov), w.ERROR_HANDLE_EOF)
    assert size.value == 0
    assert ov.Internal in (w.STATUS_PENDING, w.STATUS_END_OF_FILE) and ov.InternalHigh == 0
    _seek(h, 2)
    assert w.SetEndOfFile(h) and _size(h) == 2
    assert w.WriteFile(h, b"data", 4, size, None) and size.value == 4 and _size(h) == 6
    _seek(h, 4)
    assert w.SetEndOfFile(h) and _size(h) == 4
    _seek(h, 0)
    assert w.ReadFile(h, buf, 20, size, None) and size.value == 4
    assert bytes(buf[:4]) == b"\0\0da"
    _seek(h, 6)
    assert w.SetEndOfFile(h) and _size(h) == 6
    _seek(h, 0)
    assert w.ReadFile(h, buf, 20, size, None) and size.value == 6
    assert bytes(buf[:6]) == b"\0\0da\0\0"
    assert w.SetEndOfFile(h)  # at the end already: no change
    _seek(h, 2)
    assert w.WriteFile(h, b"data", 4, size, None) and _size(h) == 6
    _seek(h, 0)
    assert w.ReadFile(h, buf, 20, size, None) and bytes(buf[:6]) == b"\0\0data"
    assert w.CloseHandle(h)


# --------------------------------------------------------------------------------------------
# test_GetFileType


def test_file_type_of_handles_that_are_not_files(io) -> None:
    # [W:k32/file.c:test_GetFileType] (the pseudo handles and a mutex: FILE_TYPE_UNKNOWN with
    # ERROR_INVALID_HANDLE)
    mutex = io.keep(w.CreateMutex(None, True, None))
    for handle in (w.GetCurrentProcess(), w.GetCurrentThread(), mutex):
        w.SetLastError(12345678)
        assert w.GetFileType(handle) == w.FILE_TYPE_UNKNOWN
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE
    assert w.ReleaseMutex(mutex)


# --------------------------------------------------------------------------------------------
# test_async_file_errors


@pytest.mark.parametrize("hevent", ["semaphore", "unused"])
def test_readfileex_walks_a_file_to_its_end(io, hevent: str) -> None:
    # [W:k32/file.c:test_async_file_errors] (ReadFileEx at increasing offsets until it fails:
    # the routine runs once per accepted call only; the read past the end reports
    # ERROR_HANDLE_EOF, either from the call or through the routine. Wine keeps a semaphore
    # in hEvent, which ReadFileEx ignores: "free for the application's use" [MS:ReadFileEx])
    data = bytes(range(256)) * 40  # 10240 bytes: two full 4096-byte reads and a short one
    h = io.file(data)
    sem = io.keep(w.CreateSemaphore(None, 1, 1, None))
    calls: list[tuple[int, int]] = []

    def routine(err: int, count: int, ov: Any) -> None:
        calls.append((err, count))
        w.ReleaseSemaphore(sem, 1, None)

    ov = w.OVERLAPPED(hEvent=sem if hevent == "semaphore" else 0)
    buf = bytearray(4096)
    accepted = 0
    got = bytearray()
    for _ in range(10):
        r = w.WaitForSingleObjectEx(sem, 5000, True)
        while r == w.WAIT_IO_COMPLETION:  # the routine ran and released the semaphore
            r = w.WaitForSingleObjectEx(sem, 5000, True)
        assert r == w.WAIT_OBJECT_0
        if calls:
            err, count = calls[-1]
            if err:
                assert err == w.ERROR_HANDLE_EOF
                break
            got += buf[:count]
            ov.Offset += count
        if not w.ReadFileEx(h, buf, 4096, ov, routine):
            assert w.GetLastError() == w.ERROR_HANDLE_EOF
            break
        accepted += 1
    w.SleepEx(0, True)
    assert bytes(got) == data
    assert len(calls) == accepted  # one routine per accepted call, never for a failed one
    assert [c for _, c in calls[:3]] == [4096, 4096, 2048]


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "overlapped"])
def test_read_only_and_write_only_handles(io, sync: bool) -> None:
    # [W:k32/file.c:test_file_readonly_access] [MS:ReadFile] (a handle without GENERIC_WRITE
    # cannot write and one without GENERIC_READ cannot read: ERROR_ACCESS_DENIED, count 0)
    ro = io.file(b"abcd", overlapped=not sync, access=w.GENERIC_READ)
    wo = io.file(b"", overlapped=not sync, access=w.GENERIC_WRITE)
    n = w.Ref(SENTINEL)
    ov = None if sync else io.ov_event()
    _fails(lambda: w.WriteFile(ro, b"xy", 2, n, ov), w.ERROR_ACCESS_DENIED)
    assert n.value == 0
    n.value = SENTINEL
    _fails(lambda: w.ReadFile(wo, bytearray(2), 2, n, ov), w.ERROR_ACCESS_DENIED)
    assert n.value == 0
