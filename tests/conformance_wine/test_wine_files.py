"""Files: share modes, delete-pending files and FILE_FLAG_DELETE_ON_CLOSE, byte-range locks,
SetEndOfFile, GetFileType, FlushFileBuffers access, ReadFileScatter at end of file - ported from
Wine's ``dlls/kernel32/tests/file.c`` or checked against MS Learn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import winaio.win32 as w

SENTINEL = 0xDEADBEEF
SHARE_ALL = w.FILE_SHARE_READ | w.FILE_SHARE_WRITE | w.FILE_SHARE_DELETE


def _open(
    path: Path | str, access: int, share: int, disposition: int = w.OPEN_EXISTING, flags: int = 0
) -> int:
    w.SetLastError(SENTINEL)
    return w.CreateFile(str(path), access, share, None, disposition, flags, 0)


def _fails(call: Any, error: int) -> None:
    w.SetLastError(SENTINEL)
    assert not call()
    assert w.GetLastError() == error, (w.GetLastError(), error)


# --------------------------------------------------------------------------------------------
# share modes


ACCESS_MODES = [
    0,
    w.GENERIC_READ,
    w.GENERIC_WRITE,
    w.GENERIC_READ | w.GENERIC_WRITE,
    w.DELETE,
    w.GENERIC_READ | w.DELETE,
    w.GENERIC_WRITE | w.DELETE,
    w.GENERIC_READ | w.GENERIC_WRITE | w.DELETE,
    w.GENERIC_EXECUTE,
    w.GENERIC_EXECUTE | w.DELETE,
    w.FILE_READ_DATA,
    w.FILE_WRITE_DATA,
    w.FILE_APPEND_DATA,
    0x8,
    0x10,
    w.FILE_READ_DATA | w.FILE_EXECUTE,
    w.FILE_WRITE_DATA | w.FILE_EXECUTE,
    w.FILE_APPEND_DATA | w.FILE_EXECUTE,
    0x8 | w.FILE_EXECUTE,
    0x10 | w.FILE_EXECUTE,
    w.FILE_EXECUTE,
    0x40,
    w.FILE_READ_ATTRIBUTES,
    w.FILE_WRITE_ATTRIBUTES,
]
SHARE_MODES = list(range(8))


def _data_access(access: int) -> tuple[bool, bool, bool]:
    read = bool(access & (w.GENERIC_READ | w.GENERIC_EXECUTE | w.FILE_READ_DATA | w.FILE_EXECUTE))
    write = bool(access & (w.GENERIC_WRITE | w.FILE_WRITE_DATA | w.FILE_APPEND_DATA))
    return read, write, bool(access & w.DELETE)


def is_sharing_compatible(a1: int, s1: int, a2: int, s2: int) -> bool:
    """Wine's is_sharing_compatible (file.c)."""
    r1, w1, d1 = _data_access(a1)
    r2, w2, d2 = _data_access(a2)
    if not (r1 or w1 or d1):
        s1 = SHARE_ALL
    if not (r2 or w2 or d2):
        s2 = SHARE_ALL
    return not (
        (r1 and not s2 & 1)
        or (w1 and not s2 & 2)
        or (d1 and not s2 & 4)
        or (r2 and not s1 & 1)
        or (w2 and not s1 & 2)
        or (d2 and not s1 & 4)
    )


def test_file_sharing(tmp_path: Path) -> None:
    # [W:k32/file.c:test_file_sharing]: every access x share mode against every other
    path = tmp_path / "shared.bin"
    path.write_bytes(b"x" * 100)
    for a1 in ACCESS_MODES:
        for s1 in SHARE_MODES:
            h = _open(path, a1, s1)
            assert h != w.INVALID_HANDLE_VALUE, (a1, s1, w.GetLastError())
            for a2 in ACCESS_MODES:
                for s2 in SHARE_MODES:
                    h2 = _open(path, a2, s2)
                    err = w.GetLastError()
                    if is_sharing_compatible(a1, s1, a2, s2):
                        assert h2 != w.INVALID_HANDLE_VALUE and err == 0, (a1, s1, a2, s2)
                        assert w.CloseHandle(h2)
                    else:
                        assert h2 == w.INVALID_HANDLE_VALUE, (a1, s1, a2, s2)
                        assert err == w.ERROR_SHARING_VIOLATION, (a1, s1, a2, s2, err)
            assert w.CloseHandle(h)


