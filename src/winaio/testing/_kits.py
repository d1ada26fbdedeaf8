"""The conformance suites' thread and handle kit, once (``tests/conformance*/conftest.py``).

Purpose: what the Win32 conformance kit (``tests/conformance``: ``Kit``) and the I/O one
(``tests/conformance_io``, reused by ``tests/conformance_wine*``: ``IoKit``) each wrote out: a
thread made with ``CreateThread`` whose failures are re-raised in the test's thread
(:class:`Win32Worker`), and the handles, threads and clean-ups one test makes, released at its
end whatever happened (:class:`HandleKit`, which both kits extend with their objects).

Invariants: everything goes through the alias layer (``winaio.win32``), as the suites' tests
do; a worker's body raising one of the test failures (``AssertionError``...) is recorded and
its thread exits with :data:`WORKER_FAILED`, never with the failure lost; a BaseException
(ExitThread / TerminateThread unwinding) is not caught; :meth:`HandleKit.teardown` runs the
test's clean-ups first (to unblock a worker), then awaits every worker not joined (bounded),
then closes every handle still kept, each step whatever the previous one raised (a kit is a
context manager: its ``with`` block is the test). :func:`apcs_drained` runs the user APCs a
failing test left queued to the long-lived pytest thread, before and after a test, so that
they never reach the next test's alertable waits. :func:`load_kit` loads a suite's conftest
by path for another suite that reuses its kit (the suites run with ``--import-mode=importlib``:
a test module cannot import a conftest), once per process.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Self

from .. import win32 as w
from .._kernel._wait import test_alert

__all__ = ["WORKER_FAILED", "HandleKit", "Win32Worker", "apcs_drained", "load_kit"]

#: Exit code a worker thread returns when its body raised a (recorded) test failure.
WORKER_FAILED = 0xE0000BAD

#: Exceptions raised by a worker body that are test failures to re-raise in the test's thread.
#: BaseExceptions (ExitThread / TerminateThread unwinding) are never caught here.
_RECORDED = (AssertionError, AttributeError, TypeError, ValueError, NameError, LookupError)

#: DuplicateHandle's option (winnt.h): a literal, so that a kit does not depend on the alias
#: layer exporting the name (the suites' test_constants checks the exports).
_DUPLICATE_SAME_ACCESS = 0x2
#: Bound (ms) for a join that must succeed, and for teardown's wait on a worker not joined.
_LONG = 5000
_TEARDOWN = 2000


class Win32Worker:
    """A thread created with ``CreateThread`` (``suspended``: CREATE_SUSPENDED) whose start
    routine is ``body()``; a failure inside ``body`` is recorded and re-raised by
    :meth:`join` in the test's thread (unless ``terminated_ok``: a test that ends it)."""

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
        # (The caller's last error is left as it was: a test may check it across the
        # thread's creation.)
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

    def join(self, timeout_ms: int = _LONG) -> int:
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


class HandleKit:
    """The handles, worker threads and clean-ups of one test (module docstring); a suite's
    kit adds its objects' constructors and what else its teardown releases
    (:meth:`release_more`)."""

    def __init__(self) -> None:
        self._handles: list[int] = []
        self._workers: list[Win32Worker] = []
        self._cleanups: list[Callable[[], Any]] = []

    def close(self, h: int) -> None:
        """``CloseHandle(h)``, which must succeed; the kit forgets it."""
        assert w.CloseHandle(h), f"CloseHandle({h:#x}) failed, last error {w.GetLastError()}"
        self.forget(h)

    def forget(self, h: int) -> None:
        """The test closed ``h`` itself (e.g. to check CloseHandle's result)."""
        if h in self._handles:
            self._handles.remove(h)

    def dup(self, h: int) -> int:
        """A duplicate of ``h`` (DUPLICATE_SAME_ACCESS), kept."""
        out = w.Ref(0)
        proc = w.GetCurrentProcess()
        ok = w.DuplicateHandle(proc, h, proc, out, 0, False, _DUPLICATE_SAME_ACCESS)
        assert ok, f"DuplicateHandle failed, last error {w.GetLastError()}"
        return self.keep(int(out.value))

    def keep(self, h: int) -> int:
        """Keep ``h`` for teardown (after the suite's own checks of a created handle)."""
        self._handles.append(h)
        return h

    def thread(
        self,
        body: Callable[[], int | None],
        *,
        suspended: bool = False,
        terminated_ok: bool = False,
    ) -> Win32Worker:
        """A :class:`Win32Worker` running ``body``, awaited and closed at teardown."""
        wk = Win32Worker(body, suspended=suspended, terminated_ok=terminated_ok)
        self._workers.append(wk)
        self._handles.append(wk.handle)
        return wk

    def on_cleanup(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` at teardown (before threads are awaited), e.g. to unblock a worker."""
        self._cleanups.append(fn)

    def release_more(self) -> None:
        """What a suite's kit releases after the workers and before the handles (its timers,
        its sockets); nothing here."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def teardown(self) -> None:
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception:
                pass
        for wk in self._workers:
            if not wk.joined:
                try:
                    w.WaitForSingleObject(wk.handle, _TEARDOWN)
                except Exception:
                    pass
        self.release_more()
        for h in reversed(self._handles):
            try:
                w.CloseHandle(h)
            except Exception:
                pass


def _run_apcs() -> None:
    try:
        test_alert()  # the calling thread's user APCs run (what they raise is ignored)
    except Exception:
        pass


@contextlib.contextmanager
def apcs_drained() -> Iterator[None]:
    """Around a test: the user APCs queued to the calling thread run (what they raise is
    ignored) before it and after it (module docstring)."""
    _run_apcs()
    try:
        yield
    finally:
        _run_apcs()


def load_kit(path: Path, name: str) -> ModuleType:
    """The module of the conftest at ``path``, loaded once under ``name`` (``sys.modules``:
    dataclasses look their module up there, and a second suite reusing it gets the same
    module, its classes and fixtures)."""
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None, path
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module
