"""OVERLAPPED fields a Python caller leaves as None, through GetOverlappedResult(Ex).

ReadFile/WriteFile take ``hEvent = None`` as NULL (no event; the file object is signalled);
GetOverlappedResult on the same OVERLAPPED raised a bare TypeError (``None & 1``, the
"no packet" bit test). And a NULL ``lpOverlapped`` (None) raised AssertionError: a Python
caller gets FALSE and ERROR_INVALID_PARAMETER (Windows itself faults on it).
"""

from __future__ import annotations

import os
from pathlib import Path

import winaio.win32 as w
from winaio.codes import WinError

BLOCK = 4096


def _open(tmp_path: Path) -> int:
    path = tmp_path / "data"
    path.write_bytes(os.urandom(BLOCK))
    h = w.CreateFile(
        str(path), w.GENERIC_READ, 0, None, w.OPEN_EXISTING, w.FILE_FLAG_OVERLAPPED, None
    )
    assert h != w.INVALID_HANDLE_VALUE
    return h


def test_getoverlappedresult_takes_a_none_hevent_as_null(tmp_path: Path) -> None:
    h = _open(tmp_path)
    try:
        ov = w.OVERLAPPED()
        ov.hEvent = None
        buf = bytearray(BLOCK)
        if not w.ReadFile(h, buf, BLOCK, None, ov):
            assert w.GetLastError() == w.ERROR_IO_PENDING
        count = w.Ref(0)
        assert w.GetOverlappedResult(h, ov, count, True)
        assert count.value == BLOCK
    finally:
        w.CloseHandle(h)


def test_getoverlappedresult_without_an_overlapped_is_an_invalid_parameter(
    tmp_path: Path,
) -> None:
    h = _open(tmp_path)
    try:
        count = w.Ref(7)
        assert w.GetOverlappedResult(h, None, count, False) is False
        assert w.GetLastError() == WinError.ERROR_INVALID_PARAMETER
        assert w.GetOverlappedResultEx(h, None, count, 0, False) is False
        assert w.GetLastError() == WinError.ERROR_INVALID_PARAMETER
    finally:
        w.CloseHandle(h)
