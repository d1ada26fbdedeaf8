"""WaitForSingleObject and WaitForSingleObjectEx each inline their hot shape (issue 9: a plain
handle with SYNCHRONIZE to a waitable object, INFINITE or a DWORD below it, straight to the
core's ``wait_for_one``). The inlined shape must decide nothing itself: a differential over
handles x timeouts against the general path ``_wait_single`` (the reference), result and
last-error, plus the object's state afterwards (an auto-reset event consumed exactly once).

[MS:WaitForSingleObject], [MS:WaitForSingleObjectEx] (SYNCHRONIZE, INFINITE, WAIT_FAILED and
GetLastError), [W:k32/sync.c:test_WaitForSingleObject] (tag bits, pseudo handles).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import winaio.win32 as w
from winaio._io import _accel
from winaio._kernel._handles import HANDLE_TABLE
from winaio.codes import WinError
from winaio.errors import Win32Error
from winaio.win32 import _sync

EVENT_MODIFY_STATE = 0x0002
SYNCHRONIZE = 0x00100000
SENTINEL = 0xBEEF
LONG = 10.0

#: Timeouts that never block on an unsignaled object (0 ms, 1 ms), that would block forever
#: (only used on signaled objects), and the shapes the hot path leaves to the reference.
SHORT: list[object] = [0, 1, True, False]
BLOCKING: list[object] = [w.INFINITE, -1, 5000, 0xFFFFFFFE, float(w.INFINITE)]
NOT_DWORD: list[object] = [1.5, "10", None, [1], float("nan")]
WRAPS: list[object] = [1 << 32, (1 << 32) + 1]  # DWORD conversion: 0 and 1 ms


def _dup(h: int, access: int) -> int:
    out = w.Ref(0)
    proc = w.GetCurrentProcess()
    assert w.DuplicateHandle(proc, h, proc, out, access, False, 0)
    return out.value


class Shapes:
    """Fresh handles for one call, by shape name, and a probe of their objects' state."""

    def __init__(self, signaled: bool) -> None:
        self.opened: list[int] = []
        self.auto = self._keep(w.CreateEvent(None, False, signaled, None))
        self.manual = self._keep(w.CreateEvent(None, True, signaled, None))
        self.sem = self._keep(w.CreateSemaphore(None, 1 if signaled else 0, 2, None))
        self.mutex = self._keep(w.CreateMutex(None, False, None))
        self.no_sync = self._keep(_dup(self.manual, EVENT_MODIFY_STATE))
        self.sync_only = self._keep(_dup(self.auto, SYNCHRONIZE))
        self.foreign = self._keep(HANDLE_TABLE.insert(object()))
        closed = w.CreateEvent(None, True, True, None)
        assert w.CloseHandle(closed)
        self.handles: dict[str, Any] = {
            "auto": self.auto,
            "auto|1": self.auto | 1,
            "auto|3": self.auto | 3,
            "manual": self.manual,
            "semaphore": self.sem,
            "mutex": self.mutex,
            "no SYNCHRONIZE": self.no_sync,
            "SYNCHRONIZE only": self.sync_only,
            "not waitable": self.foreign,
            "closed": closed,
            "NULL": 0,
            "None": None,
            "current thread": w.GetCurrentThread(),
            "current process": w.GetCurrentProcess(),
            "unsigned pseudo": (1 << 64) - 2,
            "float": float(self.manual),
            "str": str(self.manual),
            "list": [],
            "-3": -3,
        }
        assert sorted(self.handles) == sorted(HANDLE_NAMES)

    def _keep(self, h: int) -> int:
        assert h
        self.opened.append(h)
        return h

    def state(self) -> tuple[object, ...]:
        """What a wait may change, read from the core objects (a wait would consume)."""
        objs = [HANDLE_TABLE.resolve(h)[0] for h in (self.auto, self.manual, self.sem)]
        mutex = HANDLE_TABLE.resolve(self.mutex)[0]
        return (
            objs[0].is_set(),
            objs[1].is_set(),
            objs[2].count,
            mutex.owner_thread_id,
        )

    def close(self) -> None:
        while w.ReleaseMutex(self.mutex):  # a wait may have taken it (ERROR_NOT_OWNER ends)
            pass
        for h in self.opened:
            assert w.CloseHandle(h)


