"""Audit fixtures for Win32 acceptance behaviours (win32-async-spec.md §11) through
``winaio.win32``: each test runs on both I/O backends and gets a ``kit`` that creates files,
pipes, ports and ``CreateThread`` threads and closes or joins them all afterwards.

Same rules as tests/conformance_io: no sleeping to synchronise (``winaio.testing.wait_until_*``),
5000 ms bounds on waits that must succeed, 100-300 ms on waits that must time out.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import winaio.testing as wt
import winaio.win32 as w

LONG = 5000
SHORT = 100
SENTINEL = 0xDEADBEEF
_names = itertools.count()


class Thread:
    """A ``CreateThread`` thread running ``body()``; an assertion inside is re-raised by join."""

    def __init__(self, body: Callable[[], Any]) -> None:
        self.body = body
        self.error: BaseException | None = None
        tid = w.Ref(0)
        self.handle: int = w.CreateThread(None, 0, self._start, None, 0, tid)
        assert self.handle, w.GetLastError()
        self.tid: int = tid.value
        self.joined = False

    def _start(self, _param: object) -> int:
        try:
            self.body()
        except Exception as exc:
            self.error = exc
            return 1
        return 0

    def join(self) -> None:
        assert w.WaitForSingleObject(self.handle, LONG) == w.WAIT_OBJECT_0
        self.joined = True
        if self.error is not None:
            raise self.error

    def still_running(self, ms: int = SHORT) -> bool:
        return bool(w.WaitForSingleObject(self.handle, ms) == w.WAIT_TIMEOUT)


class Kit:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.handles: list[int] = []
        self.threads: list[Thread] = []
        self.cleanups: list[Callable[[], Any]] = []

    def keep(self, h: int) -> int:
        assert h not in (0, w.INVALID_HANDLE_VALUE), f"creation failed: {w.GetLastError()}"
        self.handles.append(h)
        return h

    def file(self, data: bytes = b"", *, overlapped: bool = True) -> int:
        path = self.tmp_path / f"f{next(_names)}"
        path.write_bytes(data)
        flags = w.FILE_ATTRIBUTE_NORMAL | (w.FILE_FLAG_OVERLAPPED if overlapped else 0)
        return self.keep(
            w.CreateFile(
                str(path),
                w.GENERIC_READ | w.GENERIC_WRITE,
                w.FILE_SHARE_READ | w.FILE_SHARE_WRITE,
                None,
                w.OPEN_EXISTING,
                flags,
                0,
            )
        )

    def pipe(self, *, client_overlapped: bool = True) -> tuple[int, int]:
        """A connected byte-mode named-pipe pair (overlapped server, client)."""
        name = rf"\\.\pipe\winaio-audit-{uuid.uuid4().hex[:12]}"
        server = self.keep(
            w.CreateNamedPipe(
                name,
                w.PIPE_ACCESS_DUPLEX | w.FILE_FLAG_OVERLAPPED,
                w.PIPE_TYPE_BYTE | w.PIPE_READMODE_BYTE | w.PIPE_WAIT,
                1,
                4096,
                4096,
                0,
                None,
            )
        )
        client = self.keep(
            w.CreateFile(
                name,
                w.GENERIC_READ | w.GENERIC_WRITE,
                0,
                None,
                w.OPEN_EXISTING,
                w.FILE_FLAG_OVERLAPPED if client_overlapped else 0,
                0,
            )
        )
        return server, client

    def event(self, *, manual: bool = True, initial: bool = False) -> int:
        return self.keep(w.CreateEvent(None, manual, initial, None))

    def port(self, handle: int | None = None, key: int = 0) -> int:
        port = w.CreateIoCompletionPort(w.INVALID_HANDLE_VALUE, 0, 0, 0)
        self.keep(port)
        if handle is not None:
            assert w.CreateIoCompletionPort(handle, port, key, 0) == port
        return port

    def thread(self, body: Callable[[], Any]) -> Thread:
        t = Thread(body)
        self.threads.append(t)
        self.handles.append(t.handle)
        return t

    def write(self, handle: int, data: bytes) -> None:
        """A write on an overlapped handle, waited for."""
        ov = w.OVERLAPPED(hEvent=self.event())
        n = w.Ref(0)
        if not w.WriteFile(handle, data, len(data), n, ov):
            assert w.GetLastError() == w.ERROR_IO_PENDING
        assert w.GetOverlappedResult(handle, ov, n, True), w.GetLastError()
        assert n.value == len(data)

    def close(self) -> None:
        for fn in reversed(self.cleanups):
            fn()
        for t in self.threads:
            if not t.joined:
                w.WaitForSingleObject(t.handle, 2000)
        for h in reversed(self.handles):
            w.CloseHandle(h)


@pytest.fixture(params=["io_uring", "threads"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test on one I/O backend; io_uring is skipped only when unavailable."""
    with wt.backend_for_test(request.param) as name:
        yield name


@pytest.fixture
def kit(backend: str, tmp_path: Path) -> Iterator[Kit]:
    k = Kit(tmp_path)
    try:
        yield k
    finally:
        k.close()
