"""Public test helpers: wait for a state instead of sleeping, and move the wall clock.

Only tests import this package. The waits poll the kernel's state with a short back-off and
fail with AssertionError at their deadline, so a suite using them fails instead of hanging
(the trio ``wait_all_tasks_blocked`` idea).
"""

from __future__ import annotations

import contextlib
import time
import unittest
from collections.abc import Callable, Iterator

from .._clock import reset_wall_clock as reset_wall_clock
from .._clock import shift_wall_clock as shift_wall_clock
from .._kernel._dispatcher import DispatcherObject
from .._kernel._handles import HANDLE_TABLE
from .._kernel._threads import KThread, thread_state_by_id
from .._kernel._wait import test_alert
from .._pool._clock import ManualClock as ManualClock
from .._runtime import available_backends as available_backends
from .._runtime import using_backend as using_backend

__all__ = [
    "ManualClock",
    "available_backends",
    "backend_for_test",
    "drain_apcs",
    "reset_wall_clock",
    "shift_wall_clock",
    "using_backend",
    "wait_until",
    "wait_until_blocked",
    "wait_until_waiters",
]


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """Return once ``predicate()`` is true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.0001
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting until {what or predicate}")
        time.sleep(delay)
        delay = min(delay * 2, 0.005)


def wait_until_waiters(obj: int | DispatcherObject, count: int, timeout: float = 5.0) -> None:
    """Return once at least ``count`` threads block waiting on ``obj`` (a handle or object)."""
    target = obj if isinstance(obj, DispatcherObject) else HANDLE_TABLE.resolve(obj)[0]
    wait_until(
        lambda: target.waiter_count >= count, timeout, f"{count} waiters block on {target!r}"
    )


def wait_until_blocked(thread: int | KThread, timeout: float = 5.0) -> None:
    """Return once the thread (a Win32 thread id or a thread object) is blocked in a winaio wait."""
    if isinstance(thread, KThread):
        state = thread.state
    else:
        found = thread_state_by_id(thread)
        if found is None:
            raise AssertionError(f"no live thread with id {thread}")
        state = found
    wait_until(lambda: state.wait is not None, timeout, f"thread {state.tid} blocks")


@contextlib.contextmanager
def backend_for_test(name: str) -> Iterator[str]:
    """Run the block with ``name`` as the I/O backend of the handles it creates.

    A missing io_uring (an old kernel, a seccomp policy) raises ``unittest.SkipTest``, which
    pytest reports as a skip; any other missing backend is a failure (AssertionError): the
    thread backend is always there.
    """
    available = list(available_backends())
    if name not in available:
        if name == "io_uring":
            raise unittest.SkipTest(f"io_uring unavailable (available_backends() = {available})")
        raise AssertionError(f"backend {name!r} missing from available_backends() {available}")
    with using_backend(name):
        yield name


def drain_apcs() -> None:
    """Run the user APCs queued to the calling thread, ignoring what they raise.

    A test that fails with APCs (completion routines) still queued to the long-lived pytest
    thread must not leak them into the next test's alertable waits.
    """
    try:
        test_alert()
    except Exception:
        pass