Call = Callable[[Any, Any], int]
CALLS: dict[str, Call] = {
    "WaitForSingleObject": w.WaitForSingleObject,
    "WaitForSingleObjectEx": lambda h, ms: w.WaitForSingleObjectEx(h, ms, False),
    "WaitForSingleObjectEx alertable": lambda h, ms: w.WaitForSingleObjectEx(h, ms, True),
}
REFERENCE: dict[str, Call] = {
    "WaitForSingleObject": lambda h, ms: _sync._wait_single(h, ms, False),
    "WaitForSingleObjectEx": lambda h, ms: _sync._wait_single(h, ms, False),
    "WaitForSingleObjectEx alertable": lambda h, ms: _sync._wait_single(h, ms, True),
}
HANDLE_NAMES = [
    *("auto", "auto|1", "auto|3", "manual", "semaphore", "mutex", "SYNCHRONIZE only"),
    *("no SYNCHRONIZE", "not waitable", "closed", "NULL", "None", "list", "-3"),
    *("current thread", "current process", "unsigned pseudo", "float", "str"),
]
#: Handles whose wait does not depend on ``signaled`` (the pseudo handles are never signaled
#: for their own thread: a blocking wait on them would hang, so only short timeouts).
STATELESS = {"current thread", "current process", "unsigned pseudo", "not waitable", "closed"}


def _observe(call: Call, signaled: bool, name: str, ms: object) -> tuple[object, ...]:
    shapes = Shapes(signaled)
    try:
        w.SetLastError(SENTINEL)
        result = call(shapes.handles[name], ms)
        return result, w.GetLastError(), shapes.state()
    finally:
        shapes.close()


def _cases() -> Iterator[tuple[bool, object]]:
    for ms in [*SHORT, *NOT_DWORD, *WRAPS]:
        yield False, ms
        yield True, ms
    for ms in BLOCKING:
        yield True, ms


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("name", HANDLE_NAMES)
def test_the_inlined_shape_matches_the_general_path(call: str, name: str) -> None:
    for signaled, ms in _cases():
        if signaled and name in STATELESS:
            continue  # the same call as unsignaled (pseudo handles: no blocking wait on them)
        got = _observe(CALLS[call], signaled, name, ms)
        want = _observe(REFERENCE[call], signaled, name, ms)
        assert got == want, (call, name, signaled, ms)


def test_the_reference_gives_the_documented_results() -> None:
    """The reference itself (so the differential cannot pass on two equal mistakes)."""
    ref = REFERENCE["WaitForSingleObject"]
    assert _observe(ref, True, "auto", w.INFINITE)[:2] == (0, SENTINEL)
    assert _observe(ref, True, "auto", 0)[2][0] is False  # consumed
    assert _observe(ref, False, "auto|3", 1)[:2] == (w.WAIT_TIMEOUT, SENTINEL)
    failed = w.WAIT_FAILED
    assert _observe(ref, True, "no SYNCHRONIZE", 0)[:2] == (
        failed,
        w.ERROR_ACCESS_DENIED,
    )
    for name in ("not waitable", "closed", "NULL", "None", "list", "-3"):
        assert _observe(ref, True, name, 0)[:2] == (
            failed,
            w.ERROR_INVALID_HANDLE,
        ), name
    assert _observe(ref, True, "manual", 1.5)[:2] == (
        failed,
        w.ERROR_INVALID_PARAMETER,
    )
    # The handle's error wins over the timeout's.
    assert _observe(ref, True, "closed", "10")[1] == w.ERROR_INVALID_HANDLE
    assert _observe(ref, False, "current thread", 0)[0] == w.WAIT_TIMEOUT


