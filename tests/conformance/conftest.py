"""Shared fixtures for the Win32 conformance suite (acceptance behaviours 1-47 of
``win32-async-spec.md`` §11), written against the ``winaio.win32`` alias layer.

Rules followed by every test in this directory:
- no test sleeps to synchronise: threads are created with ``CreateThread`` and joined by waiting
  on their thread handle; "the other thread is blocked now" is established with
  ``winaio.testing.wait_until_waiters`` / ``wait_until_blocked``;
- every wait that must succeed has a generous bound (5000 ms) so a broken implementation
  fails instead of hanging; waits that must time out use tens to hundreds of ms;
- background threads are always ended by the test and every handle is closed (the ``kit``
  fixture closes whatever a failing test left behind).

Helpers are exposed as fixtures (the suite runs with ``--import-mode=importlib``, so test
modules cannot import this file).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import winaio.testing as wt
import winaio.win32 as w

# DuplicateHandle options (winnt.h). Literal values so that behavioural tests do not depend on
# the alias layer exporting the names; test_constants checks the exports.
DUPLICATE_CLOSE_SOURCE = 0x1
DUPLICATE_SAME_ACCESS = 0x2

#: Exit code a worker thread returns when its body raised a (recorded) test failure.
WORKER_FAILED = 0xE0000BAD

#: Exceptions raised by a worker body that are test failures to re-raise in the main thread.
#: BaseExceptions (ExitThread / TerminateThread unwinding) are never caught here.
_RECORDED = (AssertionError, AttributeError, TypeError, ValueError, NameError, LookupError)

_names = itertools.count()

#: Bound for waits that must succeed (thread joins, events that must be signaled).
LONG = 5000


class Worker:
    """A thread created with ``CreateThread`` whose start routine is ``body()``.

    Failures inside ``body`` are recorded and re-raised by :meth:`join` in the test's thread.
    """

    def __init__(
        self,
        body: Callable[[], int | None],
        *,
        suspended: bool = False,
        terminated_ok: bool = False,
    ) -> None:
        self.body = body
        self.error: BaseException | None = None
        self.started = False
        self.joined = False
        self.terminated_ok = terminated_ok
        tid = w.Ref(0)
        flags = w.CREATE_SUSPENDED if suspended else 0
        w.SetLastError(0xDEADBEEF)
        self.handle: int = w.CreateThread(None, 0, self._start, None, flags, tid)
        assert self.handle, f"CreateThread failed, last error {w.GetLastError()}"
        assert self.handle % 4 == 0
        self.tid: int = tid.value
        assert self.tid != 0

    def _start(self, _param: object) -> int | None:
        self.started = True
        try:
            return self.body()
        except _RECORDED as exc:
            self.error = exc
            return WORKER_FAILED

    def join(self, timeout_ms: int = LONG) -> int:
        """Wait for the thread object to be signaled; re-raise a body failure; return the
        exit code."""
        r = w.WaitForSingleObject(self.handle, timeout_ms)
        assert r == w.WAIT_OBJECT_0, (
            f"thread {self.tid} did not end within {timeout_ms} ms (wait returned {r:#x})"
        )
        self.joined = True
        if self.error is not None and not self.terminated_ok:
            raise self.error
        code = w.Ref(0xDEADBEEF)
        assert w.GetExitCodeThread(self.handle, code)
        return int(code.value)

    def is_running(self, timeout_ms: int = 100) -> bool:
        """True if the thread object stays nonsignaled for ``timeout_ms``."""
        r = w.WaitForSingleObject(self.handle, timeout_ms)
        assert r in (w.WAIT_OBJECT_0, w.WAIT_TIMEOUT), f"wait on thread returned {r:#x}"
        return r == w.WAIT_TIMEOUT


class Kit:
    """Creates kernel objects and threads for one test and cleans up after it."""

    def __init__(self) -> None:
        self._handles: list[int] = []
        self._timers: list[int] = []
        self._workers: list[Worker] = []
        self._cleanups: list[Callable[[], Any]] = []

    # -- objects ---------------------------------------------------------------------------
    def keep(self, h: int) -> int:
        assert h != 0, f"creation failed, last error {w.GetLastError()}"
        assert h % 4 == 0, f"handle value {h:#x} is not a multiple of 4"
        self._handles.append(h)
        return h

    def event(self, manual: bool = False, initial: bool = False, name: str | None = None) -> int:
        return self.keep(w.CreateEvent(None, manual, initial, name))

    def semaphore(self, initial: int, maximum: int, name: str | None = None) -> int:
        return self.keep(w.CreateSemaphore(None, initial, maximum, name))

    def mutex(self, owned: bool = False, name: str | None = None) -> int:
        return self.keep(w.CreateMutex(None, owned, name))

    def timer(self, manual: bool = False, name: str | None = None) -> int:
        h = self.keep(w.CreateWaitableTimer(None, manual, name))
        self._timers.append(h)
        return h

    def dup(self, h: int) -> int:
        out = w.Ref(0)
        proc = w.GetCurrentProcess()
        ok = w.DuplicateHandle(proc, h, proc, out, 0, False, DUPLICATE_SAME_ACCESS)
        assert ok, f"DuplicateHandle failed, last error {w.GetLastError()}"
        return self.keep(int(out.value))

    def close(self, h: int) -> None:
        assert w.CloseHandle(h), f"CloseHandle({h:#x}) failed, last error {w.GetLastError()}"
        if h in self._handles:
            self._handles.remove(h)
        if h in self._timers:
            self._timers.remove(h)

    def forget(self, h: int) -> None:
        """The test closed ``h`` itself (e.g. to check CloseHandle's result)."""
        if h in self._handles:
            self._handles.remove(h)
        if h in self._timers:
            self._timers.remove(h)

    @staticmethod
    def name(tag: str = "obj") -> str:
        return f"winaio-conformance-{os.getpid()}-{tag}-{next(_names)}"

    # -- threads ---------------------------------------------------------------------------
    def thread(
        self,
        body: Callable[[], int | None],
        *,
        suspended: bool = False,
        terminated_ok: bool = False,
    ) -> Worker:
        wk = Worker(body, suspended=suspended, terminated_ok=terminated_ok)
        self._workers.append(wk)
        self._handles.append(wk.handle)
        return wk

    def on_cleanup(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` at teardown (before threads are awaited), e.g. to unblock a worker."""
        self._cleanups.append(fn)

    def teardown(self) -> None:
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception:
                pass
        for wk in self._workers:
            if not wk.joined:
                try:
                    w.WaitForSingleObject(wk.handle, 2000)
                except Exception:
                    pass
        for h in self._timers:
            try:
                w.CancelWaitableTimer(h)
            except Exception:
                pass
        for h in reversed(self._handles):
            try:
                w.CloseHandle(h)
            except Exception:
                pass


@pytest.fixture
def kit() -> Iterator[Kit]:
    k = Kit()
    try:
        yield k
    finally:
        k.teardown()


@pytest.fixture(autouse=True)
def _clean_main_thread_apcs() -> Iterator[None]:
    # APCs left queued to the long-lived pytest thread by a failing test must not leak into
    # the next test's alertable waits.
    wt.drain_apcs()
    yield
    wt.drain_apcs()


@pytest.fixture
def wall_clock() -> Iterator[Any]:
    """``winaio.testing`` with the kernel's wall clock restored after the test (#44)."""
    wt.reset_wall_clock()
    try:
        yield wt
    finally:
        wt.reset_wall_clock()


@pytest.fixture
def testing() -> Any:
    """The ``winaio.testing`` helpers (wait_until_waiters, wait_until_blocked)."""
    return wt
