"""The pure-Python event hot shapes (pure, 2026-12-06): ``Event.set`` waking a lone plain
waiter inline, ``wait_for_one`` building its wait block slot by slot.

What CPython 3.13+ runs (the C accelerators build for 3.11/3.12), and the reference of the C
hot shapes (``_fastevent.c``). The inline set must be the walk's exact twin - the same result,
the same token, the auto-reset consumed - and as whole under an interrupt: a sweep raises at
each of its cut points in turn (a Python callee's entry, a C call's return inside ``set``'s
frame: where a signal handler's KeyboardInterrupt lands) and checks that the waiter is woken
once and nothing is left half done. docs/design.md "The pure event ping-pong (pure, ...)".
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest

from winaio._io._kernel_events import PY_EVENT_SET, PY_WAIT_FOR_ONE
from winaio._kernel._dispatcher import LOCK, ThreadState, WaitBlock
from winaio._kernel._objects import Event
from winaio.codes import WaitCode
from winaio.testing import wait_until

WAIT_OBJECT_0 = int(WaitCode.WAIT_OBJECT_0)


class Interrupted(BaseException):
    """Stands for KeyboardInterrupt."""


class _PyParker:
    """A parker whose ``release`` is Python code (a ring leader's, a pool worker's)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.released = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self.lock.acquire(blocking, timeout)

    def release(self) -> None:
        self.released += 1
        self.lock.release()


class _Sweep:
    """Raise :class:`Interrupted` at the ``k``-th cut point of ``Event.set``: the entry of a
    function it calls, or the return of a C function called from its frame."""

    def __init__(self, k: int) -> None:
        self.k, self.count, self.hit, self.where = k, 0, False, ""

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if self.hit:
            return
        if event == "call":
            back = frame.f_back
            if back is None or back.f_code is not _SET_CODE:
                return
        elif event != "c_return" or frame.f_code is not _SET_CODE:
            return
        self.count += 1
        if self.count == self.k:
            self.hit = True
            self.where = f"{event} {frame.f_code.co_name}:{frame.f_lineno}"
            raise Interrupted


_SET_CODE = PY_EVENT_SET.__code__


def _parked(ev: Event, parker: Any) -> tuple[ThreadState, WaitBlock]:
    ts = ThreadState(0, 0)
    if parker is not None:
        ts.parker = parker
    wb = WaitBlock(ts, (ev,), False, False)
    ev._waiters[wb] = None
    ts.wait = wb
    return ts, wb


@pytest.mark.parametrize("parker", ["lock", "python"])
def test_an_interrupt_anywhere_in_the_inline_set_wakes_the_waiter_once(parker: str) -> None:
    """# spec: win32 #11 (SetEvent on an auto-reset event with a waiter releases exactly one and
    leaves it nonsignaled). Every cut point of the inline wake-up, one per run: the waiter is
    satisfied (WAIT_OBJECT_0), out of the waiter list, given one token; the event consumed;
    LOCK free."""
    found: dict[str, list[str]] = {}
    for k in range(1, 100):
        ev = Event()
        py = _PyParker() if parker == "python" else None
        ts, wb = _parked(ev, py)
        sweep = _Sweep(k)
        sys.setprofile(sweep)
        try:
            PY_EVENT_SET(ev)
        except Interrupted:
            pass
        finally:
            sys.setprofile(None)
        bad = []
        if LOCK.locked():
            bad.append("LOCK held")
            LOCK.release()
        if wb.result != WAIT_OBJECT_0 or ev.waiter_count or ev.is_set():
            bad.append(f"result {wb.result}, {ev.waiter_count} waiters, set {ev.is_set()}")
        if not ts.wake_pending:
            bad.append("no token")
        lock = py.lock if py is not None else ts.parker
        if not lock.acquire(False):
            bad.append("the waiter asleep")
        if py is not None and py.released != 1:
            bad.append(f"released {py.released} times")
        if bad:
            found[sweep.where or "(no interrupt)"] = bad
        if not sweep.hit:
            assert k > 2, "the sweep reached no cut point"
            break
    assert found == {}


@pytest.mark.parametrize("shape", ["manual", "two-objects", "detach", "two-waiters"])
def test_the_shapes_the_inline_set_leaves_to_the_walk(shape: str) -> None:
    """# spec: win32 #11, #12. A manual-reset event (every waiter), a two-object wait (its
    index), a wait with a ``detach`` hook (a pool wait) and a second waiter behind the first
    (auto-reset: one released, in FIFO order) end as the walk ends them."""
    ev = Event(manual_reset=shape == "manual")
    ts, wb = _parked(ev, None)
    detached: list[WaitBlock] = []
    if shape == "two-objects":
        other = Event()
        wb.objects = (other, ev)
        other._waiters[wb] = None
    elif shape == "detach":
        wb.detach = detached.append
    ts2, wb2 = _parked(ev, None)
    assert PY_EVENT_SET(ev) is False
    if shape == "manual":
        assert wb.result == wb2.result == WAIT_OBJECT_0 and ev.is_set()
        assert ts2.parker.acquire(False)
    else:
        assert wb.result == (WAIT_OBJECT_0 + 1 if shape == "two-objects" else WAIT_OBJECT_0)
        assert wb2.result is None and list(ev._waiters) == [wb2] and not ev.is_set()
    assert ts.parker.acquire(False) and ts.wake_pending
    assert detached == ([wb] if shape == "detach" else [])
    if shape == "two-objects":
        assert other.waiter_count == 0


def test_the_wait_block_built_slot_by_slot_is_a_whole_one() -> None:
    """``wait_for_one`` builds its wait block without ``WaitBlock.__init__``: every slot is
    set, to what ``__init__`` would set (a new slot cannot be forgotten)."""
    ev = Event()
    seen: list[WaitBlock] = []
    done: list[int] = []

    def waiter() -> None:
        done.append(PY_WAIT_FOR_ONE(ev, None, True))

    t = threading.Thread(target=waiter)
    t.start()
    wait_until(lambda: ev.waiter_count == 1, 5.0, "the waiter registered")
    seen.extend(ev._waiters)
    wb = seen[0]
    ref = WaitBlock(wb.thread, (ev,), False, True)
    for name in WaitBlock.__slots__:
        assert getattr(wb, name) == getattr(ref, name), name
    ev.set()
    t.join(5.0)
    assert done == [WAIT_OBJECT_0] and wb.result == WAIT_OBJECT_0