def test_truncating_open_is_checked_before_it_truncates(tmp_path: Path) -> None:
    # [MS:CreateFileW] (CREATE_ALWAYS / TRUNCATE_EXISTING over a file open without
    # FILE_SHARE_WRITE fail with ERROR_SHARING_VIOLATION and leave the data alone)
    path = tmp_path / "keep.bin"
    path.write_bytes(b"precious")
    h = _open(path, w.GENERIC_READ, w.FILE_SHARE_READ)
    assert h != -1
    for disposition in (w.CREATE_ALWAYS, w.TRUNCATE_EXISTING):
        assert _open(path, w.GENERIC_WRITE, SHARE_ALL, disposition) == -1
        assert w.GetLastError() == w.ERROR_SHARING_VIOLATION
    assert path.read_bytes() == b"precious"
    assert w.CloseHandle(h)
    h = _open(path, w.GENERIC_WRITE, 0, w.CREATE_ALWAYS)
    assert h != -1 and w.GetLastError() == w.ERROR_ALREADY_EXISTS
    assert w.CloseHandle(h)
    assert path.read_bytes() == b""


def test_delete_file_while_open(tmp_path: Path) -> None:
    # [W:k32/file.c:test_DeleteFileA] [MS:DeleteFileW] (open without FILE_SHARE_DELETE:
    # ERROR_SHARING_VIOLATION; with it the file is delete pending: still there, new opens fail
    # ERROR_ACCESS_DENIED, gone when the last handle closes)
    path = tmp_path / "victim.bin"
    path.write_bytes(b"abc")
    h = _open(path, w.GENERIC_READ, w.FILE_SHARE_READ)
    _fails(lambda: w.DeleteFile(str(path)), w.ERROR_SHARING_VIOLATION)
    assert w.CloseHandle(h)
    h = _open(path, w.GENERIC_READ, SHARE_ALL)
    h2 = _open(path, w.GENERIC_READ, SHARE_ALL)
    assert w.DeleteFile(str(path)), w.GetLastError()
    assert path.exists()
    assert _open(path, w.GENERIC_READ, SHARE_ALL) == -1
    assert w.GetLastError() == w.ERROR_ACCESS_DENIED
    buf, n = bytearray(3), w.Ref(0)
    assert w.ReadFile(h, buf, 3, n, None) and bytes(buf) == b"abc"  # still readable
    assert w.CloseHandle(h)
    assert path.exists()
    assert w.CloseHandle(h2)
    assert not path.exists()
    _fails(lambda: w.DeleteFile(str(path)), w.ERROR_FILE_NOT_FOUND)
    _fails(lambda: w.DeleteFile(str(tmp_path / "no" / "x")), w.ERROR_FILE_NOT_FOUND)
    _fails(lambda: w.DeleteFile(str(tmp_path)), w.ERROR_ACCESS_DENIED)


def test_delete_on_close(tmp_path: Path) -> None:
    # [MS:CreateFileW] (FILE_FLAG_DELETE_ON_CLOSE: existing opens must share delete, later
    # opens must ask FILE_SHARE_DELETE; the file goes with the last handle)
    path = tmp_path / "temp.bin"
    path.write_bytes(b"")
    other = _open(path, w.GENERIC_READ, w.FILE_SHARE_READ | w.FILE_SHARE_WRITE)
    assert _open(path, w.GENERIC_WRITE, SHARE_ALL, flags=w.FILE_FLAG_DELETE_ON_CLOSE) == -1
    assert w.GetLastError() == w.ERROR_SHARING_VIOLATION
    assert w.CloseHandle(other)
    h = _open(path, w.GENERIC_WRITE, SHARE_ALL, flags=w.FILE_FLAG_DELETE_ON_CLOSE)
    assert h != -1
    assert _open(path, w.GENERIC_READ, w.FILE_SHARE_READ | w.FILE_SHARE_WRITE) == -1
    assert w.GetLastError() == w.ERROR_SHARING_VIOLATION
    reader = _open(path, w.GENERIC_READ, SHARE_ALL)
    assert reader != -1
    dup = w.Ref(0)
    proc = w.GetCurrentProcess()
    assert w.DuplicateHandle(proc, h, proc, dup, 0, False, w.DUPLICATE_SAME_ACCESS)
    assert w.CloseHandle(h)
    assert path.exists()  # the duplicate keeps the open alive
    assert w.CloseHandle(dup.value)
    assert path.exists()  # delete pending: the other open is still there
    assert _open(path, w.GENERIC_READ, SHARE_ALL) == -1
    assert w.GetLastError() == w.ERROR_ACCESS_DENIED
    assert w.CloseHandle(reader)
    assert not path.exists()
    # a new file created with the flag goes away as well
    fresh = tmp_path / "fresh.bin"
    h = _open(fresh, w.GENERIC_WRITE, 0, w.CREATE_NEW, w.FILE_FLAG_DELETE_ON_CLOSE)
    assert h != -1 and fresh.exists()
    assert w.CloseHandle(h)
    assert not fresh.exists()


