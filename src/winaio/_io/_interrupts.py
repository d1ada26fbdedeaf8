"""Where an interrupt cut a call of the pure-Python completion funnel (review8).

A signal handler's exception (KeyboardInterrupt) is raised at the first eval-breaker check
after the signal came: the entry of a Python function, the return of a C function called
from Python code, a backward jump. The funnel (``_dispatch``, the port's ``_post_locked``
and ``_release_locked``) catches it around each call whose effect must not be lost, finishes
what the cut left undone and lets it go on - the Python twin of ``_fastio.h``'s
``fio_again``. What is done again is decided by the traceback, as in C: a call cut at its
entry did nothing and is made again; a call that ran is not (no APC twice). Exceptions
(a bug, a MemoryError) are not interrupts: they propagate as before, the rest undone.

Costs nothing on the hot path: CPython 3.11's ``try`` is a table entry, and these functions
run only once an interrupt was raised. :func:`interrupt` and :func:`cut_at_entry` are the
kernel's (``_kernel._cuts``), re-exported here for the I/O layer.
"""

from __future__ import annotations

from typing import Any

from .._kernel._cuts import cut_at_entry, interrupt
from .._kernel._dispatcher import ThreadState

__all__ = ["carried", "carry", "cut_at_entry", "interrupt", "release_again"]


def release_again(exc: BaseException, ts: ThreadState) -> None:
    """A wake-up of ``ts`` (``wake_pending`` set, then ``ts.parker.release()``) was cut by
    ``exc``: give the token if the flag is not set yet, release the parker again if the cut
    was at the entry of its (Python) ``release`` - a ring leader's or a pool worker's parker.
    Caller holds LOCK."""
    if ts.awake_in_wait:
        ts.wait = None
    elif not ts.wake_pending:
        ts.wake_pending = True
        ts.parker.release()
    else:
        release = getattr(type(ts.parker), "release", None)
        code = getattr(release, "__code__", None)
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code is code:
                if tb.tb_lineno == code.co_firstlineno:
                    ts.parker.release()
                return
            tb = tb.tb_next


_CARRIED = "_winaio_carried"


def carry(exc: BaseException, value: object) -> None:
    """An interrupt ``exc`` leaves a function whose effect must not be lost (a request it
    registered, the count of bytes its syscall moved): ``value`` goes with it, for the caller
    to finish the work with (:func:`carried`) before it lets the interrupt go on. Nothing for
    an Exception (a bug: it propagates as before)."""
    if interrupt(exc):
        exc.__dict__[_CARRIED] = value


def carried(exc: BaseException) -> Any:
    """What :func:`carry` gave ``exc`` (None if nothing), taken: a caller further up does not
    see it again."""
    return exc.__dict__.pop(_CARRIED, None)
