"""Where an interrupt cut a call: the traceback test every layer's interrupt handling shares.

A signal handler's exception (KeyboardInterrupt) is raised at the first eval-breaker check
after the signal came: the entry of a Python function (its ``RESUME``), the return of a C
function called from Python code, a backward jump. Code whose effect must not be lost catches
it around the call and decides from the traceback whether the call did anything: a call cut
at its entry did nothing and is made again; a call that ran is not. The I/O layer's funnel
(``_io._interrupts``) re-exports both functions; the kernel uses them for a parker's release
(``_dispatcher.release_again``) and a thread's start (``_threads.start_thread``).

Invariants: pure functions of the exception (nothing is raised, nothing changed); an
Exception (a bug, a MemoryError) is never an interrupt.
"""

from __future__ import annotations

from typing import Any

__all__ = ["cut_at_entry", "interrupt"]


def interrupt(exc: BaseException) -> bool:
    """``exc`` is an interrupt (a BaseException that is no Exception: KeyboardInterrupt,
    SystemExit, a test's stand-in), which the caller finishes its work under."""
    return not isinstance(exc, Exception)


def cut_at_entry(exc: BaseException, func: Any) -> bool:
    """The call of ``func`` (a Python function or method) that raised ``exc`` did nothing:
    the traceback shows its frame at its first line (the ``RESUME`` check: a handler's or a
    hook's frames may be under it), or not at all (the cut came before the call, in the same
    ``try``). A frame at a later line means it ran; so does a C function (False: no check at
    its entry). As ``_fastio.h``'s ``fio_cut_at_entry``."""
    code = getattr(getattr(func, "__func__", func), "__code__", None)
    if code is None:
        return False  # (not Python code: no check at its entry)
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is code:
            return tb.tb_lineno == code.co_firstlineno
        tb = tb.tb_next
    return True
