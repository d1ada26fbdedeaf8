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
from collections.abc import Iterator
from typing import Any

import pytest

import winaio.testing as wt
import winaio.win32 as w

_names = itertools.count()


class Kit(wt.HandleKit):
    """Creates kernel objects and threads for one test and cleans up after it."""

    def __init__(self) -> None:
        super().__init__()
        self._timers: list[int] = []

    # -- objects ---------------------------------------------------------------------------
    def keep(self, h: int) -> int:
        assert h != 0, f"creation failed, last error {w.GetLastError()}"
        assert h % 4 == 0, f"handle value {h:#x} is not a multiple of 4"
        return super().keep(h)

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

    def forget(self, h: int) -> None:
        """The test closed ``h`` itself (e.g. to check CloseHandle's result)."""
        super().forget(h)
        if h in self._timers:
            self._timers.remove(h)

    @staticmethod
    def name(tag: str = "obj") -> str:
        return f"winaio-conformance-{os.getpid()}-{tag}-{next(_names)}"

    def release_more(self) -> None:
        for h in self._timers:
            try:
                w.CancelWaitableTimer(h)
            except Exception:
                pass


@pytest.fixture
def kit() -> Iterator[Kit]:
    with Kit() as k:
        yield k


@pytest.fixture(autouse=True)
def _clean_main_thread_apcs() -> Iterator[None]:
    # (APCs a failing test left queued to the long-lived pytest thread: not into the next test.)
    with wt.apcs_drained():
        yield


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