# --------------------------------------------------------------------------------------------
# byte-range locks


def test_lock_file(tmp_path: Path) -> None:
    # [W:k32/file.c:test_LockFile]
    path = tmp_path / "lock.bin"
    handle = _open(path, w.GENERIC_READ | w.GENERIC_WRITE, 3, w.CREATE_ALWAYS)
    handle2 = _open(path, w.GENERIC_READ | w.GENERIC_WRITE, 3, w.OPEN_EXISTING)
    assert handle != -1 and handle2 != -1
    assert w.WriteFile(handle, b"some silly text", 15, w.Ref(0), None)
    assert w.LockFile(handle, 0, 0, 0, 0)
    assert w.UnlockFile(handle, 0, 0, 0, 0)
    assert w.LockFile(handle, 10, 0, 20, 0)
    assert not w.LockFile(handle, 12, 0, 10, 0)  # overlapping exclusive locks fail
    assert w.GetLastError() == w.ERROR_LOCK_VIOLATION
    assert not w.LockFile(handle, 5, 0, 6, 0)
    assert w.LockFile(handle, 5, 0, 5, 0)  # adjacent is fine
    _fails(lambda: w.UnlockFile(handle, 10, 0, 10, 0), w.ERROR_NOT_LOCKED)
    assert w.UnlockFile(handle, 10, 0, 20, 0)
    _fails(lambda: w.UnlockFile(handle, 10, 0, 20, 0), w.ERROR_NOT_LOCKED)
    assert w.UnlockFile(handle, 5, 0, 5, 0)
    ov = w.OVERLAPPED(Offset=100)
    assert w.LockFileEx(handle, 0, 0, 100, 0, ov)
    assert w.LockFileEx(handle, 0, 0, 100, 0, ov)  # shared twice
    ov.Offset = 150
    assert w.LockFileEx(handle, 0, 0, 100, 0, ov)  # overlapping shared locks are fine
    flags = w.LOCKFILE_EXCLUSIVE_LOCK | w.LOCKFILE_FAIL_IMMEDIATELY
    _fails(lambda: w.LockFileEx(handle, flags, 0, 50, 0, ov), w.ERROR_LOCK_VIOLATION)
    assert w.UnlockFileEx(handle, 0, 100, 0, ov)
    ov.Offset = 100
    assert w.UnlockFileEx(handle, 0, 100, 0, ov)
    assert w.UnlockFileEx(handle, 0, 100, 0, ov)
    _fails(lambda: w.UnlockFileEx(handle, 0, 100, 0, ov), w.ERROR_NOT_LOCKED)
    # a shared lock may sit inside the same handle's exclusive lock, not another handle's
    ov.Offset = 300
    assert w.LockFileEx(handle, w.LOCKFILE_EXCLUSIVE_LOCK, 0, 100, 0, ov)
    _fails(
        lambda: w.LockFileEx(handle2, w.LOCKFILE_FAIL_IMMEDIATELY, 0, 100, 0, ov),
        w.ERROR_LOCK_VIOLATION,
    )
    assert w.LockFileEx(handle, w.LOCKFILE_FAIL_IMMEDIATELY, 0, 100, 0, ov)
    assert w.UnlockFileEx(handle, 0, 100, 0, ov)  # the exclusive lock goes first
    assert w.LockFileEx(handle2, w.LOCKFILE_FAIL_IMMEDIATELY, 0, 100, 0, ov)
    assert w.UnlockFileEx(handle2, 0, 100, 0, ov)
    assert w.UnlockFileEx(handle, 0, 100, 0, ov)
    # 64-bit ranges
    assert w.LockFile(handle, 0, 0x10000000, 0, 0xF0000000)
    assert not w.LockFile(handle, 0xFFFFFFFF, 0xFFFFFFFF, 1, 0)
    assert not w.LockFile(handle, 0, 0x20000000, 20, 0)
    assert w.UnlockFile(handle, 0, 0x10000000, 0, 0xF0000000)
    _fails(lambda: w.LockFile(handle, 0, 0x10000000, 0, 0xF0000001), w.ERROR_INVALID_LOCK_RANGE)
    assert w.LockFile(handle, 0xFFFFFFFF, 0xFFFFFFFF, 1, 0)
    assert w.UnlockFile(handle, 0xFFFFFFFF, 0xFFFFFFFF, 1, 0)
    # a zero-byte lock is a point
    assert w.LockFile(handle, 100, 0, 0, 0)
    assert not w.LockFile(handle, 98, 0, 4, 0)
    assert w.LockFile(handle, 90, 0, 10, 0)
    assert not w.LockFile(handle, 100, 0, 10, 0)
    assert w.UnlockFile(handle, 90, 0, 10, 0)
    _fails(lambda: w.UnlockFile(handle, 100, 0, 10, 0), w.ERROR_NOT_LOCKED)
    assert w.UnlockFile(handle, 100, 0, 0, 0)
    assert w.CloseHandle(handle2) and w.CloseHandle(handle)


