"""OVERLAPPED.Offset / OffsetHigh are plain fields, read when a function issues the request
(issue 9: the alias layer's cost; docs/design.md "The alias layer").

[MS:OVERLAPPED]: "Offset: the low-order portion of the file position at which to start the I/O
request"; the kernel reads it when the request is issued, as DWORDs. Pinned here, without timing:

- Differential: ReadFile's inlined page-cache shape (a port-bound overlapped handle, no
  ``hEvent``) and the general path (an ``hEvent``), ReadFileEx, WriteFile, FILE_FLAG_NO_BUFFERING
  and LockFileEx all read at the offset the fields hold when the call is made - assigned after
  construction, out of DWORD range (taken modulo 2**32) or above 4 GiB (OffsetHigh).
- A field that is not an integer fails the call with ERROR_INVALID_PARAMETER and issues nothing.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from typing import Any

import pytest

import winaio.win32 as w
from winaio import testing

BLOCK = 4096
HIGH = 1  # OffsetHigh of the block written past 4 GiB
FAR = (HIGH << 32) + 3 * BLOCK


@pytest.fixture(params=testing.available_backends())
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    with testing.using_backend(name):
        yield name


def _block(i: int) -> bytes:
    return bytes([i + 1]) * BLOCK


@pytest.fixture
def path(tmp_path: Any) -> str:
    """Four distinct blocks, then one more past 4 GiB (a sparse file), all in the page cache."""
    p = str(tmp_path / "data.bin")
    with open(p, "wb") as f:
        f.write(b"".join(_block(i) for i in range(4)))
        f.seek(FAR)
        f.write(_block(9))
    with open(p, "rb") as f:
        f.read(4 * BLOCK)
        f.seek(FAR)
        f.read()
    return p


def _open(path: str, flags: int = w.FILE_FLAG_OVERLAPPED, write: bool = False) -> int:
    access = w.GENERIC_READ | (w.GENERIC_WRITE if write else 0)
    share = w.FILE_SHARE_READ | w.FILE_SHARE_WRITE
    handle = w.CreateFile(path, access, share, None, w.OPEN_EXISTING, flags, None)
    assert handle != w.INVALID_HANDLE_VALUE
    return handle


class _Reader:
    """ReadFile through one shape; ``read(ov)`` -> (returned, last error, bytes)."""

    def __init__(self, path: str, shape: str) -> None:
        self.shape = shape
        direct = w.FILE_FLAG_NO_BUFFERING if shape == "direct" else 0
        self.handle = _open(path, w.FILE_FLAG_OVERLAPPED | direct)
        self.plain = _open(path)  # ReadFileEx's: APC I/O on a port-bound handle is refused
        self.port = w.CreateIoCompletionPort(self.handle, None, 7, 0)
        assert self.port
        self.event = w.CreateEvent(None, True, False, None)
        self.mem = mmap.mmap(-1, BLOCK)  # page-aligned: FILE_FLAG_NO_BUFFERING accepts it
        self.view = memoryview(self.mem)

    def overlapped(self) -> w.OVERLAPPED:
        return w.OVERLAPPED(hEvent=self.event) if self.shape == "event" else w.OVERLAPPED()

    def read(self, ov: w.OVERLAPPED) -> tuple[bool, int, bytes]:
        self.view[:] = bytes(BLOCK)
        w.SetLastError(0)
        if self.shape == "readfileex":
            done: list[tuple[int, int]] = []

            def routine(error: int, count: int, _ov: Any) -> None:
                done.append((error, count))

            if not w.ReadFileEx(self.plain, self.view, BLOCK, ov, routine):
                return False, w.GetLastError(), b""
            assert w.SleepEx(5000, True) == w.WAIT_IO_COMPLETION
            error, count = done[0]
            return not error, error, bytes(self.view[:count])
        ok = w.ReadFile(self.handle, self.view, BLOCK, None, ov)
        error = w.GetLastError()
        if not ok and error != w.ERROR_IO_PENDING:
            assert self._no_packet()
            return False, error, b""
        n, key, out = w.Ref(0), w.Ref(0), w.Ref(None)
        got = w.GetQueuedCompletionStatus(self.port, n, key, out, 5000)
        assert out.value is ov
        return got, 0 if got else w.GetLastError(), bytes(self.view[: n.value])

    def _no_packet(self) -> bool:
        n, key, out = w.Ref(0), w.Ref(0), w.Ref(None)
        return not w.GetQueuedCompletionStatus(self.port, n, key, out, 0)

    def close(self) -> None:
        self.view.release()
        self.mem.close()
        for h in (self.handle, self.plain, self.port, self.event):
            assert w.CloseHandle(h)


SHAPES = ["cached", "event", "direct", "readfileex"]


@pytest.fixture(params=SHAPES)
def reader(request: pytest.FixtureRequest, backend: str, path: str) -> Iterator[_Reader]:
    r = _Reader(path, request.param)
    try:
        yield r
    finally:
        r.close()


def test_the_offset_is_read_when_the_call_is_made(reader: _Reader) -> None:
    ov = reader.overlapped()
    for i in (2, 0, 3, 1):
        ov.Offset = i * BLOCK  # assigned after construction, between calls
        assert reader.read(ov) == (True, 0, _block(i))
    ov.Offset, ov.OffsetHigh = FAR & 0xFFFFFFFF, HIGH  # past 4 GiB
    assert reader.read(ov) == (True, 0, _block(9))
    ov.OffsetHigh = 0
    assert reader.read(ov) == (True, 0, _block(3))
    built = w.OVERLAPPED(Offset=BLOCK, hEvent=ov.hEvent)  # the constructor's fields
    assert reader.read(built) == (True, 0, _block(1))


def test_the_fields_are_dwords(reader: _Reader) -> None:
    """C assigns an int to a DWORD modulo 2**32: so does the read of each field."""
    ov = reader.overlapped()
    ov.Offset = (5 << 32) + 2 * BLOCK  # high bits of Offset do not leak into OffsetHigh
    assert reader.read(ov) == (True, 0, _block(2))
    ov.Offset, ov.OffsetHigh = (FAR & 0xFFFFFFFF) - (1 << 32), HIGH - (1 << 32)
    assert reader.read(ov) == (True, 0, _block(9))  # -x is 2**32 - x


@pytest.mark.parametrize("field", ["Offset", "OffsetHigh"])
def test_a_field_that_is_not_an_integer_fails_the_call(reader: _Reader, field: str) -> None:
    ov = reader.overlapped()
    setattr(ov, field, 1.5)
    assert reader.read(ov) == (False, w.ERROR_INVALID_PARAMETER, b"")


def test_writes_and_locks_use_the_fields_at_the_call(backend: str, path: str) -> None:
    handle = _open(path, write=True)
    event = w.CreateEvent(None, True, False, None)
    lockers = [_open(path, 0, write=True) for _ in range(2)]  # LockFileEx: [W:k32/file.c]
    try:
        ov = w.OVERLAPPED(hEvent=event)
        ov.Offset = BLOCK
        ok = w.WriteFile(handle, b"x" * 8, 8, None, ov)
        assert ok or w.GetLastError() == w.ERROR_IO_PENDING
        n = w.Ref(0)
        assert w.GetOverlappedResult(handle, ov, n, True) and n.value == 8
        with open(path, "rb") as f:
            f.seek(BLOCK)
            assert f.read(9) == b"x" * 8 + _block(1)[:1]
        mine, theirs = lockers
        lock = w.OVERLAPPED()
        lock.Offset = 2 * BLOCK
        assert w.LockFileEx(mine, w.LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, lock)
        probe = w.OVERLAPPED()
        fail_now = w.LOCKFILE_EXCLUSIVE_LOCK | w.LOCKFILE_FAIL_IMMEDIATELY
        probe.Offset = 2 * BLOCK
        assert not w.LockFileEx(theirs, fail_now, 0, 1, 0, probe)
        assert w.GetLastError() == w.ERROR_LOCK_VIOLATION
        probe.Offset = 0
        assert w.LockFileEx(theirs, fail_now, 0, 1, 0, probe)
        assert w.UnlockFileEx(theirs, 0, 1, 0, probe)
        lock.Offset = 0  # UnlockFileEx reads the fields too: no lock there
        assert not w.UnlockFileEx(mine, 0, 1, 0, lock)
        assert w.GetLastError() == w.ERROR_NOT_LOCKED
        lock.Offset = 2 * BLOCK
        assert w.UnlockFileEx(mine, 0, 1, 0, lock)
    finally:
        for h in (handle, event, *lockers):
            assert w.CloseHandle(h)


def test_the_subclass_shape_of_the_benchmarks(backend: str, path: str) -> None:
    """An application's OVERLAPPED subclass (bench_io's) takes the same inlined shape."""

    class SlotOVERLAPPED(w.OVERLAPPED):
        __slots__ = ("slot",)

    reader = _Reader(path, "cached")
    try:
        sub = SlotOVERLAPPED()
        for i in (3, 1):
            sub.Offset = i * BLOCK
            assert reader.read(sub) == (True, 0, _block(i))
        sub.Offset = "0"  # type: ignore[assignment]
        assert reader.read(sub) == (False, w.ERROR_INVALID_PARAMETER, b"")
    finally:
        reader.close()


def test_the_fields_are_slots() -> None:
    """Plain fields of the instance, no ``__dict__``: a misspelt field still fails."""
    ov = w.OVERLAPPED()
    assert (ov.Offset, ov.OffsetHigh, ov.hEvent, ov.Internal, ov.InternalHigh) == (0, 0, 0, 0, 0)
    with pytest.raises(AttributeError):
        ov.Ofset = 1  # type: ignore[attr-defined]
