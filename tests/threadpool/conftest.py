"""Fixtures for the thread-pool tests (core API in ``test_pool_*``, Win32 aliases in
``test_win32_*``).

Rules followed by every test here:
- pools are created through ``make_pool`` (or the ``pool`` fixture); teardown closes them and
  checks that every thread a pool started has ended (closing joins them) and that no callback
  runs after ``close()`` returned;
- nothing sleeps to synchronise: callbacks signal kernel events/semaphores and tests wait on
  them with a 5 s bound (``LONG``); outcomes that must *not* happen are checked with 100 ms
  waits (``SHORT``) or, for timers, with a ``ManualClock``;
- exceptions escaping a callback reach ``threading.excepthook``; pytest turns them into
  failures (filterwarnings = error), so callbacks assert freely.
"""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import winaio
from winaio.testing import ManualClock

#: Bound for waits that must succeed.
LONG = 5.0
#: Bound for waits whose expected outcome is a timeout.
SHORT = 0.1

_ROLES = ("winaio-worker-", "winaio-waiter-")


def pool_threads() -> set[threading.Thread]:
    """Live threads of every pool except the default pool."""
    default = set()
    pool = winaio.default_pool()
    for kthread in list(pool._workers):
        if kthread.python_thread is not None:
            default.add(kthread.python_thread)
    waiter = pool._waiter
    if waiter is not None and waiter._python_thread is not None:
        default.add(waiter._python_thread)
    return {
        t
        for t in threading.enumerate()
        if t.name.startswith(_ROLES) and t not in default and t.is_alive()
    }


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class PoolKit:
    """Creates pools for a test and checks at teardown that they leave nothing behind."""

    LONG = LONG
    SHORT = SHORT

    def __init__(self) -> None:
        self.pools: list[winaio.ThreadPool] = []
        self.before = pool_threads()

    def __call__(self, **kwargs: Any) -> winaio.ThreadPool:
        pool = winaio.ThreadPool(**kwargs)
        self.pools.append(pool)
        return pool

    def manual(self, **kwargs: Any) -> tuple[winaio.ThreadPool, ManualClock]:
        clock = ManualClock()
        return self(clock=clock, **kwargs), clock

    def close_all(self) -> None:
        for pool in self.pools:
            pool.close()
            assert pool.thread_count == 0, pool
        leaked = pool_threads() - self.before
        assert not leaked, f"threads left after close: {sorted(t.name for t in leaked)}"


@pytest.fixture
def make_pool() -> Iterator[PoolKit]:
    kit = PoolKit()
    try:
        yield kit
    finally:
        kit.close_all()


@pytest.fixture
def pool(make_pool: PoolKit) -> winaio.ThreadPool:
    return make_pool(max_threads=4)


class Recorder:
    """Collects callback calls and releases a semaphore per call (wait with ``wait(n)``)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.threads: list[int] = []
        self.sem = winaio.Semaphore(0, 1 << 20)
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> None:
        with self._lock:
            self.calls.append(args)
            self.threads.append(threading.get_ident())
        self.sem.release()

    def wait(self, count: int = 1, timeout: float = LONG) -> None:
        for _ in range(count):
            assert winaio.wait(self.sem, timeout).signaled, f"{len(self.calls)} calls so far"

    def none_within(self, timeout: float = SHORT) -> bool:
        return winaio.wait(self.sem, timeout).timed_out


@pytest.fixture
def recorder() -> Callable[[], Recorder]:
    return Recorder


@pytest.fixture(params=["io_uring", "threads"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test on one I/O backend; io_uring is skipped only when unavailable."""
    import winaio.testing as wt

    with wt.backend_for_test(request.param) as name:
        yield name


_pipe_names = itertools.count()


@pytest.fixture
def pipe_pair(backend: str) -> Iterator[tuple[int, int]]:
    """(server, client) handles of a fresh named pipe: overlapped server, synchronous client
    (the shape of Wine's test_tp_io)."""
    import winaio.win32 as w

    name = f"\\\\.\\pipe\\winaio-tp-{os.getpid()}-{next(_pipe_names)}-{uuid.uuid4().hex[:8]}"
    server = w.CreateNamedPipe(
        name, w.PIPE_ACCESS_DUPLEX | w.FILE_FLAG_OVERLAPPED, 0, 1, 1024, 1024, 0, None
    )
    assert server not in (0, w.INVALID_HANDLE_VALUE), w.GetLastError()
    client = w.CreateFile(name, w.GENERIC_READ | w.GENERIC_WRITE, 0, None, w.OPEN_EXISTING, 0, 0)
    assert client not in (0, w.INVALID_HANDLE_VALUE), w.GetLastError()
    try:
        yield server, client
    finally:
        w.CloseHandle(client)
        w.CloseHandle(server)