def test_lock_file_ex_waits_on_overlapped_handles(io) -> None:
    # [MS:LockFileEx] (without LOCKFILE_FAIL_IMMEDIATELY an overlapped handle gets
    # ERROR_IO_PENDING and the OVERLAPPED reports the grant: event, then the port packet; the
    # waiter is granted when the holder unlocks or closes; a cancel aborts it)
    path = io.path()
    holder = io.file(b"0123456789" * 10, path=path)
    flags = w.FILE_FLAG_OVERLAPPED
    waiter = io.keep(_open(path, w.GENERIC_READ | w.GENERIC_WRITE, SHARE_ALL, flags=flags))
    assert w.LockFileEx(holder, w.LOCKFILE_EXCLUSIVE_LOCK, 0, 10, 0, io.ov(Offset=20))
    port = io.port(waiter, key=3)
    ov = io.ov_event(Offset=25)
    w.SetLastError(SENTINEL)
    assert not w.LockFileEx(waiter, w.LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, ov)
    assert w.GetLastError() == w.ERROR_IO_PENDING
    assert ov.Internal == w.STATUS_PENDING
    assert io.stays_nonsignaled(ov.hEvent)
    io.no_packet(port)
    assert w.UnlockFileEx(holder, 0, 10, 0, io.ov(Offset=20))
    io.wait_signaled(ov.hEvent)
    assert io.result(waiter, ov) == (True, 0, 0)
    pk = io.gqcs(port, io.LONG)
    assert pk.ok and pk.overlapped is ov and pk.key == 3
    # closing the holder releases its locks and grants the next waiter
    ov2 = io.ov_event(Offset=25)
    assert not w.LockFileEx(holder, w.LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, ov2)
    assert w.GetLastError() == w.ERROR_IO_PENDING
    io.close(waiter)
    io.wait_signaled(ov2.hEvent)
    assert io.result(holder, ov2) == (True, 0, 0)
    # a cancelled wait
    other = io.keep(_open(path, w.GENERIC_READ, SHARE_ALL, flags=flags))
    ov3 = io.ov_event(Offset=25)
    assert not w.LockFileEx(other, 0, 0, 1, 0, ov3)
    assert w.CancelIoEx(other, ov3)
    io.wait_signaled(ov3.hEvent)
    assert io.result(other, ov3) == (False, w.ERROR_OPERATION_ABORTED, 0)


