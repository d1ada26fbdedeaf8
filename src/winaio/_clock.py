"""The kernel's clocks: a monotonic clock for relative timeouts and a wall clock for absolute ones.

Facts this module encodes (win32-async-spec §2.1 step 4, §2.3 timers,
[W:k32/timer.c:test_timeouts]):
- Relative timeouts and relative timer due times run on a monotonic clock: changing the system
  time neither shortens nor lengthens them.
- Absolute due times (a positive FILETIME) follow the wall clock: moving the clock forward past
  the due time fires the timer at once.

The wall clock can be shifted by tests (``winaio.testing.shift_wall_clock``) so that the second
fact is testable without touching the real system time; listeners (the timer thread) are told so
they re-evaluate absolute deadlines immediately.

Rules: stdlib only; no locks held while calling listeners.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = [
    "FILETIME_UNIX_EPOCH",
    "filetime_now",
    "filetime_to_wall_ns",
    "monotonic",
    "reset_wall_clock",
    "shift_wall_clock",
    "wall_ns",
    "wall_ns_to_filetime",
]

#: 100 ns intervals between 1601-01-01 and 1970-01-01 (the FILETIME epoch offset).
FILETIME_UNIX_EPOCH = 116444736000000000

monotonic = time.monotonic

_offset_ns = 0
_listeners: list[Callable[[], None]] = []
_listeners_lock = threading.Lock()


def wall_ns() -> int:
    """Nanoseconds since the Unix epoch on the kernel's (possibly shifted) wall clock."""
    return time.time_ns() + _offset_ns


def wall_ns_to_filetime(ns: int) -> int:
    """Unix-epoch nanoseconds -> FILETIME (100 ns units since 1601-01-01 UTC)."""
    return ns // 100 + FILETIME_UNIX_EPOCH


def filetime_to_wall_ns(filetime: int) -> int:
    """FILETIME -> Unix-epoch nanoseconds."""
    return (filetime - FILETIME_UNIX_EPOCH) * 100


def filetime_now() -> int:
    """The current FILETIME on the kernel's wall clock (GetSystemTimeAsFileTime)."""
    return wall_ns_to_filetime(wall_ns())


def add_wall_clock_listener(callback: Callable[[], None]) -> None:
    """Call ``callback()`` (from the shifting thread) whenever the wall clock jumps."""
    with _listeners_lock:
        _listeners.append(callback)


def shift_wall_clock(seconds: float) -> None:
    """Move the wall clock by ``seconds`` (cumulative). Monotonic time is unaffected."""
    global _offset_ns
    _offset_ns += round(seconds * 1e9)
    _notify()


def reset_wall_clock() -> None:
    """Undo every :func:`shift_wall_clock`."""
    global _offset_ns
    _offset_ns = 0
    _notify()


def _notify() -> None:
    with _listeners_lock:
        callbacks = list(_listeners)
    for callback in callbacks:
        callback()
