"""Interrupt sweeps: raise a stand-in for KeyboardInterrupt at every cut point of a path, one
per run, and collect what each cut left broken.

Where a signal handler's exception lands in Python code: at the first eval-breaker check after
the signal came - the entry of a Python function (``RESUME``), the return of a C function
called from Python code (``CALL`` checks after it, before the result is stored), a backward
jump. :class:`Sweep` is a profile hook raising :class:`SweepInterrupt` at the ``k``-th such
point of the frames under test (a ``call`` event of a function called from them, a
``c_return`` inside them; raising at ``c_return`` drops the call's result after its effect, as
a handler does); :func:`sweep_cut_points` runs ``run(k)`` for k = 1, 2, ... until the k-th
point is not reached. :class:`PyParker` is a parker whose ``release`` is Python code, whose
entry is a cut point (a ring leader's, a pool worker's): the waiters the kernel's wake-ups are
swept against park on it (``_slots.waiting_on``); ``_slots.left_behind`` says what a cut left
held.

Invariants: one interrupt per run (``hit``: the hook goes quiet once it raised); only the
thread that made the sweep is swept (``sys.setprofile`` is per thread anyway; a thread the path
starts is never cut); a finalizer (``__del__``) run from a swept frame is not the path's call
and is not counted; no collection while a path is swept (:func:`profiled`), so that the cut
points do not move with the order the tests ran in.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable, Collection
from typing import Any

__all__ = [
    "PyParker",
    "Sweep",
    "SweepInterrupt",
    "profiled",
    "sweep_cut_points",
]


class SweepInterrupt(BaseException):
    """Stands for KeyboardInterrupt (a signal handler's exception: a BaseException that is no
    Exception, which the paths under test finish their work under)."""


class Sweep:
    """A profile hook raising :class:`SweepInterrupt` at the ``k``-th cut point: the entry of a
    function called from a frame of ``own`` or ``callers`` (the frame a C path's Python callees
    return to), or the return of a C function inside a frame of ``own`` - but for the C
    functions named in ``skip``. After it ran, ``hit`` says whether the point was reached and
    ``where`` names it; ``count`` is how many points it passed."""

    def __init__(
        self,
        k: int,
        own: Collection[Any],
        callers: Collection[Any] = (),
        skip: Collection[str] = (),
    ) -> None:
        self.k = k
        self.own = frozenset(own)
        self.callers = self.own | frozenset(callers)
        self.skip = frozenset(skip)
        self.count = 0
        self.hit = False
        self.where = ""
        self.thread = threading.get_ident()

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if self.hit or threading.get_ident() != self.thread:
            return
        code = frame.f_code
        if event == "call":
            back = frame.f_back
            if back is None or back.f_code not in self.callers or code.co_name == "__del__":
                return  # (a finalizer where a reference dropped: not the path's call)
        elif (
            event != "c_return" or code not in self.own or getattr(arg, "__name__", "") in self.skip
        ):
            return
        self.count += 1
        if self.count == self.k:
            self.hit = True
            self.where = f"{event} {code.co_name}:{frame.f_lineno} {getattr(arg, '__name__', '')}"
            raise SweepInterrupt


def sweep_cut_points(
    run: Callable[[int], tuple[Sweep, list[str]]], limit: int = 400, at_least: int = 1
) -> dict[str, list[str]]:
    """``run(k)`` for k = 1, 2, ... until its sweep no longer reaches its k-th cut point; the
    problems each run found (an empty list: none), by cut point. AssertionError if fewer than
    ``at_least`` points were reached (the sweep swept nothing) or more than ``limit``."""
    found: dict[str, list[str]] = {}
    for k in range(1, limit + 1):
        sweep, bad = run(k)
        if bad:
            found[sweep.where or "(no interrupt)"] = bad
        if not sweep.hit:
            assert k > at_least, "the sweep reached too few cut points"
            return found
    raise AssertionError(f"more than {limit} cut points")


def profiled(sweep: Sweep, call: Callable[[], object]) -> bool:
    """``call()`` under ``sweep``; the interrupt it raises is caught here. True if ``call``
    returned (no interrupt reached it). No collection meanwhile: a finalizer of earlier
    garbage called from a swept frame would take the interrupt."""
    gc.collect()
    gc.disable()
    sys.setprofile(sweep)
    try:
        call()
    except SweepInterrupt:
        assert sweep.hit
        return False
    finally:
        sys.setprofile(None)
        gc.enable()
    return True


class PyParker:
    """A parker whose ``release`` is Python code (as ``RingParker``'s and a pool worker's):
    its entry is a cut point. ``released`` counts the releases."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.released = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self.lock.acquire(blocking, timeout)

    def release(self) -> None:
        self.released += 1
        self.lock.release()
