"""Fixtures for the asyncio bridge tests.

Every test runs its coroutine with ``asyncio.run`` inside the ``run`` fixture, which then checks
that the bridge's pump thread ended, that no thread of a pool or bridge is left and that the
number of open file descriptors is back where it started.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

import winaio
import winaio.testing as wt

OPEN_EXISTING = 3  # open_file disposition


def _aio_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("winaio-aio-")}


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def run() -> Iterator[Callable[[Coroutine[Any, Any, Any]], Any]]:
    for name in wt.available_backends():  # backends open their rings once per process
        with wt.using_backend(name):
            pass
    before_threads = _aio_threads()
    before_fds = _fds()

    def runner(coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run(coro)

    yield runner
    wt.wait_until(lambda: not (_aio_threads() - before_threads), 5.0, "bridge pumps end")
    wt.wait_until(lambda: _fds() <= before_fds, 5.0, "file descriptors are closed")


@pytest.fixture(params=["io_uring", "threads"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test on one I/O backend; io_uring is skipped only when unavailable."""
    with wt.backend_for_test(request.param) as name:
        yield name


@pytest.fixture
def data_file(tmp_path: Any, backend: str) -> Iterator[winaio.DiskFile]:
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 64)  # 16 KiB
    file, _ = winaio.open_file(str(path), read=True, write=True, disposition=OPEN_EXISTING,
                               overlapped=True)  # fmt: skip
    yield file
    file.close()


@pytest.fixture
def pipe(backend: str) -> Iterator[tuple[winaio.StreamFile, winaio.StreamFile]]:
    reader, writer = winaio.create_pipe(overlapped=True)
    yield reader, writer
    reader.close()
    writer.close()