def test_lock_file_ex_on_synchronous_handle_blocks(io, testing) -> None:
    # [MS:LockFileEx] (a synchronous handle waits in the call until the lock is granted)
    path = io.path()
    holder = io.file(b"x" * 10, overlapped=False, path=path)
    second = io.keep(_open(path, w.GENERIC_READ | w.GENERIC_WRITE, SHARE_ALL))
    assert w.LockFile(holder, 0, 0, 10, 0)
    worker = io.thread(
        lambda: (
            0
            if w.LockFileEx(second, w.LOCKFILE_EXCLUSIVE_LOCK, 0, 10, 0, w.OVERLAPPED())
            else w.GetLastError()
        )
    )
    testing.wait_until_blocked(worker.tid)
    assert worker.is_running()
    assert w.UnlockFile(holder, 0, 0, 10, 0)
    assert worker.join() == 0
    assert not w.LockFile(holder, 0, 0, 10, 0)


def test_locks_are_visible_to_other_processes(tmp_path: Path) -> None:
    # [MS:LockFileEx] mapped to OFD locks: another process cannot lock the range (fcntl)
    path = tmp_path / "shared-lock.bin"
    path.write_bytes(b"x" * 100)
    h = _open(path, w.GENERIC_READ | w.GENERIC_WRITE, SHARE_ALL)
    assert w.LockFileEx(h, w.LOCKFILE_EXCLUSIVE_LOCK, 0, 10, 0, w.OVERLAPPED(Offset=10))
    probe = (
        "import fcntl,os,sys\n"
        "fd=os.open(sys.argv[1],os.O_RDWR)\n"
        "def try_lock(start):\n"
        "    try:\n"
        "        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 5, start)\n"
        "        fcntl.lockf(fd, fcntl.LOCK_UN, 5, start)\n"
        "        return 'free'\n"
        "    except OSError:\n"
        "        return 'locked'\n"
        "print(try_lock(12), try_lock(50))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=30
    )
    assert out.stdout.split() == ["locked", "free"], out.stderr
    assert w.UnlockFileEx(h, 0, 10, 0, w.OVERLAPPED(Offset=10))
    out = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=30
    )
    assert out.stdout.split() == ["free", "free"], out.stderr
    assert w.CloseHandle(h)


def test_lock_bad_input(io) -> None:
    # [MS:LockFileEx] (dwReserved must be 0, lpOverlapped is required) [MS:LockFile]
    # (handles that are not disk files: ERROR_INVALID_FUNCTION; no data access: ACCESS_DENIED)
    f = io.file(b"x")
    _fails(lambda: w.LockFileEx(f, 0, 1, 1, 0, io.ov()), w.ERROR_INVALID_PARAMETER)
    _fails(lambda: w.LockFileEx(f, 0, 0, 1, 0, None), w.ERROR_INVALID_PARAMETER)
    _fails(lambda: w.LockFileEx(f, 0x10, 0, 1, 0, io.ov()), w.ERROR_INVALID_PARAMETER)
    _fails(lambda: w.UnlockFileEx(f, 1, 1, 0, io.ov()), w.ERROR_INVALID_PARAMETER)
    _fails(lambda: w.UnlockFileEx(f, 0, 1, 0, None), w.ERROR_INVALID_PARAMETER)
    server, _client = io.pipe()
    _fails(lambda: w.LockFile(server, 0, 0, 1, 0), w.ERROR_INVALID_FUNCTION)
    blind = io.file(b"y", access=w.FILE_READ_ATTRIBUTES)
    _fails(lambda: w.LockFile(blind, 0, 0, 1, 0), w.ERROR_ACCESS_DENIED)
    closed = io.file(b"z")
    io.close(closed)
    for handle in (0, io.event(), closed, w.INVALID_HANDLE_VALUE):
        _fails(lambda h=handle: w.LockFile(h, 0, 0, 1, 0), w.ERROR_INVALID_HANDLE)
        _fails(lambda h=handle: w.UnlockFileEx(h, 0, 1, 0, io.ov()), w.ERROR_INVALID_HANDLE)


# --------------------------------------------------------------------------------------------
# SetEndOfFile, GetFileType, FlushFileBuffers, ReadFileScatter


