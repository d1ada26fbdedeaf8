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

import threading

import pytest

from winaio._io._kernel_events import PY_EVENT_SET, PY_WAIT_FOR_ONE
from winaio._kernel._dispatcher import WaitBlock
from winaio._kernel._objects import Event
from winaio.codes import WaitCode
from winaio.testing import (
    PyParker,
    Sweep,
    left_behind,
    profiled,
    sweep_cut_points,
    wait_until,
    waiting_on,
)

WAIT_OBJECT_0 = int(WaitCode.WAIT_OBJECT_0)


_SET_CODE = PY_EVENT_SET.__code__


@pytest.mark.parametrize("parker", ["lock", "python"])
def test_an_interrupt_anywhere_in_the_inline_set_wakes_the_waiter_once(parker: str) -> None:
    """# spec: win32 #11 (SetEvent on an auto-reset event with a waiter releases exactly one and
    leaves it nonsignaled). Every cut point of the inline wake-up, one per run: the waiter is
    satisfied (WAIT_OBJECT_0), out of the waiter list, given one token; the event consumed;
    LOCK free."""

    def run(k: int) -> tuple[Sweep, list[str]]:
        ev = Event()
        py = PyParker() if parker == "python" else None
        ts, wb = waiting_on(ev, parker=py)
        sweep = Sweep(k, {_SET_CODE})
        profiled(sweep, lambda: PY_EVENT_SET(ev))
        bad = left_behind()
        if wb.result != WAIT_OBJECT_0 or ev.waiter_count or ev.is_set():
            bad.append(f"result {wb.result}, {ev.waiter_count} waiters, set {ev.is_set()}")
        if not ts.wake_pending:
            bad.append("no token")
        lock = py.lock if py is not None else ts.parker
        if not lock.acquire(False):
            bad.append("the waiter asleep")
        if py is not None and py.released != 1:
            bad.append(f"released {py.released} times")
        return sweep, bad

    assert sweep_cut_points(run, limit=100, at_least=2) == {}


@pytest.mark.parametrize("shape", ["manual", "two-objects", "detach", "two-waiters"])
def test_the_shapes_the_inline_set_leaves_to_the_walk(shape: str) -> None:
    """# spec: win32 #11, #12. A manual-reset event (every waiter), a two-object wait (its
    index), a wait with a ``detach`` hook (a pool wait) and a second waiter behind the first
    (auto-reset: one released, in FIFO order) end as the walk ends them."""
    ev = Event(manual_reset=shape == "manual")
    ts, wb = waiting_on(ev)
    detached: list[WaitBlock] = []
    if shape == "two-objects":
        other = Event()
        wb.objects = (other, ev)
        other._waiters[wb] = None
    elif shape == "detach":
        wb.detach = detached.append
    ts2, wb2 = waiting_on(ev)
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
