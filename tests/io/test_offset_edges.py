"""File offsets at the edges, through the fast paths that read the offset at issue (the cached
read's ``read_now``, the O_DIRECT hot path, ``winaio.win32``'s ``issue_offset``).

- preadv2 (and an io_uring READ) at offset -1 reads at the *file pointer*: a core offset of -1
  must not reach it. ``DiskFile.read_now`` passed it straight through, so ``start_read`` with
  ``Overlapped(-1)`` read at the file pointer and succeeded, instead of ERROR_NEGATIVE_SEEK as
  every other negative offset (and as ``start_write``); ReadFile with ``Offset = -1`` (DWORD
  0xFFFFFFFF, 4 GiB - 1) read at the file pointer too, instead of past the end of a small file.
- An offset of 2**63 or more (OffsetHigh >= 0x80000000: a negative LARGE_INTEGER on Windows,
  STATUS_INVALID_PARAMETER) raised a bare OverflowError from the syscall's argument parsing;
  it is ERROR_INVALID_PARAMETER at issue, on cached and O_DIRECT handles, reads and writes.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import winaio
import winaio.testing as wt
import winaio.win32 as w
from winaio._io._overlapped import Overlapped
from winaio.codes import WinError

BLOCK = 4096
SIZE = 16 * BLOCK

# The cached read's offset checks run in C (``winaio._io._fastio``) or Python: both, in turn.
pytestmark = pytest.mark.usefixtures("fast_path_impl")


@pytest.fixture(params=["io_uring", "threads"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    with wt.backend_for_test(request.param) as name:
        yield name


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = tmp_path / "data"
    p.write_bytes(os.urandom(SIZE))
    return p


def _open(path: Path, direct: bool) -> winaio.DiskFile:
    try:
        f, _ = winaio.open_file(
            str(path), read=True, write=True, disposition=3, overlapped=True, direct=direct
        )
    except winaio.Win32Error as exc:
        pytest.skip(f"cannot open with direct={direct}: {exc}")
    return f


def _aligned() -> memoryview:
    return memoryview(mmap.mmap(-1, BLOCK))


def test_a_read_at_offset_minus_one_is_a_negative_seek(backend: str, path: Path) -> None:
    f = _open(path, direct=False)
    try:
        buf = bytearray(BLOCK)
        with pytest.raises(winaio.Win32Error) as info:
            f.start_read(buf, Overlapped(-1))
        assert info.value.winerror == WinError.ERROR_NEGATIVE_SEEK
        assert buf == bytearray(BLOCK)  # nothing was read (at the file pointer or anywhere)
        assert os.lseek(f.fd, 0, os.SEEK_CUR) == 0
    finally:
        f.close()


@pytest.mark.parametrize("offset", [1 << 63, (1 << 64) - BLOCK, 1 << 70], ids=hex)
@pytest.mark.parametrize("direct", [False, True], ids=["cached", "direct"])
@pytest.mark.parametrize("method", ["start_read", "start_write"])
def test_an_offset_beyond_63_bits_is_an_invalid_parameter(
    backend: str, path: Path, offset: int, direct: bool, method: str
) -> None:
    f = _open(path, direct)
    try:
        with pytest.raises(winaio.Win32Error) as info:
            getattr(f, method)(_aligned(), Overlapped(offset))
        assert info.value.winerror == WinError.ERROR_INVALID_PARAMETER
        assert f.pending_requests == 0
    finally:
        f.close()


def test_readfile_at_offset_dword_minus_one_reads_past_the_end(backend: str, path: Path) -> None:
    """Offset = -1 is the DWORD 0xFFFFFFFF (4 GiB - 1): past the end of a 64 KiB file."""
    # spec: win32 #63
    h = w.CreateFile(
        str(path), w.GENERIC_READ, 0, None, w.OPEN_EXISTING, w.FILE_FLAG_OVERLAPPED, None
    )
    assert h != w.INVALID_HANDLE_VALUE
    try:
        ov = w.OVERLAPPED()
        ov.Offset = -1
        buf = bytearray(BLOCK)
        count = w.Ref(0)
        if w.ReadFile(h, buf, BLOCK, count, ov):
            pytest.fail(f"read {count.value} bytes at offset {ov.offset}")
        if w.GetLastError() == w.ERROR_IO_PENDING:
            assert not w.GetOverlappedResult(h, ov, count, True)
        assert w.GetLastError() == w.ERROR_HANDLE_EOF
        assert count.value == 0 and buf == bytearray(BLOCK)
    finally:
        w.CloseHandle(h)


@pytest.mark.parametrize(
    "flags", [w.FILE_FLAG_OVERLAPPED, w.FILE_FLAG_OVERLAPPED | w.FILE_FLAG_NO_BUFFERING],
    ids=["cached", "direct"],
)  # fmt: skip
@pytest.mark.parametrize("call", ["ReadFile", "WriteFile"])
def test_readfile_writefile_with_offsethigh_over_2_31_fail_with_invalid_parameter(
    backend: str, path: Path, flags: int, call: str
) -> None:
    access = w.GENERIC_READ | w.GENERIC_WRITE
    h = w.CreateFile(str(path), access, 0, None, w.OPEN_EXISTING, flags, None)
    if h == w.INVALID_HANDLE_VALUE:
        pytest.skip(f"cannot open with flags {flags:#x}: {w.GetLastError()}")
    try:
        ov = w.OVERLAPPED(OffsetHigh=0xFFFFFFFF)
        assert getattr(w, call)(h, _aligned(), BLOCK, None, ov) is False
        assert w.GetLastError() == WinError.ERROR_INVALID_PARAMETER
    finally:
        w.CloseHandle(h)