def test_set_end_of_file(io) -> None:
    # [MS:SetEndOfFile] (the end moves to the file pointer, which stays put; extending fills
    # with zeros; a handle without write access gets ERROR_ACCESS_DENIED)
    h = io.file(b"0123456789", overlapped=False)
    assert w.SetFilePointer(h, 4, None, w.FILE_BEGIN) == 4
    assert w.SetEndOfFile(h)
    size = w.Ref(0)
    assert w.GetFileSizeEx(h, size) and size.value == 4
    assert w.SetFilePointer(h, 0, None, w.FILE_CURRENT) == 4
    assert w.SetFilePointer(h, 8, None, w.FILE_BEGIN) == 8
    assert w.SetEndOfFile(h)
    assert w.GetFileSizeEx(h, size) and size.value == 8
    assert w.SetFilePointer(h, 0, None, w.FILE_BEGIN) == 0
    buf, n = bytearray(8), w.Ref(0)
    assert w.ReadFile(h, buf, 8, n, None) and bytes(buf) == b"0123\0\0\0\0"
    ro = io.file(b"abc", overlapped=False, access=w.GENERIC_READ)
    _fails(lambda: w.SetEndOfFile(ro), w.ERROR_ACCESS_DENIED)
    server, _client = io.pipe()
    for handle in (server, io.event(), 0):
        _fails(lambda h=handle: w.SetEndOfFile(h), w.ERROR_INVALID_HANDLE)


def test_get_file_type(io, tmp_path: Path) -> None:
    # [MS:GetFileType]
    assert w.GetFileType(io.file(b"x")) == w.FILE_TYPE_DISK
    server, client = io.pipe()
    assert w.GetFileType(server) == w.GetFileType(client) == w.FILE_TYPE_PIPE
    r, _wr = io.anon_pipe()
    assert w.GetFileType(r) == w.FILE_TYPE_PIPE
    assert w.GetFileType(io.tcp_socket()) == w.FILE_TYPE_PIPE
    null = io.keep(_open("/dev/null", w.GENERIC_READ, SHARE_ALL))
    assert w.GetFileType(null) == w.FILE_TYPE_CHAR
    d = io.keep(_open(tmp_path, w.GENERIC_READ, SHARE_ALL, flags=w.FILE_FLAG_BACKUP_SEMANTICS))
    assert w.GetFileType(d) == w.FILE_TYPE_DISK
    for handle in (0, io.event(), w.INVALID_HANDLE_VALUE):
        w.SetLastError(SENTINEL)
        assert w.GetFileType(handle) == w.FILE_TYPE_UNKNOWN
        assert w.GetLastError() == w.ERROR_INVALID_HANDLE


def test_flush_file_buffers_needs_write_access(io) -> None:
    # [MS:FlushFileBuffers] ("The handle must have the GENERIC_WRITE access right")
    assert w.FlushFileBuffers(io.file(b"x", overlapped=False))
    ro = io.file(b"x", overlapped=False, access=w.GENERIC_READ)
    _fails(lambda: w.FlushFileBuffers(ro), w.ERROR_ACCESS_DENIED)


@pytest.mark.parametrize("start", [0, 4096])
def test_read_file_scatter_past_eof_leaves_later_segments(io, start: int) -> None:
    # [MS:ReadFileScatter] (a read crossing the end of file fills the segments up to it; the
    # later segments are not written)
    import mmap

    h = io.file(b"A" * (start + 5000), extra_flags=w.FILE_FLAG_NO_BUFFERING)
    segments = [mmap.mmap(-1, 4096) for _ in range(4)]
    for seg in segments:
        seg.write(b"\xee" * 4096)
    ov = io.ov_event(Offset=start)
    if not w.ReadFileScatter(h, segments, 4 * 4096, None, ov):
        assert w.GetLastError() == w.ERROR_IO_PENDING
    assert io.result(h, ov, wait=True) == (True, 0, 5000)
    assert bytes(segments[0][:4]) == b"AAAA"
    assert bytes(segments[1][:904]) == b"A" * 904
    assert bytes(segments[2]) == bytes(segments[3]) == b"\xee" * 4096