@pytest.fixture
def python_functions() -> Iterator[None]:
    """The Python functions (the C accelerator off: ``_fastevent.c`` takes the Event shapes
    straight to its own wait, without ``_sync._wait_for_one``, which these tests replace;
    tests/win32/test_fastevent.py checks the C functions against these)."""
    before = _accel.use(False)
    try:
        yield
    finally:
        _accel.use(before)


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_core_error_inside_the_inlined_wait_is_wait_failed(
    call: str, monkeypatch: pytest.MonkeyPatch, python_functions: None
) -> None:
    def refuse(obj: object, timeout: object, alertable: object) -> int:
        raise Win32Error(WinError.ERROR_NOT_ENOUGH_MEMORY, "refused")

    monkeypatch.setattr(_sync, "_wait_for_one", refuse)
    ev = w.CreateEvent(None, True, True, None)
    try:
        for ms in (w.INFINITE, 0, 7, 1.5):
            w.SetLastError(SENTINEL)
            assert CALLS[call](ev, ms) == w.WAIT_FAILED
            want = w.ERROR_INVALID_PARAMETER if ms == 1.5 else w.ERROR_NOT_ENOUGH_MEMORY
            assert w.GetLastError() == want
    finally:
        assert w.CloseHandle(ev)


def test_the_inlined_shape_passes_the_timeout_in_seconds(
    monkeypatch: pytest.MonkeyPatch, python_functions: None
) -> None:
    seen: list[tuple[object, object]] = []

    def record(obj: object, timeout: object, alertable: object) -> int:
        seen.append((timeout, alertable))
        return 0

    monkeypatch.setattr(_sync, "_wait_for_one", record)
    ev = w.CreateEvent(None, True, True, None)
    try:
        for ms in (w.INFINITE, -1, 0, 1, 250, 0xFFFFFFFE, True, 1 << 32):
            assert w.WaitForSingleObject(ev, ms) == 0
            assert w.WaitForSingleObjectEx(ev, ms, True) == 0
    finally:
        assert w.CloseHandle(ev)
    expected = [None, None, 0.0, 0.001, 0.25, 0xFFFFFFFE / 1000.0, 0.001, 0.0]
    assert seen[0::2] == [(t, False) for t in expected]
    assert seen[1::2] == [(t, True) for t in expected]


@pytest.mark.timeout(30)
def test_blocking_ping_pong_through_the_inlined_shapes() -> None:
    """Two threads, SetEvent then WaitForSingleObject(INFINITE) / (Ex, a finite timeout)."""
    ping = w.CreateEvent(None, False, False, None)
    pong = w.CreateEvent(None, False, False, None)
    rounds = 200
    results: list[int] = []

    def responder() -> None:
        for i in range(rounds):
            if i % 2:
                results.append(w.WaitForSingleObject(ping, w.INFINITE))
            else:
                results.append(w.WaitForSingleObjectEx(ping, int(LONG * 1000), False))
            assert w.SetEvent(pong)

    t = threading.Thread(target=responder)
    t.start()
    try:
        for _ in range(rounds):
            assert w.SetEvent(ping)
            assert w.WaitForSingleObject(pong, int(LONG * 1000)) == w.WAIT_OBJECT_0
    finally:
        t.join(LONG)
        assert w.CloseHandle(ping)
        assert w.CloseHandle(pong)
    assert not t.is_alive()
    assert results == [w.WAIT_OBJECT_0] * rounds


@pytest.mark.timeout(30)
def test_an_alertable_inlined_wait_runs_apcs() -> None:
    ev = w.CreateEvent(None, False, False, None)
    ran: list[object] = []
    try:
        assert w.QueueUserAPC(ran.append, w.GetCurrentThread(), 1)
        assert w.WaitForSingleObjectEx(ev, w.INFINITE, True) == w.WAIT_IO_COMPLETION
        assert ran == [1]
        assert w.QueueUserAPC(ran.append, w.GetCurrentThread(), 2)
        assert w.WaitForSingleObject(ev, 0) == w.WAIT_TIMEOUT  # not alertable: stays queued
        assert w.WaitForSingleObjectEx(ev, 5, True) == w.WAIT_IO_COMPLETION
        assert ran == [1, 2]
    finally:
        assert w.CloseHandle(ev)
