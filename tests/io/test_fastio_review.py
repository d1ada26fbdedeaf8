"""robust's review of the C accelerator (cext, ``winaio._io._fastio``): what the C hot shapes of
``winaio.win32.ReadFile`` and ``GetQueuedCompletionStatusEx`` do with an exception raised
while they look the handle up, against the Python functions (the reference).

A BaseException there - a Ctrl-C's KeyboardInterrupt landing in the handle's ``__hash__`` or
anywhere the lookup runs Python code - must propagate, as it does from the Python functions.
The C code cleared any error of the lookup (``PyErr_Clear``, meant for an unhashable handle)
and ran the Python function instead: the interrupt was lost and the call went on.

Runs the Python path always; the C path where the accelerator is built (after cext merges).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import winaio.win32 as w
from winaio._io import _disk


class Interrupted(BaseException):
    """Stands for KeyboardInterrupt."""


class _Handle(int):
    """A handle whose first hash raises, as a signal handler would during the lookup."""

    armed = False

    def __hash__(self) -> int:
        if _Handle.armed:
            _Handle.armed = False
            raise Interrupted
        return int.__hash__(self)


def _paths() -> list[str]:
    paths = ["python"]
    if getattr(_disk, "accelerator_available", lambda: False)():
        paths.append("c")
    return paths


@pytest.fixture(params=_paths())
def path(request: pytest.FixtureRequest) -> Iterator[str]:
    use: Callable[[bool], bool] | None = getattr(_disk, "use_accelerator", None)
    before = use(request.param == "c") if use is not None else False
    try:
        yield request.param
    finally:
        if use is not None:
            use(before)
        _Handle.armed = False


@pytest.fixture
def cached_file(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """An overlapped handle on a 4 KiB file (in the page cache) bound to a port."""
    name = tmp_path / "f"
    name.write_bytes(os.urandom(4096))
    h = w.CreateFileW(
        str(name), w.GENERIC_READ, 0, None, w.OPEN_EXISTING, w.FILE_FLAG_OVERLAPPED, None
    )
    port = w.CreateIoCompletionPort(h, None, 7, 0)
    yield h, port
    w.CloseHandle(h)
    w.CloseHandle(port)


def test_an_interrupt_in_the_read_files_handle_lookup_propagates(
    path: str, cached_file: tuple[Any, Any]
) -> None:
    h, port = cached_file
    ov = w.OVERLAPPED()
    buf = bytearray(4096)
    _Handle.armed = True
    with pytest.raises(Interrupted):
        w.ReadFile(_Handle(h), buf, 4096, None, ov)
    # Nothing was issued: the port has no packet.
    entries = [w.OVERLAPPED_ENTRY()]
    removed = w.Ref(0)
    assert not w.GetQueuedCompletionStatusEx(port, entries, 1, removed, 0, False)


def test_an_interrupt_in_the_port_waits_handle_lookup_propagates(
    path: str, cached_file: tuple[Any, Any]
) -> None:
    _, port = cached_file
    assert w.PostQueuedCompletionStatus(port, 1, 2, None)
    entries = [w.OVERLAPPED_ENTRY()]
    removed = w.Ref(0)
    _Handle.armed = True
    with pytest.raises(Interrupted):
        w.GetQueuedCompletionStatusEx(_Handle(port), entries, 1, removed, w.INFINITE, False)
    # The packet is still there for the next wait.
    assert w.GetQueuedCompletionStatusEx(port, entries, 1, removed, 0, False)
    assert removed.value == 1 and entries[0].dwNumberOfBytesTransferred == 1
